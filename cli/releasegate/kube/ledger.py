"""The release ledger: every deploy attempt and its outcome, kept in the cluster itself.

One ConfigMap per revision in the environment's namespace (``releasegate.<app>.v<N>``,
labelled ``releasegate.dev/ledger=<app>``), the way Helm keeps one record per release
revision, so that ``status``, ``history`` and ``rollback`` answer from the cluster and not
from anyone's laptop. The last ``KEEP`` records are kept. Encoding is pure and tested
without a server; ``Ledger`` does the API calls.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from releasegate.core.errors import NeedsAttention, Refused
from releasegate.kube.api import translated_errors

if TYPE_CHECKING:
    from releasegate.core.config import Environment
    from releasegate.core.placement import Manifest
    from releasegate.kube.api import Cluster

# Records kept per environment (per cluster): a month of several deploys a day, for `metrics`.
# Every deploy reads them in one list (about 1 KB each), so the count stays bounded.
KEEP = 100
LABEL = "releasegate.dev/ledger"
PENDING, DEPLOYED, FAILED, INTERRUPTED = "pending", "deployed", "failed", "interrupted"
# A release stopped on purpose (`pause_before_switch`, a canary approval step) until `promote`
# goes on or `abort` puts back what served before; aborted is where an abort leaves it.
PAUSED, ABORTED = "paused", "aborted"
# Why a record puts an earlier release back (Record.restore): a failed deploy restored at once,
# `rollback`, `recover` after a killed run, put back when another cluster of the wave failed.
AFTER_FAILURE, ROLLBACK, RECOVER, PUT_BACK = "after-failure", "rollback", "recover", "put-back"
# Outcomes that end an attempt: anything else left newest in the ledger is unfinished work.
FINISHED = (DEPLOYED, PAUSED, ABORTED)


@dataclass(frozen=True)
class Record:
    revision: int
    tag: str
    image: str  # repository@sha256:…, exactly what was deployed
    commit: str
    actor: str
    at: str  # UTC, ISO 8601
    outcome: str
    manifest_hash: str
    note: str = ""
    strategy: str = ""  # how it was put in service (empty: rolling, before strategies existed)
    slot: str = ""  # blue/green: the slot it went to
    step: str = ""  # a paused release: where it stopped (blue/green: "before-switch")
    github_deployment: str = ""  # the GitHub deployment's id, for statuses after a pause
    # The template values it was rendered with (JSON; empty for a chart, or a record from before
    # they were kept): a restore renders the release as it was, not with today's values.
    values: str = ""
    rollout: str = ""  # one deploy across several clusters: the id its records share
    freeze_override: str = ""  # deployed during a freeze: the window and the reason given
    finished: str = ""  # UTC, ISO 8601: when it got its outcome (deployed: verified)
    # A record putting an earlier release back: why (rollback, restore after a failure,
    # recover, put back after another cluster failed); empty for a release's own deploy.
    restore: str = ""

    @property
    def digest(self) -> str:
        return self.image.partition("@")[2]


def actor() -> str:
    """Who deploys: the GitHub actor in Actions, else the local user and host."""
    return os.environ.get("GITHUB_ACTOR") or f"{getpass.getuser()}@{socket.gethostname()}"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def manifest_hash(manifests: list[Manifest]) -> str:
    digest = hashlib.sha256()
    for manifest in sorted(manifests, key=lambda m: m.filename):
        digest.update(manifest.filename.encode() + b"\0" + manifest.text.encode() + b"\0")
    return "sha256:" + digest.hexdigest()


def recorded_values(env: Environment) -> str:
    """What a record keeps of the environment: its template values (a chart's are its files)."""
    return json.dumps(env.values, sort_keys=True) if env.renderer == "templates" else ""


def config_map_name(app: str, revision: int) -> str:
    return f"releasegate.{app}.v{revision}"


def to_config_map(record: Record, app: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(app, record.revision),
            "namespace": namespace,
            "labels": {LABEL: app, "releasegate.dev/outcome": record.outcome},
        },
        "data": {k: str(v) for k, v in asdict(record).items()},
    }


