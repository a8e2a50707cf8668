"""Blue/green through the real CLI against the emulators: the slots, the preview and live
Services, the switch and the switch back, pause/promote/abort, rollback by switch and the move
from rolling. The emulator's observers see every change, so "the selector never changed" and
"<app> always selected a Ready pod" are checked at every step, not sampled."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from tests.emulators.stack import Stack
from tests.test_faults import assert_lock_released_and_no_secret
from tests.test_smoke import quick_checks

NS = "model-api-nonprod"
APP = "model-api"
SLOT = "releasegate.dev/slot"


def bluegreen(stack: Stack, **settings: str) -> None:
    quick_checks(stack)
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    settings = {"scale_down_delay": "0", **settings}  # no drain time unless a test is about it
    extra = "".join(f", {key}: {value}" for key, value in settings.items())
    path.write_text(path.read_text() + f"strategy: {{type: bluegreen{extra}}}\n")


def deploy(stack: Stack, tag: str, *args: str) -> Any:
    stack.publish(tag)
    return stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag, *args)


def selector(stack: Stack, name: str = APP) -> dict[str, str] | None:
    service = stack.kube.get("Service", NS, name)
    return service["spec"]["selector"] if service else None


def slot_image(stack: Stack, slot: str) -> tuple[str, int]:
    deployment = stack.kube.get("Deployment", NS, f"{APP}-{slot}")
    assert deployment is not None, f"no {slot} slot"
    tag = deployment["metadata"]["annotations"]["releasegate.dev/tag"]
    return tag, int(deployment["spec"].get("replicas", 1))


def ready_pods(stack: Stack, slot: str) -> list[str]:
    return sorted(
        p["metadata"]["name"]
        for p in stack.kube.list("Pod", NS)
        if p["metadata"]["labels"].get(SLOT) == slot
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    )


def selector_changes(stack: Stack) -> list[dict[str, str] | None]:
    """Every selector the Service <app> has had from now on, in order."""
    seen: list[dict[str, str] | None] = []
    last = [selector(stack)]

    def watch(event: str, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Service" and obj["metadata"]["name"] == APP:
            now = None if event == "DELETED" else dict(obj["spec"]["selector"])
            if now != last[0]:
                seen.append(now)
                last[0] = now

    stack.kube.observers.append(watch)
    return seen


@pytest.mark.e2e
def test_the_first_release_goes_to_blue_and_the_next_to_green_with_a_switch(stack: Stack) -> None:
    bluegreen(stack)
    first = deploy(stack, "v1.0.0")
    assert first.exit_code == 0, first.stderr
    result = json.loads(first.stdout)
    assert (result["outcome"], result["strategy"], result["slot"]) == ("deployed", "bluegreen", "blue")
    assert selector(stack)[SLOT] == "blue" and selector(stack, f"{APP}-preview")[SLOT] == "blue"
    assert stack.kube.get("Deployment", NS, APP) is None  # no plain Deployment
    blue_pods = ready_pods(stack, "blue")

    changes = selector_changes(stack)
    calls_before = len(stack.kube.proxy.apps.calls)
    second = deploy(stack, "v1.1.0")
    assert second.exit_code == 0, second.stderr
    result = json.loads(second.stdout)
    assert (result["outcome"], result["slot"]) == ("deployed", "green")
    assert [c[SLOT] for c in changes if c] == ["green"]  # one switch, blue to green
    assert slot_image(stack, "green") == ("v1.1.0", 2)
    assert slot_image(stack, "blue") == ("v1.0.0", 2)  # keep_previous: still running
    assert ready_pods(stack, "blue") == blue_pods
    assert selector(stack, f"{APP}-preview")[SLOT] == "blue"  # the slot left: where the next goes
    stages = [s["name"] for s in result["stages"]]
    assert stages.index("preview") < stages.index("switch") < stages.index("smoke")
    # Every check (through the preview Service, then through the live one) reached green's pods.
    checked = {c.pod.rsplit("-", 2)[0] for c in stack.kube.proxy.apps.calls[calls_before:]}
    assert checked == {f"{APP}-green"}
    history = json.loads(stack.releasegate("--json", "history", "--env", "nonprod").stdout)["history"]
    assert [(r["tag"], r["outcome"], r["slot"]) for r in history] == [
        ("v1.1.0", "deployed", "green"), ("v1.0.0", "deployed", "blue")
    ]  # fmt: skip
    statuses = [s["description"] for s in stack.github.statuses[stack.github.deployments[0]["id"]]][::-1]
    assert statuses[:3] == ["deploying v1.1.0", "testing in green", "switched to green"]
    assert statuses[-1].startswith("v1.1.0 is live in green")


@pytest.mark.e2e
def test_a_release_failing_before_the_switch_never_moves_traffic(stack: Stack) -> None:
    bluegreen(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "broken_predict"
    changes = selector_changes(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert_lock_released_and_no_secret(stack, run)
    assert "smoke check 'sample prediction'" in run.stderr and "model-api-preview" in run.stderr
    assert changes == []  # the live Service's selector never changed
    assert selector(stack)[SLOT] == "blue"
    assert slot_image(stack, "green") == ("v1.1.0", 0)  # the idle slot is scaled to 0
    assert ready_pods(stack, "green") == []
    assert len(ready_pods(stack, "blue")) == 2


@pytest.mark.e2e
def test_a_release_not_ready_in_the_idle_slot_never_moves_traffic(stack: Stack) -> None:
    bluegreen(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    stack.kube.controller.scenarios["v1.1.0"] = "crashloop"
    changes = selector_changes(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert_lock_released_and_no_secret(stack, run)
    assert "CrashLoopBackOff" in run.stderr
    assert changes == [] and selector(stack)[SLOT] == "blue"
    assert slot_image(stack, "green")[1] == 0


@pytest.mark.e2e
def test_a_release_failing_after_the_switch_is_switched_back(stack: Stack) -> None:
    bluegreen(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "degrading"  # passes in preview, fails live
    changes = selector_changes(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert_lock_released_and_no_secret(stack, run)
    assert [c[SLOT] for c in changes if c] == ["green", "blue"]  # switched, and back
    assert slot_image(stack, "green")[1] == 0
    records = json.loads(stack.releasegate("--json", "history", "--env", "nonprod").stdout)["history"]
    assert [(r["tag"], r["outcome"], r["slot"]) for r in records[:2]] == [
        ("v1.0.0", "deployed", "blue"), ("v1.1.0", "failed", "green")
    ]  # fmt: skip


@pytest.mark.e2e
def test_pause_then_promote(stack: Stack) -> None:
    bluegreen(stack, pause_before_switch="true")
    assert deploy(stack, "v1.0.0").exit_code == 0  # the first release pauses too
    first = stack.releasegate("--json", "promote", "--env", "nonprod")
    assert json.loads(first.stdout)["outcome"] == "promoted"
    changes = selector_changes(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["outcome"], result["slot"], result["step"]) == ("paused", "green", "before-switch")
    assert changes == [] and stack.kube.get("Lease", NS, f"releasegate-{APP}") is None  # lock released
    status = stack.releasegate("status", "--env", "nonprod")
    assert "PAUSED: v1.1.0" in status.stdout and "live slot: blue, v1.0.0" in status.stdout, status.stdout

    refused = deploy(stack, "v1.2.0")
    assert refused.exit_code == 3
    assert "v1.1.0 is paused in nonprod (before-switch" in refused.stderr

    promoted = stack.releasegate("--json", "promote", "--env", "nonprod")
    assert promoted.exit_code == 0, promoted.stderr
    assert_lock_released_and_no_secret(stack, promoted)
    assert json.loads(promoted.stdout)["outcome"] == "promoted"
    assert [c[SLOT] for c in changes if c] == ["green"]
    statuses = [s["description"] for s in stack.github.statuses[stack.github.deployments[0]["id"]]][::-1]
    assert "switched to green" in statuses and statuses[-1].startswith("v1.1.0 is live in green")
    again = stack.releasegate("promote", "--env", "nonprod")
    assert again.exit_code == 3 and "nothing is paused" in again.stderr


@pytest.mark.e2e
def test_pause_then_abort(stack: Stack) -> None:
    bluegreen(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text().replace("delay: 0}", "delay: 0, pause_before_switch: true}"))
    assert deploy(stack, "v1.1.0").exit_code == 0
    changes = selector_changes(stack)
    aborted = stack.releasegate("--json", "abort", "--env", "nonprod")
    assert aborted.exit_code == 4, aborted.stderr  # the release did not go live
    assert_lock_released_and_no_secret(stack, aborted)
    assert json.loads(aborted.stdout)["outcome"] == "aborted"
    assert changes == [] and selector(stack)[SLOT] == "blue"
    assert slot_image(stack, "green")[1] == 0
    history = json.loads(stack.releasegate("--json", "history", "--env", "nonprod").stdout)["history"]
    assert [(r["tag"], r["outcome"]) for r in history[:2]] == [("v1.1.0", "aborted"), ("v1.0.0", "deployed")]
    nothing = stack.releasegate("abort", "--env", "nonprod")
    assert nothing.exit_code == 3 and "nothing is paused" in nothing.stderr
    assert json.loads(deploy(stack, "v1.2.0").stdout)["outcome"] == "paused"  # deploys go on
    assert stack.releasegate("status", "--env", "nonprod").exit_code == 0


@pytest.mark.e2e
def test_rollback_is_a_switch_to_the_slot_still_running(stack: Stack) -> None:
    bluegreen(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert deploy(stack, "v1.1.0").exit_code == 0
    blue_pods = ready_pods(stack, "blue")
    run = stack.releasegate("--json", "rollback", "--env", "nonprod")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["outcome"], result["tag"], result["slot"]) == ("rolled-back", "v1.0.0", "blue")
    assert selector(stack)[SLOT] == "blue" and selector(stack, f"{APP}-preview")[SLOT] == "green"
    assert ready_pods(stack, "blue") == blue_pods  # no pod started: a switch
    assert "restore" not in [s["name"] for s in result["stages"]]


@pytest.mark.e2e
def test_rollback_deploys_into_the_idle_slot_when_the_old_one_was_scaled_down(stack: Stack) -> None:
    bluegreen(stack, keep_previous="false")
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert deploy(stack, "v1.1.0").exit_code == 0
    assert slot_image(stack, "blue")[1] == 0  # keep_previous: false
    run = stack.releasegate("--json", "rollback", "--env", "nonprod")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["slot"] == "blue"
    assert slot_image(stack, "blue") == ("v1.0.0", 2) and len(ready_pods(stack, "blue")) == 2
    assert selector(stack)[SLOT] == "blue"


def watch_for_lapses(stack: Stack) -> list[str]:
    """Every moment from now on when Service <app> selects no Ready pod (or, before a switch,
    a slot's pod), named by the write that made it."""
    lapses: list[str] = []

    def endpoints(event: str, obj: dict[str, Any]) -> None:
        service = stack.kube.objects.get(("Service", NS, APP))
        if service is None:
            lapses.append(f"no Service after {event} {obj['kind']}/{obj['metadata']['name']}")
            return
        wanted = service["spec"]["selector"]
        pods = [p for (kind, ns, _), p in stack.kube.objects.items() if kind == "Pod" and ns == NS]
        ready = [
            p for p in pods
            if all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        ]  # fmt: skip
        if not ready:
            lapses.append(f"no Ready endpoint after {event} {obj['kind']}/{obj['metadata']['name']}")
        if SLOT not in wanted and any(SLOT in p["metadata"]["labels"] for p in ready):
            lapses.append("the rolling Service selected a slot's pod before the switch")

    stack.kube.observers.append(endpoints)
    return lapses


@pytest.mark.e2e
@pytest.mark.parametrize("to", ["rolling", "canary"])
def test_leaving_bluegreen_keeps_a_ready_pod_behind_the_service_throughout(stack: Stack, to: str) -> None:
    """kubectl apply would drop the slot from <app>'s selector in the same apply that creates
    the new Deployment: until its pods start, <app> would select nothing."""
    bluegreen(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert deploy(stack, "v1.1.0").exit_code == 0  # green live, blue kept
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    text = re.sub(r"(?m)^strategy: .*\n", "", path.read_text())
    if to == "canary":
        steps = "[{weight: 50, pause: 0.2}]"
        text += f"strategy: {{type: canary, traffic: replicas, steps: {steps}, scale_down_delay: 1.5}}\n"
    else:
        text += "strategy: {type: rolling, scale_down_delay: 1.5}\n"
    path.write_text(text)
    stack.kube.controller.scenarios["v1.2.0"] = "slow"  # the new pods take a while to start
    lapses = watch_for_lapses(stack)
    moments: dict[str, float] = {}

    def when(event: str, obj: dict[str, Any]) -> None:  # the selector's move, the slots' deletion
        if (
            obj["kind"] == "Service"
            and obj["metadata"]["name"] == APP
            and SLOT not in obj["spec"]["selector"]
        ):
            moments.setdefault("left", time.monotonic())
        if event == "DELETED" and obj["kind"] == "Deployment" and obj["metadata"]["name"] == f"{APP}-blue":
            moments.setdefault("deleted", time.monotonic())

    stack.kube.observers.append(when)
    run = deploy(stack, "v1.2.0")
    assert run.exit_code == 0, run.stderr
    assert lapses == [], lapses[:3]
    # an ALB in IP mode still sends to the old targets for seconds: the slots drain first
    assert moments["deleted"] - moments["left"] >= 1.5, moments
    assert SLOT not in selector(stack)
    for slot in ("blue", "green"):  # the slots' objects are gone once <app> selects the new pods
        assert stack.kube.get("Deployment", NS, f"{APP}-{slot}") is None
        assert stack.kube.get("HorizontalPodAutoscaler", NS, f"{APP}-{slot}") is None
    assert stack.kube.get("Service", NS, f"{APP}-preview") is None
    assert "left blue/green: deleted" in run.stderr


@pytest.mark.e2e
def test_a_failed_move_from_bluegreen_leaves_the_live_slot_serving(stack: Stack) -> None:
    bluegreen(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert deploy(stack, "v1.1.0").exit_code == 0  # green live
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(re.sub(r"(?m)^strategy: .*\n", "", path.read_text()))
    stack.kube.controller.scenarios["v1.2.0"] = "crashloop"
    lapses = watch_for_lapses(stack)
    run = deploy(stack, "v1.2.0")
    assert run.exit_code == 4, run.stderr
    assert "v1.1.0 was restored" in run.last_line, run.last_line
    assert lapses == [], lapses[:3]
    assert selector(stack)[SLOT] == "green" and slot_image(stack, "green") == ("v1.1.0", 2)
    assert stack.kube.get("Deployment", NS, APP) is None  # the failed release's Deployment is gone


@pytest.mark.e2e
def test_moving_from_rolling_keeps_a_ready_pod_behind_the_service_throughout(stack: Stack) -> None:
    quick_checks(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0  # rolling
    assert stack.kube.get("Deployment", NS, APP) is not None
    lapses = watch_for_lapses(stack)
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + "strategy: {type: bluegreen, scale_down_delay: 0}\n")
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert lapses == []
    assert selector(stack)[SLOT] == "blue" and "app.kubernetes.io/instance" not in selector(stack)
    assert stack.kube.get("Deployment", NS, APP) is None  # removed once the Service selected a slot
    assert stack.kube.get("HorizontalPodAutoscaler", NS, APP) is None
    assert "deleted the rolling Deployment model-api" in run.stderr


@pytest.mark.e2e
def test_a_failed_move_from_rolling_leaves_the_rolling_release_serving(stack: Stack) -> None:
    quick_checks(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    rolling_selector = selector(stack)
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + "strategy: {type: bluegreen, scale_down_delay: 0}\n")
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "degrading"
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert_lock_released_and_no_secret(stack, run)
    assert selector(stack) == rolling_selector
    assert stack.kube.get("Deployment", NS, APP) is not None
    assert slot_image(stack, "blue")[1] == 0


@pytest.mark.e2e
def test_status_and_dry_run_name_the_slots(stack: Stack) -> None:
    bluegreen(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert deploy(stack, "v1.1.0").exit_code == 0
    status = stack.releasegate("--json", "status", "--env", "nonprod")
    result = json.loads(status.stdout)
    assert (result["strategy"], result["slot"], result["tag"]) == ("bluegreen", "green", "v1.1.0")
    assert "live slot: green, v1.1.0, pods Ready 2/2" in result["message"]
    assert "preview slot: blue, v1.0.0, pods Ready 2/2" in result["message"]
    stack.publish("v1.2.0")
    writes = len(stack.kube.writes())
    plan = stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.2.0", "--dry-run")
    assert plan.exit_code == 0, plan.stderr
    message = json.loads(plan.stdout)["message"]
    assert "would deploy v1.2.0 to slot blue (green keeps serving)" in message
    assert "then smoke checks: health" in message
    assert len(stack.kube.writes()) == writes  # read the live slot, wrote nothing


def counts_at_each_switch(stack: Stack) -> list[tuple[str, int, int]]:
    """(slot switched to, its desired count, its Ready pods) at each selector change of <app>."""
    seen: list[tuple[str, int, int]] = []
    last = [selector(stack)]

    def watch(event: str, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Service" and obj["metadata"]["name"] == APP and event != "DELETED":
            now = dict(obj["spec"]["selector"])
            if now != last[0] and now.get(SLOT):
                last[0] = now
                slot = now[SLOT]
                seen.append((slot, slot_image(stack, slot)[1], len(ready_pods(stack, slot))))

    stack.kube.observers.append(watch)
    return seen


@pytest.mark.e2e
def test_a_switch_goes_to_a_slot_at_least_as_large_as_the_live_one(stack: Stack) -> None:
    """nonprod autoscales (2 to 4 pods). Blue serves the load with 4; green was created at 2
    and would have met it with those. Then green serves with 4 while blue, kept for rollback,
    is shrunk to 2 by its idle autoscaler; the rollback scales blue back up before switching."""
    bluegreen(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    stack.kube.autoscalers.want(NS, f"{APP}-blue", 4)
    switches = counts_at_each_switch(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert switches == [("green", 4, 4)], switches
    assert "size" in [s["name"] for s in json.loads(run.stdout)["stages"]]
    stack.kube.autoscalers.want(NS, f"{APP}-blue", 1)  # idle: down to its minimum
    assert slot_image(stack, "blue") == ("v1.0.0", 2)
    back = stack.releasegate("--json", "rollback", "--env", "nonprod")
    assert back.exit_code == 0, back.stderr
    assert switches == [("green", 4, 4), ("blue", 4, 4)], switches
