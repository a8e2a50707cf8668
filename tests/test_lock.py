"""The deploy lock (a Lease) against the Kubernetes emulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import kubernetes_validate
import pytest

from releasegate.errors import Refused
from releasegate.kube import Cluster
from releasegate.lock import DeployLock, expired, micro_time
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


def test_an_expired_lease_is_taken_over_with_a_warning(kube: KubeEmulator) -> None:
    old = micro_time(datetime.now(UTC) - timedelta(minutes=5))
    spec = {"holderIdentity": "dead", "leaseDurationSeconds": 30, "acquireTime": old, "renewTime": old}
    metadata = {"name": NAME, "namespace": NS}
    kube.put({"kind": "Lease", "apiVersion": "coordination.k8s.io/v1", "metadata": metadata, "spec": spec})
    warnings: list[str] = []
    with lock("new", warnings):
        assert kube.get("Lease", NS, NAME)["spec"]["leaseTransitions"] == 1
    assert warnings == ["taking over the deploy lock from dead, which stopped renewing it"]


def test_the_holder_renews_while_it_runs(kube: KubeEmulator) -> None:
    import time

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
