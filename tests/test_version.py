from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from releasegate.core.errors import BadInput
from releasegate.core.version import nearest_tags, parse_tag

INJECTIONS = [
    "v1.0.0; rm -rf /",
    "v1.0.0 && curl evil",
    "v1.0.0$(id)",
    "v1.0.0`id`",
    "v1.0.0\nkind: Secret",
    "v1.0.0\n---\napiVersion: v1",
    "v1.0.0\n",
    "{{ config }}",
    "v1.0.0-{{x}}",
    "{% raw %}",
    "v1.0.0'\"",
    "v1.0.0 ",
    "../../etc/passwd",
    "v1.0.0\x00",
    "v1.0.0\u202e",
]


@pytest.mark.parametrize(
    ("text", "major", "prerelease", "build"),
    [
        ("v1.4.2", 1, None, None),
        ("v0.0.1", 0, None, None),
        ("v2.0.0-rc.1", 2, "rc.1", None),
        ("v2.0.0-rc.1+build.7", 2, "rc.1", "build.7"),
        ("v10.20.30+sha.5114f85", 10, None, "sha.5114f85"),
    ],
)
def test_valid_tags_parse(text: str, major: int, prerelease: str | None, build: str | None) -> None:
    tag = parse_tag(text)
    assert (tag.version.major, tag.version.prerelease, tag.version.build) == (major, prerelease, build)
    assert tag.is_prerelease == (prerelease is not None)
    assert str(tag) == text


@pytest.mark.parametrize(
    "text", ["v1.4", "v1", "v1.4.2.5", "v01.4.2", "v1.04.2", "V1.4.2", "v1.4.2-", "v1.4.2+", "", "latest"]
)
def test_malformed_tags_are_bad_input(text: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_tag(text)
    assert "semantic version" in caught.value.cause or "must start" in caught.value.cause
    assert "v1.4.2" in caught.value.hint


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_attempts_are_bad_input_and_never_echoed_raw(text: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_tag(text)
    assert "\n" not in caught.value.one_line()


def test_prefix_policy() -> None:
    assert parse_tag("1.4.2", "optional").text == "1.4.2"
    assert parse_tag("v1.4.2", "optional").text == "v1.4.2"
    assert parse_tag("1.4.2", "forbidden").version.minor == 4
    with pytest.raises(BadInput, match="must start with 'v'"):
        parse_tag("1.4.2", "required")
    with pytest.raises(BadInput, match="must not start with 'v'"):
        parse_tag("v1.4.2", "forbidden")


def test_nearest_tags_prefers_close_matches_then_newest() -> None:
    existing = ["v2.0.0", "v1.4.1", "v1.4.0", "v1.3.0"]
    assert nearest_tags("v1.4.3", existing)[:2] == ["v1.4.1", "v1.4.0"]
    assert nearest_tags("zzz", existing) == ["v2.0.0", "v1.4.1", "v1.4.0"]
    assert nearest_tags("v1.4.3", []) == []


@given(st.text(max_size=60))
def test_any_text_is_a_tag_or_bad_input_never_another_error(text: str) -> None:
    try:
        tag = parse_tag(text, "optional")
    except BadInput as error:
        assert "\n" not in error.one_line()
        return
    # Whatever is accepted is plain semver: nothing a shell, YAML or Jinja could read as syntax.
    assert set(tag.text) <= set("v0123456789.+-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@given(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999))
def test_every_semver_triple_round_trips(major: int, minor: int, patch: int) -> None:
    tag = parse_tag(f"v{major}.{minor}.{patch}")
    assert (tag.version.major, tag.version.minor, tag.version.patch) == (major, minor, patch)
