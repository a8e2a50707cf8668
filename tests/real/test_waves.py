"""One release across three real clusters in two waves: the session's control plane and two
more (each its own etcd, kube-apiservers, controllers, kwok and pod network), the real CLI as
each cluster's deployer identity. Mirrors tests/test_waves.py."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.stack import Run
from tests.real.conftest import RealCluster
from tests.test_faults import SAME_RUN, interrupted
from tests.test_smoke import quick_checks

from .controlplane import ControlPlane
from .fleet import RealFleet, more_planes, start_apiservers, stop_apiservers
from .podnet import PodNetwork
from .stack import RealStack
from .stages import Kubelets

pytestmark = [pytest.mark.real, pytest.mark.parametrize("real", ["apply"], indirect=True)]
THREE = [
    ("eu-west-1", "eu-west-1", 1),
    ("us-east-1", "us-east-1", 2),
    ("ap-southeast-1", "ap-southeast-1", 2),
]
LEASE = "releasegate-model-api"


@pytest.fixture(scope="module")
def planes(real_cluster: RealCluster) -> Iterator[list[tuple[ControlPlane, PodNetwork, Kubelets]]]:
    del real_cluster  # the first cluster: started first, shared with every other test
    yield from more_planes(Path(tempfile.mkdtemp(prefix="releasegate-real-fleet-")), 2)


@pytest.fixture
def fleet(real: RealStack, planes: list[tuple[ControlPlane, PodNetwork, Kubelets]]) -> Iterator[RealFleet]:
    quick_checks(real)
    running = RealFleet(real, planes, THREE, {"max_parallel": 0, "on_failure": "rollback"})
    yield running
    running.stop()


def deploy(fleet: RealFleet, tag: str, *args: str) -> Run:
    return fleet.real.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag, *args, timeout=300)


def test_two_waves_and_a_crash_loop_in_wave_two_puts_back_both_waves(fleet: RealFleet) -> None:
    old = fleet.publish("v1.0.0")
    run = deploy(fleet, "v1.0.0")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert [(c["name"], c["outcome"]) for c in result["clusters"]] == [
        ("eu-west-1", "deployed"), ("us-east-1", "deployed"), ("ap-southeast-1", "deployed"),
    ]  # fmt: skip
    for member in fleet.members:  # each real cluster runs its own region's pinned image, Ready
        assert fleet.ready_images(member) == {fleet.pinned(member, old)}
    bad = fleet.publish("v1.1.0")
    fleet.behave(fleet.member("ap-southeast-1"), bad, "crashloop")
    failed = deploy(fleet, "v1.1.0", "--timeout", "120")
    assert failed.exit_code == 4, failed.stderr
    outcomes = {c["name"]: c["outcome"] for c in json.loads(failed.stdout)["clusters"]}
    assert outcomes == {"eu-west-1": "rolled_back", "us-east-1": "rolled_back", "ap-southeast-1": "failed"}
    for member in fleet.members:  # verified again on each cluster
        assert fleet.ready_images(member) == {fleet.pinned(member, old)}
        assert (
            member.plane.get(f"/apis/coordination.k8s.io/v1/namespaces/{fleet.namespace}/leases/{LEASE}")
            is None
        )


def test_a_lock_held_on_one_cluster_refuses_the_run_and_recover_after_sigkill_puts_back_every_cluster(
    fleet: RealFleet,
) -> None:
    old = fleet.publish("v1.0.0")
    assert deploy(fleet, "v1.0.0").exit_code == 0
    held = fleet.member("us-east-1").plane
    held.kubectl("create", "-n", fleet.namespace, "-f", "-", stdin=json.dumps({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": LEASE},
        "spec": {"holderIdentity": "someone@elsewhere", "leaseDurationSeconds": 3600,
                 "renewTime": "2099-01-01T00:00:00.000000Z"}}))  # fmt: skip
    new = fleet.publish("v1.1.0")
    refused = deploy(fleet, "v1.1.0")
    assert refused.exit_code == 3, refused.stderr
    assert "us-east-1:" in refused.last_line
    for member in fleet.members:
        assert fleet.ready_images(member) == {fleet.pinned(member, old)}
    held.kubectl("delete", "lease", LEASE, "-n", fleet.namespace)
    fleet.behave(fleet.member("ap-southeast-1"), new, "slow")  # still rolling out when killed
    killed = interrupted(
        fleet.real, ["deploy", "--env", "nonprod", "--tag", "v1.1.0"],
        when=lambda line: line.startswith("  [ap-southeast-1] rollout |"), sent=9, **SAME_RUN,
    )  # fmt: skip
    assert killed.exit_code == -9
    assert fleet.ready_images(fleet.member("eu-west-1")) == {fleet.pinned(fleet.member("eu-west-1"), new)}
    run = fleet.real.releasegate("--json", "recover", "--env", "nonprod", timeout=300, **SAME_RUN)
    assert run.exit_code == 0, run.stderr
    assert {c["outcome"] for c in json.loads(run.stdout)["clusters"]} == {"recovered"}
    for member in fleet.members:
        assert fleet.ready_images(member) == {fleet.pinned(member, old)}


def test_sigint_in_wave_two_puts_back_every_cluster(fleet: RealFleet) -> None:
    old = fleet.publish("v1.0.0")
    assert deploy(fleet, "v1.0.0").exit_code == 0
    new = fleet.publish("v1.1.0")
    fleet.behave(fleet.member("ap-southeast-1"), new, "slow")
    run = interrupted(
        fleet.real, ["--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0"],
        when=lambda line: line.startswith("  [ap-southeast-1] rollout |"),
    )  # fmt: skip
    assert run.exit_code == 130, run.stderr
    assert {c["outcome"] for c in json.loads(run.stdout)["clusters"]} == {"rolled_back"}
    for member in fleet.members:
        assert fleet.ready_images(member) == {fleet.pinned(member, old)}


def test_a_cluster_whose_api_server_goes_away_mid_wave_is_named_and_the_others_put_back(
    fleet: RealFleet,
) -> None:
    old = fleet.publish("v1.0.0")
    assert deploy(fleet, "v1.0.0").exit_code == 0
    new = fleet.publish("v1.1.0")
    gone = fleet.member("ap-southeast-1")
    fleet.behave(gone, new, "slow")
    process = subprocess.Popen(
        fleet.real.argv("--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0", "--timeout", "60"),
        env=fleet.real.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith("  [ap-southeast-1] rollout |"):
            stop_apiservers(gone.plane)
            break
    try:
        out, rest = process.communicate(timeout=400)
    finally:
        start_apiservers(gone.plane)
    stderr = "".join(seen) + rest
    assert process.returncode == 5, stderr
    last = stderr.strip().splitlines()[-1]
    assert "not known-good: ap-southeast-1" in last, last
    outcomes = {c["name"]: c["outcome"] for c in json.loads(out)["clusters"]}
    assert outcomes == {"eu-west-1": "rolled_back", "us-east-1": "rolled_back", "ap-southeast-1": "unknown"}
    for member in fleet.members[:2]:
        assert fleet.ready_images(member) == {fleet.pinned(member, old)}
