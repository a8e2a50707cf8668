"""The deploy lock: one ``coordination.k8s.io/v1`` Lease per environment.

Taken before the first change, renewed in the background while the deploy runs, deleted
at the end whatever the outcome. A second deploy while it is held is refused, naming the
holder. A Lease whose holder stopped renewing for longer than its duration (a runner that
was killed) is taken over, with a warning. Writes carry the resourceVersion they read, so
two deploys racing for a free Lease cannot both win.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .errors import Refused
from .kube import translated_errors

if TYPE_CHECKING:
    from .kube import Cluster

DURATION_SECONDS = 30


def micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


def expired(spec: dict[str, Any], at: datetime) -> bool:
    renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    duration = int(spec.get("leaseDurationSeconds") or DURATION_SECONDS)
    return renewed is None or at > renewed + timedelta(seconds=duration)


class DeployLock:
    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        identity: str,
        on_warning: Callable[[str], None],
        duration: int = DURATION_SECONDS,
    ) -> None:
        self.cluster, self.identity, self.duration = cluster, identity, duration
        self.on_warning = on_warning
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.name, self.namespace = name, namespace
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __enter__(self) -> DeployLock:
        with translated_errors("cannot take the deploy lock (a Lease) in", self.namespace, Refused):
            self.acquire()
        self._renewer = threading.Thread(target=self._renew_until_stopped, daemon=True)
        self._renewer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._renewer:
            self._renewer.join(timeout=5)
        try:
            self.release()
        except Exception as exc:  # it expires by itself; the deploy's own outcome matters more
            self.on_warning(f"could not release the deploy lock ({exc.__class__.__name__}); it expires in "
                            f"{self.duration}s")  # fmt: skip

    def acquire(self) -> None:
        from kubernetes.client.exceptions import ApiException

        current = self._read()
        moment = datetime.now(UTC)
        try:
            if current is None:
                self.cluster.call("POST", self.path, body=self._lease(moment, transitions=0))
                return
            spec = current.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder and holder != self.identity and not expired(spec, moment):
                raise self._held(spec)
            if holder and holder != self.identity:
                self.on_warning(f"taking over the deploy lock from {holder}, which stopped renewing it")
            lease = self._lease(moment, transitions=int(spec.get("leaseTransitions") or 0) + 1)
            lease["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self.cluster.call("PUT", f"{self.path}/{self.name}", body=lease)
        except ApiException as exc:
            if exc.status != 409:
                raise
            raise self._held((self._read() or {}).get("spec") or {}) from exc

    def release(self) -> None:
        current = self._read()
        if current and (current.get("spec") or {}).get("holderIdentity") == self.identity:
            self.cluster.call("DELETE", f"{self.path}/{self.name}")

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.duration / 3):
            try:
                current = self._read()
                if current is None:
                    continue
                current["spec"]["renewTime"] = micro_time(datetime.now(UTC))
                self.cluster.call("PUT", f"{self.path}/{self.name}", body=current)
            except Exception as exc:  # the next renewal may succeed; the deploy goes on
                self.on_warning(f"could not renew the deploy lock ({exc.__class__.__name__})")

    def _read(self) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(self.cluster.call("GET", f"{self.path}/{self.name}"))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _lease(self, moment: datetime, transitions: int) -> dict[str, Any]:
        stamp = micro_time(moment)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": self.duration,
                "acquireTime": stamp,
                "renewTime": stamp,
                "leaseTransitions": transitions,
            },
        }

    def _held(self, spec: dict[str, Any]) -> Refused:
        holder = spec.get("holderIdentity") or "another deploy"
        since = spec.get("acquireTime") or "an unknown time"
        return Refused(
            f"another deploy holds the {self.namespace} lock: {holder}, since {since}",
            f"wait for it to finish; if it died, the lock expires {self.duration}s after its last renewal",
        )
