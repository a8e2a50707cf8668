"""The GitHub emulator answers as GitHub's own OpenAPI description says GitHub does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from openapi_schema_validator import OAS30Validator

from tests.conftest import reference
from tests.emulators.github import GitHubEmulator


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(reference("github", "rest-subset.openapi.json").read_text())


@pytest.fixture
def github() -> Iterator[GitHubEmulator]:
    server = GitHubEmulator().start()
    server.add_release("v1.0.0")
    server.add_release("v1.1.0-rc.1", prerelease=True)
    server.add_release("v1.1.0", draft=True)
    yield server
    server.stop()


def response_schema(spec: dict[str, Any], template: str, status: int, method: str = "get") -> dict[str, Any]:
    response = spec["paths"][template][method]["responses"][str(status)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    return {**schema, "components": spec["components"]}  # so that "#/components/..." resolves


def assert_conforms(
    spec: dict[str, Any], template: str, response: requests.Response, method: str = "get"
) -> None:
    validator = OAS30Validator(response_schema(spec, template, response.status_code, method))
    errors = sorted(validator.iter_errors(response.json()), key=lambda e: list(e.path))
    assert not errors, f"{template} {response.status_code}: " + "; ".join(
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors[:5]
    )


@pytest.mark.parametrize(
    ("path", "template", "status"),
    [
        ("/releases?per_page=2", "/repos/{owner}/{repo}/releases", 200),
        ("/releases/tags/v1.0.0", "/repos/{owner}/{repo}/releases/tags/{tag}", 200),
        ("/releases/tags/v9.9.9", "/repos/{owner}/{repo}/releases/tags/{tag}", 404),
        ("/releases/latest", "/repos/{owner}/{repo}/releases/latest", 200),
        ("/releases/1001", "/repos/{owner}/{repo}/releases/{release_id}", 200),
    ],
)
def test_responses_match_the_openapi_description(
    spec: dict[str, Any], github: GitHubEmulator, path: str, template: str, status: int
) -> None:
    response = requests.get(
        f"{github.url}/repos/acme/model-api{path}",
        headers={"Authorization": f"token {github.token}"},
        timeout=5,
    )
    assert response.status_code == status
    assert_conforms(spec, template, response)


def test_drafts_are_listed_only_to_authenticated_callers(github: GitHubEmulator) -> None:
    anonymous = requests.get(f"{github.url}/repos/acme/model-api/releases", timeout=5).json()
    authenticated = requests.get(
        f"{github.url}/repos/acme/model-api/releases",
        headers={"Authorization": f"token {github.token}"},
        timeout=5,
    ).json()
    assert [r["tag_name"] for r in anonymous] == ["v1.1.0-rc.1", "v1.0.0"]
    assert [r["tag_name"] for r in authenticated] == ["v1.1.0", "v1.1.0-rc.1", "v1.0.0"]


def test_latest_skips_drafts_and_prereleases(github: GitHubEmulator) -> None:
    assert (
        requests.get(f"{github.url}/repos/acme/model-api/releases/latest", timeout=5).json()["tag_name"]
        == "v1.0.0"
    )


def test_the_conformance_check_can_fail(spec: dict[str, Any], github: GitHubEmulator) -> None:
    response = requests.get(f"{github.url}/repos/acme/model-api/releases/tags/v1.0.0", timeout=5)
    broken = response.json()
    del broken["author"]
    errors = list(
        OAS30Validator(response_schema(spec, "/repos/{owner}/{repo}/releases/tags/{tag}", 200)).iter_errors(
            broken
        )
    )
    assert any("author" in e.message for e in errors)


def test_deployment_endpoints_match_the_openapi_description(
    spec: dict[str, Any], github: GitHubEmulator
) -> None:
    headers = {"Authorization": f"token {github.token}"}
    base = f"{github.url}/repos/acme/model-api/deployments"
    body = {"ref": "v1.0.0", "environment": "prod", "auto_merge": False, "required_contexts": []}
    created = requests.post(base, json=body, headers=headers, timeout=5)
    assert created.status_code == 201
    assert_conforms(spec, "/repos/{owner}/{repo}/deployments", created, "post")
    statuses = f"{base}/{created.json()['id']}/statuses"
    status = requests.post(
        statuses, json={"state": "success", "log_url": "https://x"}, headers=headers, timeout=5
    )
    assert status.status_code == 201
    assert_conforms(spec, "/repos/{owner}/{repo}/deployments/{deployment_id}/statuses", status, "post")
    listed = requests.get(base, params={"environment": "prod"}, headers=headers, timeout=5)
    assert_conforms(spec, "/repos/{owner}/{repo}/deployments", listed)
    assert [d["ref"] for d in listed.json()] == ["v1.0.0"]
