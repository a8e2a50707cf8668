"""When each release's commit was made: for `metrics`' lead time for changes.

One GraphQL request answers up to ``BATCH`` tags (one aliased ``ref`` field per tag, the tag
names passed as variables, never spliced into the query): 100 releases cost one request, where
REST would need one per tag (a tag's commit date is not in the releases or tags lists).
An annotated tag points at a Tag object, whose target is the commit. GitHub's GraphQL API
needs a token; without one the lead time is reported as unknown.

Layer: adapter for GitHub (imports only core and github/).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from releasegate.github.releases import ReleaseSource

BATCH = 100
COMMIT = "... on Commit { committedDate }"
TARGET = f"target {{ __typename {COMMIT} ... on Tag {{ target {{ __typename {COMMIT} }} }} }}"


def commit_times(source: ReleaseSource, tags: list[str]) -> dict[str, datetime]:
    """Tag -> its commit's time, for the tags GitHub knows (a deleted tag is simply absent)."""
    unique = sorted(set(tags))
    found: dict[str, datetime] = {}
    for start in range(0, len(unique), BATCH):
        found.update(_batch(source, unique[start : start + BATCH]))
    return found


def query_for(count: int) -> str:
    variables = "".join(f", $t{n}: String!" for n in range(count))
    fields = " ".join(f"t{n}: ref(qualifiedName: $t{n}) {{ {TARGET} }}" for n in range(count))
    repository = f"repository(owner: $owner, name: $name) {{ {fields} }}"
    return f"query($owner: String!, $name: String!{variables}) {{ {repository} }}"


def _batch(source: ReleaseSource, tags: list[str]) -> dict[str, datetime]:
    owner, name = source.repository.split("/", 1)
    variables: dict[str, Any] = {"owner": owner, "name": name}
    variables.update({f"t{n}": f"refs/tags/{tag}" for n, tag in enumerate(tags)})
    with source.translated_errors():
        requester = source.repository_api().requester
        _headers, data = requester.graphql_query(query_for(len(tags)), variables)
    repository = (data.get("data") or {}).get("repository") or {}
    found = {}
    for n, tag in enumerate(tags):
        when = _committed(repository.get(f"t{n}"))
        if when is not None:
            found[tag] = when
    return found


def _committed(ref: Any) -> datetime | None:
    target = (ref or {}).get("target") or {}
    if target.get("__typename") == "Tag":  # an annotated tag: the commit is its target
        target = target.get("target") or {}
    stamp = target.get("committedDate")
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")) if isinstance(stamp, str) else None
