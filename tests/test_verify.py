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
