"""`make bench` (its last figures): a release to three clusters in one wave beside the same release
to one cluster, and the pre-flight (`releasegate check`) of three clusters beside one's; goal
<= 1.3x for both. Each cluster is its own Kubernetes emulator whose new pods take ``READY_SECONDS``
to become Ready (a rollout's wait, which the clusters of a wave spend side by side)."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.emulators.ecr import EcrEmulator  # noqa: E402
from tests.emulators.fleet import Fleet  # noqa: E402
from tests.emulators.stack import Stack  # noqa: E402
from tests.test_smoke import quick_checks  # noqa: E402

READY_SECONDS = 2.0
RUNS = 5
THREE = [
    ("eu-west-1", "eu-west-1", 1),
    ("us-east-1", "us-east-1", 1),
    ("ap-southeast-1", "ap-southeast-1", 1),
]


def timed(stack: Stack, *args: str) -> float:
    started = time.perf_counter()
    run = stack.releasegate(*args)
    seconds = time.perf_counter() - started
    assert run.exit_code == 0, run.stderr
    return seconds


def measure(
    ecr: EcrEmulator, clusters: list[tuple[str, str, int]] | None, deployer: str
) -> tuple[float, float]:
    """Median seconds of `check` and of `deploy` (a new tag each time)."""
    stack = Stack(ecr, Path(tempfile.mkdtemp(prefix="releasegate-bench-waves-")))
    fleet = Fleet(stack, clusters, {"max_parallel": 0}) if clusters else None
    try:
        quick_checks(stack)
        path = stack.project / "k8s" / "environments" / "nonprod.yaml"
        path.write_text(path.read_text() + f"deployer: {deployer}\n")
        kubes = [m.kube for m in fleet.members] if fleet else [stack.kube]
        for kube in kubes:
            kube.controller.ready_seconds = READY_SECONDS
        checks, deploys = [], []
        for n in range(RUNS):
            tag = f"v4.0.{n}"
            if fleet:
                fleet.publish(tag)
            else:
                stack.publish(tag)
            checks.append(timed(stack, "check", "--env", "nonprod", "--tag", tag))
            deploys.append(timed(stack, "deploy", "--env", "nonprod", "--tag", tag))
        return statistics.median(checks), statistics.median(deploys)
    finally:
        if fleet:
            fleet.stop()
        stack.stop()


def ratio(what: str, one: float, three: float, label: str) -> None:
    print(f"  {what}: one cluster {one:.2f} s, {label} {three:.2f} s: {three / one:.2f}x (goal <= 1.3x)")


def main() -> int:
    ecr = EcrEmulator().start()
    print(f"several clusters (pods Ready {READY_SECONDS:g} s after they start; median of {RUNS} runs):")
    try:
        for deployer in ("apply", "skaffold"):
            one_check, one_deploy = measure(ecr, None, deployer)
            three_check, three_deploy = measure(ecr, THREE, deployer)
            ratio(f"pre-flight (`check`), {deployer}", one_check, three_check, "three clusters")
            ratio(f"deploy, {deployer}", one_deploy, three_deploy, "three clusters in one wave")
    finally:
        ecr.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
