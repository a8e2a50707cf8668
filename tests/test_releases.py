"""releases.py against the GitHub emulator over HTTP (PyGithub does the talking)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from releasegate.core.errors import BadInput, Refused
from releasegate.github.releases import ReleaseSource, list_releases, validate_release
from tests.emulators.github import GitHubEmulator


@pytest.fixture
def github() -> Iterator[GitHubEmulator]:
    server = GitHubEmulator().start()
    yield server
    server.stop()


def source(github: GitHubEmulator, token: str | None = None) -> ReleaseSource:
    return ReleaseSource(github.repository, api_url=github.url, token=token or github.token)


def thousand_releases(github: GitHubEmulator) -> None:
    for minor in range(40):
        for patch in range(25):
            github.add_release(f"v1.{minor}.{patch}")


def test_published_release_costs_one_request_among_a_thousand(github: GitHubEmulator) -> None:
    thousand_releases(github)
    tag, release = validate_release(source(github), "v1.3.7", "required", False, "prod")
    assert (tag.text, release.draft) == ("v1.3.7", False)
    assert [r.path for r in github.api_requests()] == ["/repos/acme/model-api/releases/tags/v1.3.7"]


def test_unknown_tag_costs_two_requests_among_a_thousand(github: GitHubEmulator) -> None:
    thousand_releases(github)
    with pytest.raises(Refused) as caught:
        validate_release(source(github), "v1.39.99", "required", False, "prod")
    assert "nearest releases: v1.39.9" in caught.value.hint
    assert len(github.api_requests()) == 2


def test_malformed_tag_makes_no_request(github: GitHubEmulator) -> None:
    with pytest.raises(BadInput):
        validate_release(source(github), "v1.0", "required", False, "prod")
    assert github.requests == []


def test_draft_and_prerelease(github: GitHubEmulator) -> None:
    github.add_release("v3.0.0", draft=True)
    github.add_release("v3.0.0-rc.1", prerelease=True)
    with pytest.raises(Refused, match="draft"):
        validate_release(source(github), "v3.0.0", "required", True, "nonprod")
    with pytest.raises(Refused, match="prerelease and prod does not take prereleases"):
        validate_release(source(github), "v3.0.0-rc.1", "required", False, "prod")
    assert validate_release(source(github), "v3.0.0-rc.1", "required", True, "nonprod")[1].prerelease


def test_listing_paginates_nothing_and_sorts_by_version(github: GitHubEmulator) -> None:
    for tag in ("v1.9.0", "v1.10.0", "v1.2.0", "not-semver"):
        github.add_release(tag)
    found = [t.text for t, _ in list_releases(source(github), "required")]
    assert found == ["v1.10.0", "v1.9.0", "v1.2.0"]


def test_link_header_paginates_like_github(github: GitHubEmulator) -> None:
    thousand_releases(github)
    import requests

    response = requests.get(f"{github.url}/repos/acme/model-api/releases?per_page=100&page=2", timeout=5)
    assert len(response.json()) == 100
    assert (
        'page=3>; rel="next"' in response.headers["Link"]
        and 'page=10>; rel="last"' in response.headers["Link"]
    )
    assert 'page=1>; rel="prev"' in response.headers["Link"]


def test_bad_token_is_refused_naming_the_variable(github: GitHubEmulator) -> None:
    with pytest.raises(Refused) as caught:
        validate_release(source(github, token="ghp_wrong"), "v1.0.0", "required", False, "prod")
    assert "401" in caught.value.cause and "GITHUB_TOKEN" in caught.value.hint


def test_rate_limit_says_when_it_resets(github: GitHubEmulator) -> None:
    github.faults.rate_limited_until = int(time.time()) + 600
    with pytest.raises(Refused) as caught:
        validate_release(source(github), "v1.0.0", "required", False, "prod")
    assert "rate limit exhausted until" in caught.value.cause


def test_server_errors_are_retried_then_refused(github: GitHubEmulator) -> None:
    github.add_release("v1.0.0")
    github.fail_next(502, times=1)
    assert validate_release(source(github), "v1.0.0", "required", False, "prod")[0].text == "v1.0.0"
    github.fail_next(503, times=10)
    with pytest.raises(Refused, match="answered 503"):
        validate_release(source(github), "v1.0.0", "required", False, "prod")


def test_unknown_repository_is_refused(github: GitHubEmulator) -> None:
    other = ReleaseSource("acme/nope", api_url=github.url, token=github.token)
    with pytest.raises(Refused, match="repository not found"):
        validate_release(other, "v1.0.0", "required", False, "prod")


def test_unreachable_github_is_refused() -> None:
    with pytest.raises(Refused, match="unreachable"):
        validate_release(
            ReleaseSource("a/b", api_url="http://127.0.0.1:9", token="t"), "v1.0.0", "required", False, "x"
        )


def test_a_secondary_rate_limit_is_waited_out_as_github_asks(github: GitHubEmulator) -> None:
    github.add_release("v1.4.2")
    github.faults.secondary_limited = 1
    started = time.monotonic()
    _tag, release = validate_release(source(github), "v1.4.2", "required", False, "prod")
    assert release.tag == "v1.4.2"
    assert time.monotonic() - started >= 1.0  # Retry-After: 1 was respected
    assert len(github.api_requests()) == 2


def test_an_exhausted_primary_rate_limit_fails_at_once(github: GitHubEmulator) -> None:
    github.faults.rate_limited_until = int(time.time()) + 900
    started = time.monotonic()
    with pytest.raises(Refused, match="rate limit exhausted until"):
        validate_release(source(github), "v1.4.2", "required", False, "prod")
    assert time.monotonic() - started < 5  # not waiting 15 minutes for the reset
