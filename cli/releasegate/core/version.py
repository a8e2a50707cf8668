"""Release tags: strict semver parsing and the prefix policy. Pure: no I/O.

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

import semver

from releasegate.core.errors import BadInput

PrefixPolicy = Literal["required", "optional", "forbidden"]

# Checked before semver: only the characters a semver tag can hold, so that nothing with
# whitespace, quotes, shell or template syntax can pass even if a parser were lenient
# (Python's `$` matches before a trailing newline, for one).
_TAG_CHARACTERS = re.compile(r"v?[0-9A-Za-z.+-]{5,120}")


@dataclass(frozen=True, order=False)
class ReleaseTag:
    text: str
    version: semver.Version

    @property
    def is_prerelease(self) -> bool:
        return self.version.prerelease is not None

    def __str__(self) -> str:
        return self.text


def parse_tag(text: str, prefix: PrefixPolicy = "required") -> ReleaseTag:
    """Parse a release tag such as ``v1.4.2`` or ``v2.0.0-rc.1+build.7``."""
    shown = text if _TAG_CHARACTERS.fullmatch(text) else repr(text[:40])
    if not _TAG_CHARACTERS.fullmatch(text):
        raise BadInput(
            f"tag {shown} is not a semantic version",
            _example(prefix),
        )
    has_v = text.startswith("v")
    if prefix == "required" and not has_v:
        raise BadInput(f"tag {shown} must start with 'v'", _example(prefix))
    if prefix == "forbidden" and has_v:
        raise BadInput(f"tag {shown} must not start with 'v'", _example(prefix))
    try:
        version = semver.Version.parse(text[1:] if has_v else text)
    except ValueError as exc:
        raise BadInput(f"tag {shown} is not a semantic version", _example(prefix)) from exc
    return ReleaseTag(text=text, version=version)


def _example(prefix: PrefixPolicy) -> str:
    v = "" if prefix == "forbidden" else "v"
    return f"use {v}MAJOR.MINOR.PATCH, optionally -PRERELEASE and +BUILD, e.g. {v}1.4.2 or {v}2.0.0-rc.1"


def nearest_tags(wanted: str, candidates: list[str], limit: int = 3) -> list[str]:
    """The existing tags most like ``wanted``, for a 'did you mean' hint.

    Falls back to the first candidates (newest first, as GitHub lists them) when nothing
    is textually close, so the hint always shows what does exist.
    """
    close = difflib.get_close_matches(wanted, candidates, n=limit, cutoff=0.6)
    return close or candidates[:limit]
