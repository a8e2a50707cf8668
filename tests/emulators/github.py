"""GitHub REST emulator: releases (list with Link pagination, by tag, latest, by id) and
the repository, with drafts, prereleases, 401, 403 rate limits, 404 and injected 5xx; and the
GraphQL API's refs (``github_graphql.py``) for the tags' commit times.

Response bodies follow GitHub's OpenAPI description (``tests/test_github_conformance.py``
checks them against ``../shared/reference/github/`` when it is present).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlencode

from . import github_graphql
from .github_graphql import TagData
from .http import EmulatorServer, Request, Response

DOCS = "https://docs.github.com/rest"


@dataclass
class Faults:
    status_queue: list[int] = field(default_factory=list)  # answered in order, one per request
    rate_limited_until: int | None = None
    secondary_limited: int = 0  # the next N requests hit a secondary rate limit (403, Retry-After)
    delay_seconds: float = 0.0
    deployments_forbidden: bool = False  # a token without `deployments: write`
    deployments_unavailable: bool = False  # reading deployments answers 503
    deployment_write_seconds: float = 0.0  # each deployment or status written takes this long


class GitHubEmulator(EmulatorServer):
    def __init__(
        self, repository: str = "acme/model-api", token: str | None = "ghp_emulatorToken0123456789"
    ) -> None:
        super().__init__()
        self.repository = repository
        self.token = token
        self.releases: list[dict[str, Any]] = []  # newest first, as GitHub lists them
        self.deployments: list[dict[str, Any]] = []  # newest first
        self.statuses: dict[int, list[dict[str, Any]]] = {}  # deployment id -> statuses, newest first
        self.tags: dict[str, TagData] = {}  # git tags: each release's, with its commit
        self.faults = Faults()
        self._next_id = 1000

    # Set-up helpers for tests.
    def add_release(
        self,
        tag: str,
        *,
        draft: bool = False,
        prerelease: bool = False,
        committed: str | None = None,
        annotated: bool = False,
    ) -> dict[str, Any]:
        """A release and its git tag; ``committed``: the tag's commit time (default: an hour
        ago), ``annotated``: a tag object pointing at the commit."""
        self._next_id += 1
        release = self._release_object(self._next_id, tag, draft, prerelease)
        self.releases.insert(0, release)
        when = committed or time.strftime(
            "%Y-%m-%dT%H:%M:%SZ",
            time.gmtime(time.time() - 3600),  # released an hour after its commit
        )
        sha = hashlib.sha1(tag.encode()).hexdigest()  # noqa: S324 (a git object id, not security)
        self.tags[tag] = TagData(name=tag, sha=sha, committed=when, annotated=annotated)
        return release

    def graphql_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/graphql"]

    def fail_next(self, status: int, times: int = 1) -> None:
        self.faults.status_queue.extend([status] * times)

    def api_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.startswith("/repos/") or r.path == "/rate_limit"]

    # Routing.
    def handle(self, request: Request) -> Response:
        if self.faults.delay_seconds:
            time.sleep(self.faults.delay_seconds)
        auth = self._authenticate(request)
        if auth is not None:
            return auth
        if self.faults.status_queue:
            status = self.faults.status_queue.pop(0)
            return _error(status, "Server Error" if status >= 500 else "Injected error")
        if self.faults.rate_limited_until and time.time() < self.faults.rate_limited_until:
            return self._rate_limited()
        if self.faults.secondary_limited:
            self.faults.secondary_limited -= 1
            return self._secondary_limited()
        if request.path == "/graphql" and request.method == "POST":
            if not self._authenticated(request):
                return _error(401, "This endpoint requires you to be authenticated.")
            status, body = github_graphql.execute(self.repository, self.tags, request.json())
            return Response(status, body, self._rate_headers())
        prefix = f"/repos/{self.repository}"
        path = unquote(request.path)
        if path.startswith(f"{prefix}/deployments"):
            return self._deployments(request, path.removeprefix(f"{prefix}/deployments"))
        if request.method != "GET":
            return _error(404, "Not Found")
        if path == prefix:
            return Response(200, self._repository_object(), self._rate_headers())
        if path == f"{prefix}/releases":
            return self._list(request)
        if path == f"{prefix}/releases/latest":
            return self._one(self._latest())
        if match := re.fullmatch(re.escape(prefix) + r"/releases/tags/(.+)", path):
            return self._one(self._by_tag(match.group(1)))
        if match := re.fullmatch(re.escape(prefix) + r"/releases/(\d+)", path):
            return self._one(
                next((r for r in self._visible(request) if r["id"] == int(match.group(1))), None)
            )
        return _error(404, "Not Found")

    def _deployments(self, request: Request, rest: str) -> Response:
        if request.method == "POST" and self.faults.deployment_write_seconds:
            time.sleep(self.faults.deployment_write_seconds)  # github.com's writes are slow
        if request.method == "POST" and self.faults.deployments_forbidden:
            return _error(403, "Resource not accessible by integration")
        if rest == "" and request.method == "POST":
            body = request.json()
            self._next_id += 1
            deployment = self._deployment_object(self._next_id, body)
            self.deployments.insert(0, deployment)
            self.statuses[deployment["id"]] = []
            return Response(201, deployment, self._rate_headers())
        if request.method == "GET" and self.faults.deployments_unavailable:
            return _error(503, "Service Unavailable")
        if rest == "" and request.method == "GET":
            found = [d for d in self.deployments
                     if request.query.get("environment", d["environment"]) == d["environment"]
                     and request.query.get("ref", d["ref"]) == d["ref"]]  # fmt: skip
            return Response(200, found, self._rate_headers())
        if (one := re.fullmatch(r"/(\d+)", rest)) and request.method == "GET":
            found = next((d for d in self.deployments if d["id"] == int(one.group(1))), None)
            return Response(200, found, self._rate_headers()) if found else _error(404, "Not Found")
        match = re.fullmatch(r"/(\d+)/statuses", rest)
        if not match or int(match.group(1)) not in self.statuses:
            return _error(404, "Not Found")
        number = int(match.group(1))
        if request.method == "POST":
            status = self._status_object(number, request.json())
            self.statuses[number].insert(0, status)
            return Response(201, status, self._rate_headers())
        return Response(200, self.statuses[number], self._rate_headers())

    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if not header:
            return None  # unauthenticated: public data only
        scheme, _, given = header.partition(" ")
        if scheme.lower() not in ("token", "bearer") or given != self.token:
            return _error(401, "Bad credentials")
        return None

    def _authenticated(self, request: Request) -> bool:
        return bool(request.headers.get("authorization"))

    def _visible(self, request: Request) -> list[dict[str, Any]]:
        # Drafts are listed only to users with push access: here, any valid token.
        return [r for r in self.releases if self._authenticated(request) or not r["draft"]]

    def _list(self, request: Request) -> Response:
        per_page = min(int(request.query.get("per_page", 30)), 100)
        page = max(int(request.query.get("page", 1)), 1)
        items = self._visible(request)
        last = max((len(items) + per_page - 1) // per_page, 1)
        body = items[(page - 1) * per_page : page * per_page]
        headers = self._rate_headers()
        links = self._links(request, page, last, per_page)
        if links:
            headers["Link"] = links
        return Response(200, body, headers)

    def _links(self, request: Request, page: int, last: int, per_page: int) -> str:
        base = f"{self.url}{request.path}"

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode({"per_page": per_page, "page": number})}>; rel="{rel}"'

        parts = []
        if page < last:
            parts += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            parts += [link(1, "first"), link(page - 1, "prev")]
        return ", ".join(parts)

    def _by_tag(self, tag: str) -> dict[str, Any] | None:
        return next((r for r in self.releases if r["tag_name"] == tag and not r["draft"]), None)

    def _latest(self) -> dict[str, Any] | None:
        published = [r for r in self.releases if not r["draft"] and not r["prerelease"]]
        return max(published, key=lambda r: r["created_at"], default=None)

    def _one(self, release: dict[str, Any] | None) -> Response:
        if release is None:
            return _error(404, "Not Found")
        return Response(200, release, self._rate_headers())

    def _rate_limited(self) -> Response:
        reset = self.faults.rate_limited_until or 0
        headers = self._rate_headers(remaining=0, reset=reset)
        return Response(
            403, {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS}, headers
        )

    def _secondary_limited(self) -> Response:
        # GitHub's answer to too many requests at once: 403 with Retry-After, the primary limit
        # not exhausted (docs: "Rate limits for the REST API", secondary rate limits).
        message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        headers = {**self._rate_headers(), "Retry-After": "1"}
        return Response(403, {"message": message, "documentation_url": DOCS}, headers)

    def _rate_headers(self, remaining: int = 4999, reset: int | None = None) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset or int(time.time()) + 3600),
            "X-RateLimit-Used": str(5000 - remaining),
            "X-RateLimit-Resource": "core",
        }

    # Objects, shaped as GitHub's OpenAPI description requires.
    def _api(self, path: str) -> str:
        return f"{self.url}/repos/{self.repository}{path}"

    def _release_object(self, number: int, tag: str, draft: bool, prerelease: bool) -> dict[str, Any]:
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_700_000_000 + number * 60))
        html = f"https://github.com/{self.repository}/releases/tag/{quote(tag)}"
        return {
            "url": self._api(f"/releases/{number}"),
            "html_url": html,
            "assets_url": self._api(f"/releases/{number}/assets"),
            "upload_url": f"https://uploads.github.com/repos/{self.repository}/releases/{number}/assets{{?name,label}}",
            "tarball_url": None if draft else self._api(f"/tarball/{quote(tag)}"),
            "zipball_url": None if draft else self._api(f"/zipball/{quote(tag)}"),
            "id": number,
            "node_id": f"RE_kwDO{number:08d}",
            "tag_name": tag,
            "target_commitish": "main",
            "name": tag,
            "body": f"Release {tag}",
            "draft": draft,
            "prerelease": prerelease,
            "created_at": created,
            "published_at": None if draft else created,
            "author": _user(),
            "assets": [],
        }

    def _deployment_object(self, number: int, body: dict[str, Any]) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "url": self._api(f"/deployments/{number}"),
            "id": number,
            "node_id": f"DE_kwDO{number:08d}",
            "sha": "5114f85f0a9e4ae6a9f6c5fdc01ae13c9aa1bd71",
            "ref": body["ref"],
            "task": body.get("task", "deploy"),
            "payload": body.get("payload") or {},
            "original_environment": body.get("environment", "production"),
            "environment": body.get("environment", "production"),
            "description": body.get("description"),
            "creator": _user(),
            "created_at": stamp,
            "updated_at": stamp,
            "statuses_url": self._api(f"/deployments/{number}/statuses"),
            "repository_url": self._api(""),
            "transient_environment": bool(body.get("transient_environment", False)),
            "production_environment": bool(body.get("production_environment", False)),
        }

    def _status_object(self, deployment: int, body: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return {
            "url": self._api(f"/deployments/{deployment}/statuses/{self._next_id}"),
            "id": self._next_id,
            "node_id": f"DES_kwDO{self._next_id:08d}",
            "state": body["state"],
            "creator": _user(),
            "description": body.get("description", ""),
            "environment": body.get("environment", ""),
            "target_url": body.get("target_url", ""),
            "created_at": stamp,
            "updated_at": stamp,
            "deployment_url": self._api(f"/deployments/{deployment}"),
            "repository_url": self._api(""),
            "environment_url": body.get("environment_url", ""),
            "log_url": body.get("log_url") or body.get("target_url", ""),  # target_url is the old alias
        }

    def _repository_object(self) -> dict[str, Any]:
        owner, name = self.repository.split("/")
        return {
            "id": 42,
            "node_id": "R_kgDOAAAAKg",
            "name": name,
            "full_name": self.repository,
            "private": True,
            "owner": _user(owner),
            "html_url": f"https://github.com/{self.repository}",
            "url": self._api(""),
            "default_branch": "main",
        }


def _user(login: str = "release-bot") -> dict[str, Any]:
    api = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": 7,
        "node_id": "MDQ6VXNlcjc=",
        "avatar_url": "https://avatars.githubusercontent.com/u/7",
        "gravatar_id": "",
        "url": api,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "User",
        "site_admin": False,
    }


def _error(status: int, message: str) -> Response:
    return Response(status, {"message": message, "documentation_url": DOCS, "status": str(status)})
