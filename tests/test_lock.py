"""The deploy lock (a Lease) against the Kubernetes emulator."""

from __future__ import annotations

import os
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import kubernetes_validate
import pytest

from releasegate.core.errors import Refused
from releasegate.kube.api import Cluster
from releasegate.kube.lock import DeployLock, LockLost, expired, holder_identity, micro_time
from tests.emulators.kube import KubeEmulator

NS, NAME = "model-api-prod", "releasegate-model-api"


def lock(identity: str, warnings: list[str] | None = None, duration: int = 30) -> DeployLock:
    sink = warnings if warnings is not None else []
    return DeployLock(Cluster(None), NS, NAME, identity, sink.append, duration=duration)


def test_held_lock_refuses_a_second_holder_and_is_released(kube: KubeEmulator) -> None:
    with lock("ci-run-1"):
        lease = kube.get("Lease", NS, NAME)
        kubernetes_validate.validate(lease, "1.33.0", strict=True)
        assert lease["spec"]["holderIdentity"] == "ci-run-1"
        with pytest.raises(Refused) as caught, lock("laptop"):
            pass
        assert "held" not in caught.value.cause and "ci-run-1, since" in caught.value.cause
    assert kube.get("Lease", NS, NAME) is None


def put_lease(kube: KubeEmulator, holder: str, renewed: datetime, duration: int = 1) -> dict:
    stamp = micro_time(renewed)
    spec = {
        "holderIdentity": holder,
        "leaseDurationSeconds": duration,
        "acquireTime": stamp,
        "renewTime": stamp,
    }
    metadata = {"name": NAME, "namespace": NS}
    return kube.put(
        {"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": metadata, "spec": spec}
    )


def test_an_expired_lease_is_taken_over_with_a_warning(kube: KubeEmulator) -> None:
    old = micro_time(datetime.now(UTC) - timedelta(minutes=5))
    spec = {"holderIdentity": "dead", "leaseDurationSeconds": 1, "acquireTime": old, "renewTime": old}
    metadata = {"name": NAME, "namespace": NS}
    kube.put({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": metadata, "spec": spec})
    warnings: list[str] = []
    with lock("new", warnings):
        assert kube.get("Lease", NS, NAME)["spec"]["leaseTransitions"] == 1
    assert warnings[-1] == "taking over the deploy lock from dead, which stopped renewing it"
    assert "watching it for 1s before taking it over" in warnings[0]


def test_the_holder_renews_while_it_runs(kube: KubeEmulator) -> None:
    with lock("slow-deploy", duration=1):
        first = kube.get("Lease", NS, NAME)["spec"]["renewTime"]
        time.sleep(1.2)
        assert kube.get("Lease", NS, NAME)["spec"]["renewTime"] > first


def test_expiry_rule() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    spec = {"renewTime": micro_time(now - timedelta(seconds=29)), "leaseDurationSeconds": 30}
    assert not expired(spec, now)
    assert expired({**spec, "renewTime": micro_time(now - timedelta(seconds=31))}, now)
    assert expired({}, now)


def test_staleness_is_judged_by_this_machine_watching_not_by_the_holders_clock(kube: KubeEmulator) -> None:
    # The holder's clock is 5 minutes behind: its renewTime looks stale here although it is
    # alive and renewing. client-go only trusts changes it observed itself.
    put_lease(kube, "alive-but-skewed", datetime.now(UTC) - timedelta(minutes=5), duration=2)
    renewer = threading.Timer(
        0.5, lambda: put_lease(kube, "alive-but-skewed", datetime.now(UTC) - timedelta(minutes=5), duration=2)
    )
    renewer.start()
    with pytest.raises(Refused, match="alive-but-skewed"), lock("newcomer"):
        pass
    renewer.join()
    assert kube.get("Lease", NS, NAME)["spec"]["holderIdentity"] == "alive-but-skewed"


def test_a_taken_over_lock_is_noticed_and_never_released_by_the_loser(kube: KubeEmulator) -> None:
    holder = lock("first", duration=3)
    with pytest.raises(LockLost, match="lost the model-api-prod deploy lock to intruder"), holder:
        put_lease(kube, "intruder", datetime.now(UTC), duration=30)
        holder.ensure_held()
    # The loser neither renewed over the new holder nor deleted its Lease.
    assert kube.get("Lease", NS, NAME)["spec"]["holderIdentity"] == "intruder"


def test_the_renewer_stops_when_another_holder_took_over(kube: KubeEmulator) -> None:
    with lock("first", duration=1) as held:
        put_lease(kube, "intruder", datetime.now(UTC), duration=30)
        time.sleep(1.0)  # three renewal periods
        assert kube.get("Lease", NS, NAME)["spec"]["holderIdentity"] == "intruder"
        with pytest.raises(LockLost):
            held.ensure_held()


def test_release_deletes_only_the_lease_this_holder_wrote(kube: KubeEmulator) -> None:
    with lock("first", duration=30):
        pass
    deletes = [r for r in kube.requests if r.method == "DELETE"]
    assert deletes and all(r.json()["preconditions"]["resourceVersion"] for r in deletes)


def test_identities_are_unique_per_process_and_machine() -> None:
    first, second = holder_identity(), holder_identity()
    assert first != second and f"pid {os.getpid()}" in first and socket.gethostname() in first
