"""The deploy lock: one ``coordination.k8s.io/v1`` Lease per environment.

Taken before the first change, renewed in the background while the deploy runs, deleted at
the end whatever the outcome. A second deploy while it is held is refused, naming the holder.

Held once, never twice:
- every write carries the resourceVersion it read (409 when someone else wrote first), and
  the release is a DELETE with that resourceVersion as its precondition;
- the renewer renews only while the Lease still names this holder, and stops when it does not;
- staleness is judged the way client-go's leader election does, from changes this machine
  observed itself, never by comparing its clock with a ``renewTime`` another machine wrote:
  a Lease that looks stale by this clock is watched for its own duration, and taken over
  only if nothing changed meanwhile (clock skew can delay a take-over, never allow two);
- ``ensure_held`` (called before every change) reads the Lease: a deploy that lost it stops
  before its next change with ``LockLost`` (exit 5: someone else may be changing things).

An abort during an incident must reach a deploy that holds the lock (a canary pausing at 50 %):
``request_abort`` annotates the holder's Lease with who asks and for which holder (renewals
keep the annotations: they write back the Lease they read), and the holder's check rounds ask
``abort_requested_by``. A request names its holder, so a later deploy never sees a stale one.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from releasegate.core.errors import NeedsAttention, Refused
from releasegate.kube.api import translated_errors
from releasegate.kube.ledger import actor

if TYPE_CHECKING:
    from releasegate.kube.api import Cluster

DURATION_SECONDS = 30
ABORT_BY = "releasegate.dev/abort-requested-by"  # who ran `releasegate abort`, and when
ABORT_FOR = "releasegate.dev/abort-requested-for"  # the holder the request is for


class LockLost(NeedsAttention):
    """Another deploy holds the lock now: stop before changing anything more."""


class LockHeld(Refused):
    """Another deploy holds the lock: refused before any change."""

    def __init__(self, cause: str, hint: str, holder: str) -> None:
        super().__init__(cause, hint)
        self.holder = holder


def holder_identity() -> str:
    """Unique per process: ``actor pid N`` alone repeats across containers (pid 1 everywhere)."""
    return f"{actor()} ({this_run() or ''}{socket.gethostname()}, pid {os.getpid()}, {uuid.uuid4().hex[:8]})"


def this_run() -> str | None:
    """The GitHub Actions run and attempt, as it appears in a holder identity."""
    run = os.environ.get("GITHUB_RUN_ID")
    return f"run {run}/{os.environ.get('GITHUB_RUN_ATTEMPT', '1')}, " if run else None


def micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text.replace("Z", "+0000"), "%Y-%m-%dT%H:%M:%S.%f%z")


def expired(spec: dict[str, Any], at: datetime) -> bool:
    """Whether the Lease looks expired by the clock that says ``at``: a hint only, never
    enough on its own to take a Lease over (another machine's clock wrote renewTime)."""
    renewed = parse_time(spec.get("renewTime") or spec.get("acquireTime"))
    return renewed is None or at > renewed + timedelta(seconds=_duration(spec))


class DeployLock:
    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        name: str,
        identity: str,
        on_warning: Callable[[str], None],
        duration: int = DURATION_SECONDS,
        take_over_this_run: bool = False,
    ) -> None:
        self.cluster, self.identity, self.duration = cluster, identity, duration
        # A step of this same Actions run held it: the runner killed that step's processes
        # before it ran this one (`if: cancelled()`), so its Lease is certainly abandoned.
        self.take_over_this_run = take_over_this_run
        self.on_warning = on_warning
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self.name, self.namespace = name, namespace
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self._mine: dict[str, Any] | None = None  # the Lease as this holder last wrote it
        self._renewed = time.monotonic()  # when this holder last renewed, by its own clock
        self._lost_to: str | None = None

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
        try:
            if current is None:
                self._mine = self.cluster.call("POST", self.path, body=self._lease(0), retry=True)
                return
            spec = current.get("spec") or {}
            holder = spec.get("holderIdentity")
            if holder and holder != self.identity and not self._held_by_this_run(holder):
                current = self._confirm_abandoned(current)
                if current is None:  # released while we watched: free now
                    self._mine = self.cluster.call("POST", self.path, body=self._lease(0), retry=True)
                    return
                self.on_warning(f"taking over the deploy lock from {holder}, which stopped renewing it")
            lease = self._lease(int(spec.get("leaseTransitions") or 0) + 1)
            lease["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            self._mine = self.cluster.call("PUT", f"{self.path}/{self.name}", body=lease)
        except ApiException as exc:
            if exc.status != 409:
                raise
            latest = self._read() or {}
            if latest.get("spec", {}).get("holderIdentity") == self.identity:
                self._mine = latest  # a retried write whose first answer was lost: it is ours
                return
            raise self._held(latest.get("spec") or {}) from exc
        finally:
            self._renewed = time.monotonic()

    def _held_by_this_run(self, holder: str) -> bool:
        run = this_run()
        return self.take_over_this_run and run is not None and f"({run}" in holder

    def _confirm_abandoned(self, current: dict[str, Any]) -> dict[str, Any] | None:
        """The Lease, once this machine has seen it unchanged for its whole duration; Refused
        as soon as it changes (its holder is alive). Refused at once when it looks fresh."""
        spec = current.get("spec") or {}
        if not expired(spec, datetime.now(UTC)):
            raise self._held(spec)
        seconds = _duration(spec)
        self.on_warning(
            f"the deploy lock is held by {spec.get('holderIdentity')}, which seems to have stopped renewing "
            f"it: watching it for {seconds}s before taking it over"
        )
        version = current["metadata"]["resourceVersion"]
        until = time.monotonic() + seconds
        while (remaining := until - time.monotonic()) > 0:
            time.sleep(min(remaining, 0.5))
            latest = self._read()
            if latest is None:
                return None
            if latest["metadata"]["resourceVersion"] != version:
                raise self._held(latest.get("spec") or {})
        return current

    def ensure_held(self) -> None:
        """Before a change: LockLost if another holder took the Lease, or if this one could
        not renew it for a whole duration (others may have taken it over by now)."""
        if self._lost_to is None:
            try:
                current = self._read()
                holder = (current or {}).get("spec", {}).get("holderIdentity")
                if holder != self.identity:
                    self._lost_to = holder or "nobody (the Lease was deleted)"
            except Exception:  # unreadable: judged by how long ago it was renewed
                if time.monotonic() - self._renewed > self.duration:
                    self._lost_to = f"nobody known (not renewed for over {self.duration}s)"
        if self._lost_to is not None:
            raise LockLost(
                f"lost the {self.namespace} deploy lock to {self._lost_to}; "
                "stopped before changing anything more",
                "another deploy may be changing this environment: a person must look (`releasegate status`)",
            )

    def abort_requested_by(self) -> str | None:
        """Who asked this holder to abort (``releasegate abort`` while it holds the lock)."""
        annotations = ((self._read() or {}).get("metadata") or {}).get("annotations") or {}
        return annotations.get(ABORT_BY) if annotations.get(ABORT_FOR) == self.identity else None

    def release(self) -> None:
        """Delete the Lease if it is still the one this holder wrote (a precondition, so a
        Lease someone else took over in the meantime is never deleted)."""
        from kubernetes.client.exceptions import ApiException

        if self._mine is None or self._lost_to is not None:
            return
        meta = self._mine["metadata"]
        options = {"preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}}
        try:
            self.cluster.call("DELETE", f"{self.path}/{self.name}", body=options, retry=True)
        except ApiException as exc:
            if exc.status == 404:
                return  # gone: a retried delete whose first answer was lost
            if exc.status != 409:
                raise
            current = self._read()  # changed since: still ours (a late renewal) or not ours at all
            if current and current.get("spec", {}).get("holderIdentity") == self.identity:
                self._mine = current
                self.release()

    def _renew_until_stopped(self) -> None:
        from kubernetes.client.exceptions import ApiException

        while not self._stop.wait(self.duration / 3):
            try:
                current = self._read()
                holder = (current or {}).get("spec", {}).get("holderIdentity")
                if current is None or holder != self.identity:
                    self._lost_to = holder or "nobody (the Lease was deleted)"
                    return  # never renew a Lease someone else holds
                current["spec"]["renewTime"] = micro_time(datetime.now(UTC))
                # current carries its resourceVersion: the write fails if anything changed since.
                self._mine = self.cluster.call("PUT", f"{self.path}/{self.name}", body=current)
                self._renewed = time.monotonic()
            except ApiException as exc:
                if exc.status != 409:  # 409: changed meanwhile; the next round reads it again
                    self.on_warning(f"could not renew the deploy lock ({exc.status} {exc.reason})")
            except Exception as exc:  # the next renewal may succeed; the deploy goes on
                self.on_warning(f"could not renew the deploy lock ({exc.__class__.__name__})")

    def _read(self) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(self.cluster.get(f"{self.path}/{self.name}"))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _lease(self, transitions: int) -> dict[str, Any]:
        stamp = micro_time(datetime.now(UTC))
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

    def _held(self, spec: dict[str, Any]) -> LockHeld:
        holder = spec.get("holderIdentity") or "another deploy"
        since = spec.get("acquireTime") or "an unknown time"
        return LockHeld(
            f"another deploy holds the {self.namespace} lock: {holder}, since {since}",
            f"wait for it to finish; if it died, the lock expires {_duration(spec)}s after its last renewal",
            holder,
        )


def request_abort(cluster: Cluster, namespace: str, name: str, by: str) -> str | None:
    """Ask the deploy holding lock ``name`` to abort; the holder asked (None: nobody holds it).
    The Lease is written back whole with the resourceVersion read (the verb renewals use), so
    a renewal in between is read again."""
    from kubernetes.client.exceptions import ApiException

    path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
    for _ in range(5):
        lease = cluster.get_or_none(path)
        holder = ((lease or {}).get("spec") or {}).get("holderIdentity")
        if lease is None or not holder:
            return None
        lease["metadata"]["annotations"] = {**(lease["metadata"].get("annotations") or {}),
                                            ABORT_BY: by, ABORT_FOR: holder}  # fmt: skip
        try:
            cluster.call("PUT", path, body=lease)
            return str(holder)
        except ApiException as exc:
            if exc.status == 404:
                return None
            if exc.status != 409:
                raise
    raise NeedsAttention(
        f"could not record the abort request on the {namespace} deploy lock: it changed at every try",
        "try again, or wait for the running deploy to end and run `releasegate rollback`",
    )


def holder_of(cluster: Cluster, namespace: str, name: str) -> str | None:
    lease = cluster.get_or_none(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}")
    return ((lease or {}).get("spec") or {}).get("holderIdentity") or None


def _duration(spec: dict[str, Any]) -> int:
    return int(spec.get("leaseDurationSeconds") or DURATION_SECONDS)
