"""An environment's ApplySet (KEP-3659), the pure part: its id, the label its members carry,
and how a member is named. ``kube/applyset.py`` keeps the parent and prunes.

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF = "applyset.kubernetes.io/part-of"
PARENT_KIND = "ConfigMap"


@dataclass(frozen=True)
class Member:
    api_version: str
    kind: str
    name: str

    @property
    def group_kind(self) -> str:
        """As kubectl writes a GroupKind: ``Kind`` for the core group, else ``Kind.group``."""
        group = self.api_version.rpartition("/")[0]
        return f"{self.kind}.{group}" if group else self.kind

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


def parent_name(app: str) -> str:
    return f"{app}-applyset"


def applyset_id(app: str, namespace: str) -> str:
    """``applyset-<base64url(sha256(<name>.<namespace>.<kind>.<group>))>-v1``, as kubectl makes it."""
    digest = hashlib.sha256(f"{parent_name(app)}.{namespace}.{PARENT_KIND}.".encode()).digest()
    return f"applyset-{base64.urlsafe_b64encode(digest).decode().rstrip('=')}-v1"


def labelled(obj: dict[str, Any], set_id: str) -> dict[str, Any]:
    """``obj`` with the part-of label on its own metadata (never on a pod template)."""
    meta = obj.get("metadata") or {}
    return {**obj, "metadata": {**meta, "labels": {**(meta.get("labels") or {}), PART_OF: set_id}}}


def members(objects: Iterable[dict[str, Any]]) -> set[Member]:
    return {Member(o["apiVersion"], o["kind"], o["metadata"]["name"]) for o in objects}
