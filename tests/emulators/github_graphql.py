"""GitHub's GraphQL API (``POST /graphql``), the part `metrics` asks: a repository's refs and
what they point at (a commit, or an annotated tag whose target is the commit).

The query is parsed, validated and executed by graphql-core against a subset of GitHub's public
schema (same type and field names), so aliases, variables, fragments, ``__typename`` and
validation errors behave as GraphQL does, not as one hard-coded query would. As GitHub does: a
missing ref is ``null``; a missing repository is ``null`` with a ``NOT_FOUND`` error; no token
is a 401 (the GraphQL API takes no anonymous requests).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import build_schema, graphql_sync

SCHEMA = build_schema("""
    scalar GitObjectID
    scalar DateTime
    scalar GitTimestamp

    type Query {
      repository(owner: String!, name: String!, followRenames: Boolean = true): Repository
    }

    type Repository {
      name: String!
      nameWithOwner: String!
      ref(qualifiedName: String!): Ref
    }

    type Ref {
      name: String!
      prefix: String!
      target: GitObject
    }

    interface GitObject {
      oid: GitObjectID!
      abbreviatedOid: String!
    }

    type Commit implements GitObject {
      oid: GitObjectID!
      abbreviatedOid: String!
      committedDate: DateTime!
      authoredDate: DateTime!
      message: String!
    }

    type Tag implements GitObject {
      oid: GitObjectID!
      abbreviatedOid: String!
      name: String!
      target: GitObject!
    }
""")
SCHEMA.type_map["GitObject"].resolve_type = lambda obj, info, abstract: obj["__typename"]  # type: ignore[attr-defined]


@dataclass
class TagData:
    name: str
    sha: str
    committed: str  # ISO 8601, Z
    annotated: bool = False


class _Repository:
    def __init__(self, full_name: str, tags: dict[str, TagData]) -> None:
        self.name, self.nameWithOwner, self._tags = full_name.split("/")[1], full_name, tags

    def ref(self, info: Any, qualifiedName: str) -> dict[str, Any] | None:
        prefix, _, short = qualifiedName.rpartition("/")
        tag = self._tags.get(short) if prefix == "refs/tags" else None
        if tag is None:
            return None
        commit = {"__typename": "Commit", "oid": tag.sha, "abbreviatedOid": tag.sha[:7], "message": tag.name,
                  "committedDate": tag.committed, "authoredDate": tag.committed}  # fmt: skip
        target = commit
        if tag.annotated:
            tag_sha = tag.sha[::-1]
            target = {"__typename": "Tag", "oid": tag_sha, "abbreviatedOid": tag_sha[:7], "name": tag.name,
                      "target": commit}  # fmt: skip
        return {"name": short, "prefix": "refs/tags/", "target": target}


class _Root:
    def __init__(self, full_name: str, tags: dict[str, TagData]) -> None:
        self._full_name, self._tags = full_name, tags

    def repository(self, info: Any, owner: str, name: str, followRenames: bool = True) -> _Repository | None:
        if f"{owner}/{name}".lower() != self._full_name.lower():
            return None
        return _Repository(self._full_name, self._tags)


def execute(full_name: str, tags: dict[str, TagData], body: Any) -> tuple[int, dict[str, Any]]:
    """The status and JSON GitHub answers a GraphQL request with."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return 400, {
            "message": "Problems parsing JSON",
            "documentation_url": "https://docs.github.com/graphql",
        }
    answer = graphql_sync(SCHEMA, body["query"], root_value=_Root(full_name, tags),
                          variable_values=body.get("variables") or {})  # fmt: skip
    result: dict[str, Any] = {}
    if answer.data is not None or not answer.errors:
        result["data"] = answer.data
    errors = [error.formatted for error in answer.errors or []]
    if answer.data is not None and answer.data.get("repository", 1) is None:
        given = body.get("variables") or {}
        missing = (
            f"Could not resolve to a Repository with the name '{given.get('owner')}/{given.get('name')}'."
        )
        errors.append({"type": "NOT_FOUND", "path": ["repository"], "message": missing})
    if errors:
        result["errors"] = errors
    return 200, result
