"""ECR through moto's server (``ThreadedMotoServer``): real boto3 calls over HTTP.

``push`` stores an image manifest under a tag with its true content digest, as
``docker push`` would; ``has_image`` is what the Kubernetes emulator's kubelet asks before
it "pulls" an image, so an image missing from the registry ends in ImagePullBackOff.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer

ACCOUNT = "123456789012"
CREDENTIALS = {
    "aws_access_key_id": "AKIAEMULATOR0000TEST",
    "aws_secret_access_key": "emulator-secret-key-do-not-print",
}
ECR_IMAGE = re.compile(
    r"(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^@:]+)@(?P<digest>sha256:[a-f0-9]{64})"
)


class EcrEmulator:
    def __init__(self, region: str = "eu-west-1") -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's per-request access log
        self.region = region
        # boto3's default session is not thread-safe: several clusters' controllers ask at once.
        self._clients_lock = threading.Lock()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> EcrEmulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def reset(self) -> None:
        requests.post(f"{self.url}/moto-api/reset", timeout=10).raise_for_status()

    def client(self, region: str | None = None) -> Any:
        with self._clients_lock:
            return boto3.client(
                "ecr", region_name=region or self.region, endpoint_url=self.url, **CREDENTIALS
            )

    def create_repository(self, name: str, region: str | None = None) -> str:
        created = self.client(region).create_repository(repositoryName=name)
        return str(created["repository"]["repositoryUri"])

    def push(self, repository: str, tag: str, region: str | None = None) -> str:
        """Push a (tiny) image under ``tag``; returns its digest."""
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 7023,
                    "digest": "sha256:" + hashlib.sha256(f"config {repository}:{tag}".encode()).hexdigest(),
                },
                "layers": [],
            },
            sort_keys=True,
        )
        digest = "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
        self.client(region).put_image(
            repositoryName=repository, imageManifest=manifest, imageTag=tag, imageDigest=digest
        )
        return digest

    def delete(self, repository: str, tag: str) -> None:
        self.client().batch_delete_image(repositoryName=repository, imageIds=[{"imageTag": tag}])

    def has_image(self, image: str) -> bool:
        match = ECR_IMAGE.fullmatch(image)
        if not match:
            return False
        try:
            self.client(match["region"]).describe_images(
                repositoryName=match["repo"], imageIds=[{"imageDigest": match["digest"]}]
            )
        except Exception:
            return False
        return True

    def authorization_token(self) -> str:
        return str(self.client().get_authorization_token()["authorizationData"][0]["authorizationToken"])
