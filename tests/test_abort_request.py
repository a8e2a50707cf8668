"""``releasegate abort`` while a deploy holds the lock, through the real CLI: the request is
recorded on the lock, the running canary aborts at its next check round (exit 4 there), and the
requester exits 0 once stable serves again; a deploy that ends another way answers for itself."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.emulators.stack import Stack
from tests.test_canary import APP, MID_PAUSE, NS, backend_weights, canary, first_release, history

LEASE = f"releasegate-{APP}"


def running_deploy(stack: Stack, tag: str) -> subprocess.Popen[str]:
    """``deploy`` of ``tag``, returned once its canary holds its first step's weight."""
    stack.publish(tag)
    process = subprocess.Popen(
        stack.argv("--json", "deploy", "--env", "nonprod", "--tag", tag), env=stack.env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    for line in process.stderr:
        if MID_PAUSE in line:
            return process
    raise AssertionError(f"the deploy never paused mid-step: {process.wait()}")


@pytest.mark.e2e
def test_an_abort_reaches_a_running_canary_within_one_check_round(stack: Stack) -> None:
    canary(stack, "gateway", "[{weight: 50, pause: 120}]")  # no analysis: a check round every 10 s
    first_release(stack, "gateway")
    deploying = running_deploy(stack, "v1.1.0")
    started = time.monotonic()
    aborted = stack.releasegate("--json", "abort", "--env", "nonprod")
    took = time.monotonic() - started
    stdout, stderr = deploying.communicate(timeout=60)
    assert aborted.exit_code == 0, aborted.stderr
    assert took < 10 + 5, took  # one check round, then the put-back
    result = json.loads(aborted.stdout)
    assert (result["outcome"], result["tag"]) == ("abort-requested", "v1.0.0")
    assert "v1.1.0 was aborted in nonprod by the deploy running it; v1.0.0 serves again" in aborted.stdout
    assert deploying.returncode == 4, stderr
    last = stderr.strip().splitlines()[-1]
    assert "aborted at the request of" in last and "v1.0.0 was restored and verified" in last, last
    assert (json.loads(stdout)["outcome"], json.loads(stdout)["exit_code"]) == (
        "failed",
        4,
    )  # as any failed canary
    assert backend_weights(stack.kube.get("HTTPRoute", NS, APP)) == {f"{APP}-stable": 100, f"{APP}-canary": 0}
    assert stack.kube.get("Deployment", NS, f"{APP}-canary") is None
    assert stack.kube.get("Lease", NS, LEASE) is None  # released
    assert history(stack)[:2] == [("v1.0.0", "deployed"), ("v1.1.0", "failed")]
    again = stack.releasegate("abort", "--env", "nonprod")
    assert again.exit_code == 3 and "nothing is paused" in again.last_line  # nothing running now


@pytest.mark.e2e
def test_a_deploy_that_goes_live_before_it_sees_the_request_is_not_undone(stack: Stack) -> None:
    """A rolling deploy has no check rounds: it ends deployed, and the requester says so (3)."""
    stack.kube.controller.scenarios["v1.1.0"] = "slow"
    stack.kube.controller.slow_seconds = 3
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    stack.publish("v1.1.0")
    deploying = subprocess.Popen(
        stack.argv("deploy", "--env", "nonprod", "--tag", "v1.1.0"), env=stack.env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert deploying.stderr is not None
    for line in deploying.stderr:
        if line.startswith("✓ deploy"):
            break
    aborted = stack.releasegate("abort", "--env", "nonprod")
    deploying.communicate(timeout=60)
    assert deploying.returncode == 0
    assert aborted.exit_code == 3, aborted.stderr
    assert "v1.1.0 went live before the running deploy saw the abort request" in aborted.last_line
    assert "releasegate rollback --env nonprod" in aborted.last_line