def from_config_map(obj: dict[str, Any]) -> Record:
    data = obj.get("data") or {}
    known = {f.name for f in fields(Record)}
    values: dict[str, Any] = {k: v for k, v in data.items() if k in known}
    values["revision"] = int(values.get("revision", 0))
    return Record(**{f.name: values.get(f.name, "") for f in fields(Record)})


def paused(records: list[Record]) -> Record | None:
    """The release waiting for `promote` or `abort`: the newest record, when it is paused."""
    return records[0] if records and records[0].outcome == PAUSED else None


def serving(records: list[Record]) -> Record | None:
    """The release that should be serving: the newest one that deployed and verified."""
    return next((r for r in records if r.outcome == DEPLOYED), None)


class Ledger:
    def __init__(
        self, cluster: Cluster, namespace: str, app: str, before_write: Callable[[], None] = lambda: None
    ) -> None:
        self.cluster, self.namespace, self.app = cluster, namespace, app
        self.path = f"/api/v1/namespaces/{namespace}/configmaps"
        # Called before every write: the deploy lock checks that it is still held.
        self.before_write = before_write

    def records(self) -> list[Record]:
        """Newest first."""
        with translated_errors("cannot read the release ledger in", self.namespace, Refused):
            items = self.cluster.get(self.path, labelSelector=f"{LABEL}={self.app}")["items"]
        return sorted((from_config_map(i) for i in items), key=lambda r: r.revision, reverse=True)

    def append(self, read: list[Record] | None = None, **values: Any) -> Record:
        """A new newest record. ``read``: the records as read under the deploy lock that is
        still held (no other writer since), so they are not read again."""
        self.before_write()
        existing = self.records() if read is None else read
        revision = (existing[0].revision if existing else 0) + 1
        at = now()
        record = Record(revision=revision, actor=actor(), at=at, finished=at if values.get("restore") else "",
                        **values)  # fmt: skip
        with translated_errors("cannot write the release ledger in", self.namespace, NeedsAttention):
            self._create(to_config_map(record, self.app, self.namespace))
            for old in existing[KEEP - 1 :]:
                self._delete(config_map_name(self.app, old.revision))
        return record

    def mark(self, record: Record, outcome: str, note: str = "", **changes: Any) -> Record:
        self.before_write()
        updated = replace(record, outcome=outcome, note=note or record.note, finished=now(), **changes)
        path = f"{self.path}/{config_map_name(self.app, record.revision)}"
        with translated_errors("cannot write the release ledger in", self.namespace, NeedsAttention):
            # A whole replacement without a resourceVersion: repeating it is harmless.
            self.cluster.call("PUT", path, body=to_config_map(updated, self.app, self.namespace), retry=True)
        return updated

    def _create(self, config_map: dict[str, Any]) -> None:
        """Create, retrying transient failures; a retry that finds its own earlier attempt
        already stored (the answer was lost, not the write) is a success."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.cluster.call("POST", self.path, body=config_map, retry=True)
        except ApiException as exc:
            if exc.status != 409:
                raise
            stored = self.cluster.get(f"{self.path}/{config_map['metadata']['name']}")
            if stored.get("data") != config_map["data"]:
                raise  # another writer took this revision number

    def _delete(self, name: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.cluster.call("DELETE", f"{self.path}/{name}", retry=True)
        except ApiException as exc:
            if exc.status != 404:  # gone already: what a retry after a lost answer finds
                raise


def step_value(step: str) -> str | int | None:
    """A paused release's step as reported: a canary's number ("step 2" -> 2), else the name."""
    if not step:
        return None
    number = step.removeprefix("step ")
    return int(number) if number != step and number.isdigit() else step
