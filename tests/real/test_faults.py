"""The fault rows that involve the cluster, on the real tier: interrupts mid-rollout, a deploy
lock held or taken over (real Lease semantics), and kube-apiserver restarting under a watch.
Mirrors tests/test_faults.py."""

from __future__ import annotations

import json
import signal
import subprocess
import threading

import pytest
import yaml

from tests.test_faults import SAME_RUN, interrupted_deploy, killed_deploy

from .stack import RealStack

pytestmark = pytest.mark.real
LEASE = "releasegate-model-api"


@pytest.fixture
def serving(real: RealStack) -> RealStack:
    """v1.0.0 serving in nonprod; v1.1.0 published, its pods slow to become Ready."""
    real.publish("v1.0.0")
    digest = real.publish("v1.1.0")
    assert real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    real.kubelets.slow_ms = 8000
    real.behave(digest, "slow")
    return real


def previous_serves(real: RealStack) -> None:
    deployment = real.deployment("nonprod")
    assert deployment is not None
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.0.0"
    lease = real.plane.get(
        f"/apis/coordination.k8s.io/v1/namespaces/{real.namespaces['nonprod']}/leases/{LEASE}"
    )
    assert lease is None, lease


@pytest.mark.parametrize("sent", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_mid_rollout_restores_and_exits_130(serving: RealStack, sent: int) -> None:
    run = interrupted_deploy(serving, "v1.1.0", lambda line: line.startswith("  rollout |"), sent)
    assert run.exit_code == 130, run.stderr
    assert "interrupted while deploying v1.1.0" in run.last_line and "v1.0.0 was restored" in run.last_line
    previous_serves(serving)


def test_two_deploys_at_once_the_second_is_refused(serving: RealStack) -> None:
    argv, env = (
        serving.argv("deploy", "--env", "nonprod", "--tag", "v1.1.0"),
        serving.env(GITHUB_ACTOR="first"),
    )
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    for line in first.stderr:
        if line.startswith("✓ lock"):
            break
    second = serving.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0", "--allow-downgrade")
    rest = first.stderr.read()
    first.wait(timeout=120)
    assert first.returncode == 0, rest
    assert second.exit_code == 3, second.stderr
    assert "another deploy holds the" in second.last_line and "first (" in second.last_line


def test_a_lease_taken_over_mid_rollout_stops_the_deploy(serving: RealStack) -> None:
    namespace = serving.namespaces["nonprod"]
    argv = serving.argv("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    first = subprocess.Popen(
        argv, env=serving.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert first.stderr is not None
    for line in first.stderr:
        if line.startswith("✓ deploy"):
            break
    lease = yaml.safe_load(serving.plane.kubectl("get", "lease", LEASE, "-n", namespace, "-o", "yaml"))
    lease["spec"]["holderIdentity"] = "intruder (run 7/1)"
    serving.plane.kubectl("replace", "-f", "-", stdin=yaml.safe_dump(lease))  # resourceVersion-checked
    rest = first.stderr.read()
    first.wait(timeout=120)
    assert first.returncode == 5, rest
    assert "lost the" in rest.strip().splitlines()[-1] and "intruder (run 7/1)" in rest
    kept = serving.plane.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE}")
    assert kept["spec"]["holderIdentity"] == "intruder (run 7/1)"


def test_kube_apiservers_restarting_mid_rollout_are_ridden_out(serving: RealStack) -> None:
    """A rolling restart of both API servers (an EKS control-plane upgrade) while the rollout is
    watched: every watch the CLI holds is cut at least once, and the deploy carries on."""
    argv = serving.argv("--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0")
    process = subprocess.Popen(
        argv, env=serving.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None and process.stdout is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith("  rollout |"):
            break
    away: list[float] = []
    restart = threading.Thread(target=lambda: away.extend(serving.plane.restart_apiserver(n) for n in (0, 1)))
    restart.start()
    stderr = "".join(seen) + process.stderr.read()
    process.wait(timeout=180)
    restart.join()
    assert process.returncode == 0, stderr
    assert len(away) == 2, "both API servers were restarted"
    assert json.loads(process.stdout.read())["outcome"] == "deployed"
    deployment = serving.deployment("nonprod")
    assert (
        deployment is not None and deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.1.0"
    )


def test_recover_puts_back_the_last_good_release_after_a_killed_deploy(serving: RealStack) -> None:
    """A cancelled Actions run: SIGKILL mid-rollout, then `releasegate recover` in the same run."""
    killed_deploy(serving, "v1.1.0")
    namespace = serving.namespaces["nonprod"]
    assert serving.plane.get(f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{LEASE}")
    run = serving.releasegate("recover", "--env", "nonprod", **SAME_RUN)
    assert run.exit_code == 0, run.stderr
    assert "v1.0.0 was restored and verified" in run.stdout
    previous_serves(serving)
    again = serving.releasegate("recover", "--env", "nonprod", **SAME_RUN)
    assert again.exit_code == 0 and "nothing to recover" in again.stdout, again.stdout
