"""verify.py against the Kubernetes emulator over HTTP: rollouts followed, failures explained."""

from __future__ import annotations

import time

import pytest

from releasegate.core.errors import NeedsAttention
from releasegate.kube.api import Cluster
from releasegate.kube.verify import diagnose, wait_for_rollout
from tests.emulators.kube import KubeEmulator
from tests.test_kube_emulator import IMAGE, NS, apply_release


def test_rollout_completes_when_pods_are_ready(kube: KubeEmulator) -> None:
    apply_release(kube)
    seen: list[str] = []
    verdict = wait_for_rollout(Cluster(None), NS, "model-api", IMAGE, 10, seen.append)
    assert verdict.state == "complete" and (verdict.ready, verdict.desired) == (2, 2)
    assert seen[-1] == "2 of 2 pods Ready on the pinned image"


def test_crash_loop_is_reported_as_soon_as_the_pod_shows_it(kube: KubeEmulator) -> None:
    kube.controller.default_scenario = "crashloop"
    apply_release(kube)
    verdict = wait_for_rollout(Cluster(None), NS, "model-api", IMAGE, 30, lambda _: None)
    reported = time.time()
    crashed = next(t.at for t in kube.controller.transitions if t.reason == "CrashLoopBackOff")
    assert verdict.state == "failed" and verdict.problems[0].reason == "CrashLoopBackOff"
    assert reported - crashed < 1.0
    details = diagnose(Cluster(None), NS, verdict, IMAGE)
    assert any("event: BackOff" in line for line in details)
    assert any("log: RuntimeError: MODEL_URI is not set" in line for line in details)


def test_never_ready_times_out_and_diagnosis_shows_the_probe(kube: KubeEmulator) -> None:
    kube.controller.default_scenario = "never_ready"
    apply_release(kube)
    verdict = wait_for_rollout(Cluster(None), NS, "model-api", IMAGE, 2, lambda _: None)
    assert verdict.state == "failed" and verdict.summary.startswith("timed out")
    assert any("Readiness probe failed" in line for line in diagnose(Cluster(None), NS, verdict, IMAGE))


def test_a_missing_deployment_needs_attention(kube: KubeEmulator) -> None:
    with pytest.raises(NeedsAttention, match="404"):
        wait_for_rollout(Cluster(None), NS, "model-api", IMAGE, 2, lambda _: None)


def test_a_long_wait_says_where_it_stands_while_events_change_nothing(kube: KubeEmulator) -> None:
    """The pods take 7 s; meanwhile the Deployment is written every 0.3 s (a controller's status,
    a label) without changing what the rollout says. A "still waiting" line comes every 5 s all
    the same: a run waiting that long must be seen to (and, with several clusters, stoppable at
    it)."""
    import threading

    kube.controller.default_scenario, kube.controller.slow_seconds = "slow", 7.0
    apply_release(kube)
    done = threading.Event()

    def touch() -> None:
        n = 0
        while not done.wait(0.3):
            deployment = kube.get("Deployment", NS, "model-api")
            if deployment is not None:
                n += 1
                deployment["metadata"].setdefault("annotations", {})["example.com/touched"] = str(n)
                kube.put(deployment)

    toucher = threading.Thread(target=touch, daemon=True)
    toucher.start()
    seen: list[tuple[float, str]] = []
    started = time.monotonic()
    try:
        verdict = wait_for_rollout(Cluster(None), NS, "model-api", IMAGE, 30,
                                   lambda line: seen.append((time.monotonic() - started, line)))  # fmt: skip
    finally:
        done.set()
        toucher.join(timeout=5)
    assert verdict.state == "complete", verdict.summary
    waiting = [at for at, line in seen if line.startswith("still waiting:")]
    assert waiting and waiting[0] < 6.5, seen
