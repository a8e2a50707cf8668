"""Pruning, with either deployer: an environment's objects form an ApplySet (KEP-3659, as
``kubectl apply --applyset`` keeps one), so that what a release no longer renders can be deleted
and nothing else ever is.

- The parent is the ConfigMap ``<app>-applyset`` in the environment's namespace, labelled
  ``applyset.kubernetes.io/id: applyset-<base64url(sha256(<name>.<namespace>.ConfigMap.))>-v1``
  and annotated with the tooling (``releasegate/<version>``) and the group-kinds its members
  have (``applyset.kubernetes.io/contains-group-kinds``: ``Deployment.apps,Service,…``).
- Every object releasegate renders carries the label ``applyset.kubernetes.io/part-of`` with
  that id (on the object only: pod templates are untouched, so adopting it restarts nothing).
- Before a deploy the parent's group-kinds become the union of what it held and what the release
  renders (an interrupted run leaks nothing); once the release is good, the members of those
  kinds that the environment no longer renders are deleted, and the parent lists the new kinds.

Which members are still wanted is the caller's: the union of every object the strategy renders
in any of its placements (both blue/green slots, both canary tracks), so a strategy's own objects
follow the strategy. Only objects carrying the part-of label are listed, so nothing outside the
set can be deleted.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from releasegate.core.applyset import ID_LABEL, PARENT_KIND, PART_OF, Member, applyset_id, parent_name
from releasegate.core.errors import NeedsAttention
from releasegate.kube.api import at_once

if TYPE_CHECKING:
    from releasegate.kube.api import Cluster
    from releasegate.kube.serverside import Resources

TOOLING = "applyset.kubernetes.io/tooling"
GROUP_KINDS = "applyset.kubernetes.io/contains-group-kinds"


class ApplySet:
    def __init__(self, cluster: Cluster, namespace: str, app: str) -> None:
        self.cluster, self.namespace, self.app = cluster, namespace, app
        self.id = applyset_id(app, namespace)
        self.path = f"/api/v1/namespaces/{namespace}/configmaps/{parent_name(app)}"
        # The parent as ``group_kinds`` read it, for the next write's first try: the deploy lock
        # is held, and the write carries its resourceVersion (a stale copy is a 409, read again).
        self._read: tuple[dict[str, Any] | None] | None = None

    def group_kinds(self) -> set[str]:
        parent = self.cluster.get_or_none(self.path)
        self._read = (parent,)
        return _group_kinds(parent)

    def cover(self, kinds: set[str]) -> None:
        """The parent exists and names at least ``kinds`` (with what it named before)."""
        self._write(lambda named: named | kinds)

    def prunable(self, wanted: set[Member], resources: Resources) -> list[tuple[Member, str]]:
        """(member, its API path) of every object in the set that ``wanted`` does not hold.
        Each kind's members are listed at once (one round trip, not one per kind)."""
        by_kind = {m.group_kind: m for m in wanted}
        group_kinds = sorted(self.group_kinds() | set(by_kind))
        versions = at_once(
            lambda gk: _api_version(gk.partition(".")[2], by_kind.get(gk), resources), group_kinds
        )
        resources.learn(versions)
        kinds = [gk.partition(".")[0] for gk in group_kinds]
        collections = [
            resources.path(api_version, kind, self.namespace, "").rstrip("/")
            for api_version, kind in zip(versions, kinds, strict=True)
        ]
        listings = at_once(
            lambda collection: self.cluster.get(collection, labelSelector=f"{PART_OF}={self.id}"), collections
        )
        found = []
        for api_version, kind, collection, listed in zip(versions, kinds, collections, listings, strict=True):
            for obj in listed.get("items") or []:
                member = Member(api_version, kind, obj["metadata"]["name"])
                if member not in wanted and not obj["metadata"].get("deletionTimestamp"):
                    found.append((member, f"{collection}/{member.name}"))
        return found

    def narrow(self, kinds: set[str]) -> None:
        """After pruning: the parent names exactly the kinds the set has now."""
        self._write(lambda named: kinds)

    def _write(self, kinds_after: Callable[[set[str]], set[str]]) -> None:
        """Create the parent, or write its label and annotations: the group-kinds
        ``kinds_after`` makes of those it names now, read once (409: read again, write again:
        the deploy lock is held, so only a stray writer can be in between)."""
        from kubernetes.client.exceptions import ApiException

        for _ in range(3):
            current = self._read[0] if self._read else self.cluster.get_or_none(self.path)
            self._read = None
            kinds = kinds_after(_group_kinds(current))
            annotations = {TOOLING: f"releasegate/{_version()}", GROUP_KINDS: ",".join(sorted(kinds))}
            if current is not None and _says(current, self.id, annotations):
                return  # already so: no write
            parent: dict[str, Any] = copy.deepcopy(current) if current else self._new_parent()
            meta = parent["metadata"]
            meta["labels"] = {**(meta.get("labels") or {}), ID_LABEL: self.id}
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
            try:
                if current is None:
                    self.cluster.call("POST", self.path.rsplit("/", 1)[0], body=parent, retry=True)
                else:
                    self.cluster.call("PUT", self.path, body=parent)
                return
            except ApiException as exc:
                if exc.status != 409:
                    raise
        raise NeedsAttention(f"could not write the ApplySet parent {self.path}", "deploy again")

    def _new_parent(self) -> dict[str, Any]:
        meta = {"name": parent_name(self.app), "namespace": self.namespace}
        return {"apiVersion": "v1", "kind": PARENT_KIND, "metadata": meta}


def _group_kinds(parent: dict[str, Any] | None) -> set[str]:
    text = ((parent or {}).get("metadata", {}).get("annotations") or {}).get(GROUP_KINDS, "")
    return {gk for gk in text.split(",") if gk}


def _says(parent: dict[str, Any], set_id: str, annotations: dict[str, str]) -> bool:
    meta = parent.get("metadata") or {}
    have = meta.get("annotations") or {}
    return (meta.get("labels") or {}).get(ID_LABEL) == set_id and all(
        have.get(k) == v for k, v in annotations.items()
    )


def _api_version(group: str, wanted: Member | None, resources: Resources) -> str:
    """The version to list a group's kind with: the one the release uses, else the group's preferred."""
    if wanted is not None:
        return wanted.api_version
    return resources.preferred_version(group)


@cache
def _version() -> str:
    try:
        return version("releasegate")
    except PackageNotFoundError:
        return "unknown"
