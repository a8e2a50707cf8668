"""`make bench`: the figures the README quotes, measured side by side in one run.

1. start-up: `releasegate --help` beside `helm version` and `python -c pass` (medians);
2. GitHub requests per tag validation with 1,000 releases in the emulator;
3. a whole `deploy` against emulators whose pods are Ready at once: the tool's own overhead;
4. time from a pod entering ErrImagePull/ImagePullBackOff or CrashLoopBackOff to the tool
   reporting it.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.emulators.ecr import EcrEmulator  # noqa: E402
from tests.emulators.stack import Stack  # noqa: E402

RUNS = 21


def median_seconds(argv: list[str], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def startup() -> None:
    releasegate = str(Path(sys.executable).parent / "releasegate")
    helm = str(ROOT / "tools" / "bin" / "helm")
    # Interleaved rounds, so that machine noise hits all three alike.
    figures: dict[str, list[float]] = {"releasegate --help": [], "helm version": [], "python -c pass": []}
    for _ in range(3):
        figures["releasegate --help"].append(median_seconds([releasegate, "--help"], 7))
        figures["helm version"].append(median_seconds([helm, "version"], 7))
        figures["python -c pass"].append(median_seconds([sys.executable, "-c", "pass"], 7))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print("start-up (median wall time, 21 runs each, interleaved):")
    for name, value in medians.items():
        print(f"  {name:<20} {value * 1000:7.1f} ms")
    ratio = medians["releasegate --help"] / medians["helm version"]
    print(f"  ratio releasegate/helm: {ratio:.2f}x (target <= 2x)")


def github_requests(stack: Stack) -> None:
    for minor in range(40):
        for patch in range(25):
            stack.github.add_release(f"v1.{minor}.{patch}")
    stack.ecr.push("model-api", "v1.20.7")
    cases = {"published tag": "v1.20.7", "unknown tag (hint)": "v1.20.99"}
    print(f"GitHub requests per validation with {len(stack.github.releases)} releases:")
    for label, tag in cases.items():
        before = len(stack.github.api_requests())
        run = stack.releasegate("deploy", "--env", "nonprod", "--tag", tag, "--dry-run")
        count = len(stack.github.api_requests()) - before
        print(f"  {label:<20} {count} requests (exit {run.exit_code}; target <= 2)")


def deploy_overhead(stack: Stack) -> None:
    stack.kube.controller.ready_seconds = 0.0
    tags = [f"v3.0.{n}" for n in range(6)]
    for tag in tags:
        stack.publish(tag)
    times = []
    for tag in tags:
        started = time.perf_counter()
        run = stack.releasegate("deploy", "--env", "nonprod", "--tag", tag)
        times.append(time.perf_counter() - started)
        assert run.exit_code == 0, run.stderr
    print("whole deploy, pods Ready at once (process start to exit, 6 deploys):")
    low, mid, high = min(times), statistics.median(times), max(times)
    print(f"  median {mid:.2f} s, min {low:.2f} s, max {high:.2f} s (target <= 2 s)")


def detection(stack: Stack, scenario: str, tag: str, reasons: tuple[str, ...]) -> float:
    stack.publish(tag)
    stack.kube.controller.scenarios[tag] = scenario
    stack.kube.controller.failure_seconds = 3.0  # fail after the tool is watching
    started = time.time()
    process = subprocess.Popen(
        stack.argv("deploy", "--env", "nonprod", "--tag", tag, "--timeout", "60"),
        env=stack.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    reported = None
    for line in process.stderr:
        if reported is None and line.startswith("  rollout |") and any(r in line for r in reasons):
            reported = time.time()
    process.wait()
    # Only this run's pods: an earlier run's pods may still change state after it ended.
    first = min(t.at for t in stack.kube.controller.transitions if t.reason in reasons and t.at >= started)
    assert reported is not None, f"{scenario}: the tool never reported it"
    return reported - first


def failure_latency(stack: Stack) -> None:
    print("time from the pod state appearing to the tool reporting it:")
    pull = [
        detection(stack, "pull_error", f"v4.0.{n}", ("ErrImagePull", "ImagePullBackOff")) for n in range(3)
    ]
    crash = [detection(stack, "crashloop", f"v5.0.{n}", ("CrashLoopBackOff",)) for n in range(3)]
    print(f"  ErrImagePull/ImagePullBackOff  median {statistics.median(pull) * 1000:6.0f} ms (target <= 3 s)")
    print(
        f"  CrashLoopBackOff               median {statistics.median(crash) * 1000:6.0f} ms (target <= 3 s)"
    )


def main() -> int:
    startup()
    ecr = EcrEmulator().start()
    try:
        for bench in (github_requests, deploy_overhead, failure_latency):
            with tempfile.TemporaryDirectory(prefix="releasegate-bench-") as workdir:
                stack = Stack(ecr, Path(workdir))
                try:
                    bench(stack)
                finally:
                    stack.stop()
    finally:
        ecr.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
