"""``scale_down_delay`` when a command must end now, through the real CLI against the emulators:
an interrupted canary, a blue/green ``rollback`` and an ``abort`` put traffic back at once and
exit, leaving what traffic left to the next deploy, rollback or recover (``status`` shows it)."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

import pytest

from tests.emulators.stack import Stack
from tests.test_bluegreen import SLOT, bluegreen, deploy, selector, slot_image
from tests.test_canary import APP, MID_PAUSE, NS, backend_weights, canary, first_release
from tests.test_faults import interrupted_deploy

CANARY = f"{APP}-canary"


def deleted_at(stack: Stack, kind: str, name: str) -> dict[str, float]:
    """When the emulator deletes ``kind/name`` from now on (time.monotonic())."""
    seen: dict[str, float] = {}

    def watch(event: str, obj: dict[str, Any]) -> None:
        if event == "DELETED" and obj["kind"] == kind and obj["metadata"]["name"] == name:
            seen.setdefault("at", time.monotonic())

    stack.kube.observers.append(watch)
    return seen


def status(stack: Stack) -> str:
    run = stack.releasegate("status", "--env", "nonprod")
    assert run.exit_code == 0, run.stderr
    return run.stdout


def drain_delay(stack: Stack, seconds: float) -> None:
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text().replace("scale_down_delay: 0", f"scale_down_delay: {seconds:g}"))


@pytest.mark.e2e
def test_an_interrupted_canary_exits_at_once_and_the_next_run_takes_the_canary_down(stack: Stack) -> None:
    """GitHub's runner sends SIGKILL 10 s after SIGINT: the run must not wait out the drain."""
    canary(stack, "gateway", "[{weight: 50, pause: 60}]")
    drain_delay(stack, 6)
    first_release(stack, "gateway")
    stack.publish("v1.1.0")
    interrupted = interrupted_deploy(stack, "v1.1.0", lambda line: MID_PAUSE in line, signal.SIGINT)
    left_at = time.monotonic()
    assert interrupted.exit_code == 130, interrupted.stderr
    assert interrupted.after_signal < 5, interrupted.after_signal
    route = stack.kube.get("HTTPRoute", NS, APP)
    assert backend_weights(route) == {f"{APP}-stable": 100, CANARY: 0}  # traffic is back at once
    assert stack.kube.get("Deployment", NS, CANARY) is not None  # its pods drain meanwhile
    assert "pending drain: Deployment model-api-canary (left by an interrupted deploy)" in status(stack)
    gone = deleted_at(stack, "Deployment", CANARY)
    recovered = stack.releasegate("recover", "--env", "nonprod")
    assert recovered.exit_code == 0, recovered.stderr
    assert gone["at"] - left_at >= 6 - 1  # scale_down_delay after traffic left it (the exit ~1 s later)
    assert stack.kube.get("Deployment", NS, CANARY) is None
    assert "pending drain" not in status(stack)


@pytest.mark.e2e
def test_a_bluegreen_rollback_ends_once_the_switch_is_proven_and_the_next_deploy_drains(stack: Stack) -> None:
    bluegreen(stack, keep_previous="false", scale_down_delay="4")
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert deploy(stack, "v1.1.0").exit_code == 0  # green live, blue scaled to 0 after 4 s
    assert slot_image(stack, "blue")[1] == 0
    started = time.monotonic()
    rollback = stack.releasegate("--json", "rollback", "--env", "nonprod")
    took = time.monotonic() - started
    assert rollback.exit_code == 0, rollback.stderr
    assert selector(stack)[SLOT] == "blue" and json.loads(rollback.stdout)["slot"] == "blue"
    assert "drain  " not in rollback.stderr and took < 4, (took, rollback.stderr)  # no wait
    assert slot_image(stack, "green")[1] > 0  # still running: the data plane may still send to it
    assert "pending drain: model-api-green (left by rollback)" in status(stack)
    run = deploy(stack, "v1.2.0")  # the next deploy takes green down first, then deploys into it
    assert run.exit_code == 0, run.stderr
    assert "left by rollback: taken down" in run.stderr
    assert selector(stack)[SLOT] == "green" and "pending drain" not in status(stack)


@pytest.mark.e2e
def test_a_rollback_keeps_the_slot_it_left_when_keep_previous(stack: Stack) -> None:
    bluegreen(stack, scale_down_delay="30")
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert deploy(stack, "v1.1.0").exit_code == 0  # green live, blue kept (no drain: kept)
    rollback = stack.releasegate("rollback", "--env", "nonprod")
    assert rollback.exit_code == 0, rollback.stderr
    assert selector(stack)[SLOT] == "blue"
    assert slot_image(stack, "green") == ("v1.1.0", 2)  # kept: a rollback back to it is a switch
    assert "pending drain" not in status(stack) and "drain" not in rollback.stderr


@pytest.mark.e2e
def test_an_abort_ends_at_once_and_leaves_the_canary_to_drain(stack: Stack) -> None:
    canary(stack, "gateway", "[{weight: 10, pause: approval}]")
    drain_delay(stack, 30)
    first_release(stack, "gateway")
    paused = deploy(stack, "v1.1.0")
    assert json.loads(paused.stdout)["outcome"] == "paused", paused.stderr
    started = time.monotonic()
    aborted = stack.releasegate("abort", "--env", "nonprod")
    assert aborted.exit_code == 4, aborted.stderr
    assert time.monotonic() - started < 10, aborted.stderr
    assert backend_weights(stack.kube.get("HTTPRoute", NS, APP))[CANARY] == 0
    assert "pending drain: Deployment model-api-canary (left by abort)" in status(stack)
