"""GitHub releases via PyGithub: is this tag a published release, and what does exist.

A validation costs one request when the tag is a published release (``releases/tags/{tag}``)
and two when it is not (plus the newest page of releases, for the hint and to tell a draft
from a typo), whatever the number of releases. PyGithub errors become ``Refused`` here.

Layer: adapter for GitHub (imports only core and github/).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from releasegate.core.errors import BadInput, Refused
from releasegate.core.version import PrefixPolicy, ReleaseTag, nearest_tags, parse_tag

if TYPE_CHECKING:
    from github.GitRelease import GitRelease
    from github.Repository import Repository

DEFAULT_API_URL = "https://api.github.com"
HINT_PAGE_SIZE = 100


@dataclass(frozen=True)
class Release:
    tag: str
    name: str
    draft: bool
    prerelease: bool
    published_at: str | None
    html_url: str


class ReleaseSource:
    """The releases of one repository. The PyGithub client is created on first use."""

    def __init__(self, repository: str, api_url: str | None = None, token: str | None = None) -> None:
        self.repository = repository
        self.api_url = (api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")
        self._token = token if token is not None else os.environ.get("GITHUB_TOKEN") or None
        self._repo: Repository | None = None

    @property
    def has_token(self) -> bool:
        return bool(self._token)

    @property
    def token(self) -> str:
        return self._token or ""

    def repository_api(self) -> Repository:
        """The PyGithub repository, created on first use (shared with deployments.py)."""
        if self._repo is None:
            from github import Auth, Github

            self._repo = Github(
                base_url=self.api_url,
                auth=Auth.Token(self._token) if self._token else None,
                # Seconds per request; RELEASEGATE_GITHUB_TIMEOUT for slow GitHub Enterprise servers.
                timeout=int(os.environ.get("RELEASEGATE_GITHUB_TIMEOUT") or 10),
                per_page=HINT_PAGE_SIZE,
                # Not throttled: a deploy makes two reads and three writes (deployment, statuses)
                # spread over its whole run, far below GitHub's secondary rate limits.
                seconds_between_requests=None,
                seconds_between_writes=None,
                retry=_retry(),
                lazy=True,  # no request for the repository itself, only for what is asked
            ).get_repo(self.repository)
        return self._repo

    def prepare(self) -> None:
        """Create the client (importing PyGithub and requests) now, in this thread: requests is
        under both SDKs, and two threads importing it at once can see it half-initialised."""
        import requests  # noqa: F401 (translated_errors')

        self.repository_api()

    def published(self, tag: str) -> Release | None:
        """The published (non-draft) release for ``tag``, or None when there is none."""
        from github import UnknownObjectException

        with self.translated_errors():
            try:
                return _to_release(self.repository_api().get_release(tag))
            except UnknownObjectException:
                return None

    def newest(self) -> list[Release]:
        """The newest page of releases (drafts included when the token may see them)."""
        with self.translated_errors():
            page = self.repository_api().get_releases().get_page(0)
            return [_to_release(r) for r in page]

    @contextmanager
    def translated_errors(self) -> Iterator[None]:
        import requests
        from github import BadCredentialsException, GithubException, RateLimitExceededException

        where = f"GitHub ({self.api_url}, {self.repository})"
        try:
            yield
        except BadCredentialsException as exc:
            raise Refused(f"{where} rejected the token (401)", "set GITHUB_TOKEN to a valid token") from exc
        except RateLimitExceededException as exc:
            raise Refused(f"{where} rate limit exhausted{_reset_time(exc.headers)}", _rate_hint()) from exc
        except GithubException as exc:
            if exc.status == 404:
                raise Refused(
                    f"{where}: repository not found or not visible to this token",
                    "check github_repository in releasegate.yaml and the token's access",
                ) from exc
            if exc.status == 403:
                raise Refused(f"{where} refused access (403)", "give the token contents:read") from exc
            raise Refused(f"{where} answered {exc.status}", "retry later; see githubstatus.com") from exc
        except requests.RequestException as exc:
            # After retries requests reports a read timeout as a ConnectionError around it.
            if not (isinstance(exc, requests.Timeout) or "timed out" in str(exc)):
                raise Refused(
                    f"{where} unreachable ({exc.__class__.__name__})", "check the network or GITHUB_API_URL"
                ) from exc
            raise Refused(
                f"{where} did not answer in time", "retry later, or raise RELEASEGATE_GITHUB_TIMEOUT"
            ) from exc


def _retry() -> Any:
    """PyGithub's own retry (5xx, and a secondary rate limit waited out as GitHub's Retry-After
    asks), except that an exhausted primary limit fails at once: waiting up to an hour for its
    reset is not something a deploy should do silently."""
    from github.GithubRetry import GithubRetry
    from urllib3.exceptions import MaxRetryError

    class DeployRetry(GithubRetry):
        def increment(self, method: Any = None, url: Any = None, *args: Any, **kwargs: Any) -> Any:
            response = kwargs.get("response") or (args[0] if args else None)
            headers = getattr(response, "headers", {}) or {}
            if headers.get("X-RateLimit-Remaining") == "0" and "Retry-After" not in headers:
                # No more tries: the 403 goes back to PyGithub, which raises RateLimitExceeded.
                raise MaxRetryError(kwargs.get("_pool"), url or "")  # type: ignore[arg-type]
            return super().increment(method, url, *args, **kwargs)

    return DeployRetry(total=2, backoff_factor=0.3, raise_on_status=False)


def validate_release(
    source: ReleaseSource, text: str, prefix: PrefixPolicy, allow_prerelease: bool, env_name: str
) -> tuple[ReleaseTag, Release]:
    """The tag, parsed and checked against GitHub: published, and a prerelease only where allowed."""
    tag = parse_tag(text, prefix)  # BadInput before any network call
    release = source.published(tag.text)
    if release is None:
        raise _not_published(source, tag.text)
    if release.prerelease and not allow_prerelease:
        raise Refused(
            f"{tag} is a prerelease and {env_name} does not take prereleases",
            "deploy a full release, or set allow_prerelease: true for this environment",
        )
    return tag, release


def list_releases(source: ReleaseSource, prefix: PrefixPolicy) -> list[tuple[ReleaseTag, Release]]:
    """Published semver releases, newest version first."""
    found = []
    for release in source.newest():
        try:
            tag = parse_tag(release.tag, prefix)
        except BadInput:
            continue  # not a semver release: not deployable, not listed
        if not release.draft:
            found.append((tag, release))
    return sorted(found, key=lambda pair: pair[0].version, reverse=True)


def _not_published(source: ReleaseSource, tag: str) -> Refused:
    newest = source.newest()
    drafts = {r.tag for r in newest if r.draft}
    if tag in drafts:
        return Refused(f"{tag} is a draft release, not published", "publish the release on GitHub first")
    published = [r.tag for r in newest if not r.draft]
    near = nearest_tags(tag, published)
    hint = f"nearest releases: {', '.join(near)}" if near else "the repository has no published release yet"
    return Refused(f"{tag} is not a published release of {source.repository}", hint)


def _to_release(release: GitRelease) -> Release:
    # Attributes, not raw_data: raw_data would fetch each listed release again.
    published = release.published_at
    return Release(
        tag=release.tag_name,
        name=release.name or release.tag_name,
        draft=release.draft,
        prerelease=release.prerelease,
        published_at=published.strftime("%Y-%m-%dT%H:%M:%SZ") if published else None,
        html_url=release.html_url or "",
    )


def _reset_time(headers: Any) -> str:
    reset = (headers or {}).get("x-ratelimit-reset")
    if not reset or not str(reset).isdigit():
        return ""
    return f" until {datetime.fromtimestamp(int(reset)).astimezone().strftime('%H:%M:%S %Z')}"


def _rate_hint() -> str:
    if os.environ.get("GITHUB_TOKEN"):
        return "wait for the reset, or use a token with a higher limit"
    return "set GITHUB_TOKEN: unauthenticated requests get 60 an hour"
