"""Drains left to the next run: objects traffic has left, to delete or scale to 0 once
``scale_down_delay`` has passed, when the command that moved the traffic had to end at once
(an interrupt, ``rollback``, ``abort``).

They are kept beside the release ledger, in the environment's namespace: one ConfigMap
``releasegate.<app>.drains`` (labelled ``releasegate.dev/drains=<app>``) whose ``drains`` key is
a JSON list, so that the next deploy, rollback or recover finds them whoever runs it, and
``status`` shows them. Encoding is pure; ``PendingDrains`` does the API calls.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from releasegate.core.errors import NeedsAttention
from releasegate.kube.api import translated_errors

if TYPE_CHECKING:
    from releasegate.kube.api import Cluster

LABEL = "releasegate.dev/drains"
DELETE, SCALE_TO_ZERO = "delete", "scale-to-0"


@dataclass(frozen=True)
class Leave:
    """One object traffic has left, and what becomes of it."""

    op: str  # DELETE or SCALE_TO_ZERO (a Deployment)
    path: str  # its API path
    slot: str = ""  # a blue/green slot: never left while Service <app> selects it again


@dataclass(frozen=True)
class Drain:
    what: str  # for people: "Deployment model-api-canary"
    due: float  # epoch seconds: when scale_down_delay has passed
    leaves: tuple[Leave, ...]
    by: str = ""  # the command that left it: "abort", "rollback", "an interrupted deploy"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "leaves": [asdict(leave) for leave in self.leaves]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Drain:
        leaves = tuple(Leave(**leave) for leave in data.get("leaves") or [])
        return cls(str(data["what"]), float(data["due"]), leaves, str(data.get("by", "")))


def config_map_name(app: str) -> str:
    return f"releasegate.{app}.drains"


class PendingDrains:
    def __init__(
        self, cluster: Cluster, namespace: str, app: str, before_write: Callable[[], None] = lambda: None
    ) -> None:
        self.cluster, self.namespace, self.app = cluster, namespace, app
        self.path = f"/api/v1/namespaces/{namespace}/configmaps/{config_map_name(app)}"
        self.before_write = before_write  # the deploy lock checks that it is still held

    def read(self) -> list[Drain]:
        with translated_errors("cannot read the pending drains in", self.namespace, NeedsAttention):
            found = self.cluster.get_or_none(self.path)
        text = ((found or {}).get("data") or {}).get("drains") or "[]"
        return [Drain.from_dict(item) for item in json.loads(text)]

    def add(self, drain: Drain) -> None:
        self.write([*self.read(), drain])

    def write(self, drains: list[Drain]) -> None:
        """Replace the list (the deploy lock is held: no other writer); none left: deleted."""
        from kubernetes.client.exceptions import ApiException

        self.before_write()
        with translated_errors("cannot write the pending drains in", self.namespace, NeedsAttention):
            try:
                if not drains:
                    self.cluster.call("DELETE", self.path, retry=True)
                    return
                self.cluster.call("PUT", self.path, body=self._config_map(drains), retry=True)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                if drains:  # not there yet: the first drain left to the next run
                    collection = self.path.rsplit("/", 1)[0]
                    self.cluster.call("POST", collection, body=self._config_map(drains), retry=True)

    def _config_map(self, drains: list[Drain]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": config_map_name(self.app), "namespace": self.namespace,
                         "labels": {LABEL: self.app}},
            "data": {"drains": json.dumps([d.as_dict() for d in drains], sort_keys=True)},
        }  # fmt: skip
