"""ECR via boto3: the image digest for a tag, and a registry credential on request.
botocore errors become ``Refused`` here.

A deploy fetches no registry credential (ECR authorization token): Skaffold's kubectl deployer
pulls nothing, and the cluster's nodes pull the image with their own IAM role. Reading the
digest needs only ``ecr:DescribeImages`` and ``ecr:DescribeRepositories``. ``login`` fetches one
only for ``releasegate ecr-login`` (``ecr:GetAuthorizationToken``), for a tool that pulls.

Layer: adapter for AWS (imports only core).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from releasegate.core.errors import Refused

CREDENTIAL_ERRORS = {
    "AccessDeniedException",
    "AccessDenied",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "ExpiredTokenException",
    "ExpiredToken",
    "RequestExpired",
}
MISSING_ERRORS = {"ImageNotFoundException", "RepositoryNotFoundException"}
REPLICATION_POLL_SECONDS = 3.0


class ImageMissing(Refused):
    """The tag's image is not in this region's repository (yet: replication takes a while)."""


@dataclass(frozen=True)
class Login:
    registry: str  # host, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com
    username: str
    password: str  # a secret: valid 12 hours


@dataclass(frozen=True)
class Image:
    repository_uri: str
    tag: str
    digest: str

    @property
    def pinned(self) -> str:
        return f"{self.repository_uri}@{self.digest}"


class Registry:
    """One ECR region. The boto3 client is created on first use."""

    def __init__(self, region: str, session: Any = None) -> None:
        self.region = region
        self._client: Any = None
        self._session = session  # shared by the registries of one run's clusters (None: its own)

    def in_region(self, region: str) -> Registry:
        """This account's ECR in another region, through the same boto3 session (its service
        model is loaded once, not once per cluster)."""
        self._ecr()
        return Registry(region, self._session)

    def _ecr(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            # AWS_ENDPOINT_URL, AWS_PROFILE and the credential variables are read by boto3 itself;
            # a session of our own, so credentials are looked up now rather than reused from earlier.
            config = Config(
                retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=15
            )
            if self._session is None:
                self._session = boto3.session.Session()
            self._client = self._session.client("ecr", region_name=self.region, config=config)
        return self._client

    def prepare(self) -> None:
        """Create the client (importing boto3) now, in this thread: several threads importing it
        at once can see it half-initialised."""
        self._ecr()

    def find_image(
        self, repository: str, tag: str, wait: float = 0.0, on_wait: Callable[[str], None] | None = None
    ) -> Image:
        """The image pushed to ``repository`` under ``tag``, with its digest. ``wait``: seconds
        an image not found yet is asked for again (ECR replicating it to this region)."""
        deadline = time.monotonic() + wait
        while True:
            try:
                return self._find_image(repository, tag)
            except ImageMissing:
                if time.monotonic() >= deadline:
                    raise
                left = deadline - time.monotonic()
                if on_wait is not None:
                    on_wait(f"{repository}:{tag} not in {self.region} yet (replicating?); {left:.0f}s left")
                time.sleep(min(REPLICATION_POLL_SECONDS, max(left, 0.1)))  # ECR sends no event to wait for

    def _find_image(self, repository: str, tag: str) -> Image:
        """The tag's digest and the repository's URI: two independent requests, made at once
        (a boto3 client may be shared between threads once it is created)."""
        from concurrent.futures import ThreadPoolExecutor

        with self._translated_errors(repository, tag):
            ecr = self._ecr()
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecr") as pool:
                described = pool.submit(ecr.describe_repositories, repositoryNames=[repository])
                details = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
                digest = details["imageDetails"][0]["imageDigest"]
                uri = described.result()["repositories"][0]
        return Image(repository_uri=uri["repositoryUri"], tag=tag, digest=digest)

    def login(self) -> Login:
        """A registry credential for this account's ECR in this region."""
        import base64

        with self._translated_errors(None, None):
            data = self._ecr().get_authorization_token()["authorizationData"][0]
        username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        registry = str(data["proxyEndpoint"]).removeprefix("https://").removeprefix("http://")
        return Login(registry=registry, username=username, password=password)

    @contextmanager
    def _translated_errors(self, repository: str | None, tag: str | None) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except NoCredentialsError as exc:
            raise Refused(
                "no AWS credentials found", "set AWS_PROFILE or AWS credentials (OIDC role in Actions)"
            ) from exc
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in MISSING_ERRORS and repository:
                where = f"{repository}:{tag}" if tag else repository
                raise ImageMissing(
                    f"image {where} not found in ECR ({self.region})",
                    "push the image for this tag first, or check aws.ecr_repository and aws.region "
                    "(and, with several clusters, that ECR replicates to every cluster's aws_region)",
                ) from exc
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in CREDENTIAL_ERRORS or status in (401, 403):
                raise Refused(
                    f"AWS denied the ECR request ({code})",
                    "refresh the AWS credentials, or grant ecr:DescribeImages and ecr:DescribeRepositories",
                ) from exc
            raise Refused(
                f"ECR request failed ({code or 'unknown error'})", "retry, or check the AWS status"
            ) from exc
        except BotoCoreError as exc:
            raise Refused(
                f"ECR unreachable ({exc.__class__.__name__})",
                "check the network, AWS_REGION or AWS_ENDPOINT_URL",
            ) from exc
