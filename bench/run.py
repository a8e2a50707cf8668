"""`make bench`: the figures docs/performance.md quotes, measured side by side in one run.

1. start-up: `releasegate --help` beside `helm version` and `python -c pass` (medians);
2. GitHub requests per tag validation with 1,000 releases in the emulator;
3. a whole `deploy` against emulators whose pods are Ready at once: the tool's own overhead,
   with the templates and with the Helm chart;
4. time from a pod entering ErrImagePull/ImagePullBackOff or CrashLoopBackOff to the tool
   reporting it;
5. a crash-looping release detected, rolled back and verified, beside what helm does;
6. the cost of a passing smoke check, and the comparison's own overhead per proxied request;
7. `rollback` of a rolling environment (a redeploy) beside a blue/green one (a switch).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    for _ in range(7):
        figures["releasegate --help"].append(median_seconds([releasegate, "--help"], 5))
        figures["helm version"].append(median_seconds([helm, "version"], 5))
        figures["python -c pass"].append(median_seconds([sys.executable, "-c", "pass"], 5))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print("start-up (median wall time, 35 runs each, in 7 interleaved rounds):")
    for name, value in medians.items():
        print(f"  {name:<20} {value * 1000:7.1f} ms")
    ratio = medians["releasegate --help"] / medians["helm version"]
    rounds = [r / h for r, h in zip(figures["releasegate --help"], figures["helm version"], strict=True)]
    spread = f"per round {min(rounds):.2f}-{max(rounds):.2f}x"
    print(f"  ratio releasegate/helm: {ratio:.2f}x ({spread}; target <= 2x)")


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
    measure_deploys(stack, "templates")


def deploy_overhead_with_chart(stack: Stack) -> None:
    stack.describe_with_chart("nonprod")
    measure_deploys(stack, "Helm chart: helm template by releasegate and by skaffold")


def measure_deploys(stack: Stack, described_by: str) -> None:
    stack.kube.controller.ready_seconds = 0.0
    tags = [f"v3.0.{n}" for n in range(6)]
    for tag in tags:
        stack.publish(tag)
    times, own = [], []
    for tag in tags:
        started = time.perf_counter()
        run = stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag)
        times.append(time.perf_counter() - started)
        assert run.exit_code == 0, run.stderr
        skaffold = next(s["seconds"] for s in json.loads(run.stdout)["stages"] if s["name"] == "deploy")
        own.append(times[-1] - skaffold)
    print(f"whole deploy ({described_by}), pods Ready at once (process start to exit, 6 deploys):")
    low, mid, high = min(times), statistics.median(times), max(times)
    print(f"  median {mid:.2f} s, min {low:.2f} s, max {high:.2f} s (target <= 2 s)")
    print(f"  of which releasegate itself (without the skaffold run): median {statistics.median(own):.2f} s")


def detection(stack: Stack, scenario: str, tag: str, reasons: tuple[str, ...]) -> float:
    stack.publish(tag)
    stack.kube.controller.scenarios[tag] = scenario
    stack.kube.controller.failure_seconds = 3.0  # fail after the tool is watching
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
    first = min(t.at for t in stack.kube.controller.transitions if t.reason in reasons and t.version == tag)
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


def crashloop_rollback(stack: Stack) -> None:
    stack.publish("v6.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v6.0.0").exit_code == 0
    times = []
    for n in range(1, 4):
        tag = f"v6.0.{n}"
        stack.publish(tag)
        stack.kube.controller.scenarios[tag] = "crashloop"
        started = time.perf_counter()
        run = stack.releasegate("deploy", "--env", "nonprod", "--tag", tag)
        times.append(time.perf_counter() - started)
        assert run.exit_code == 4, run.stderr
    helm = subprocess.run(
        [str(ROOT / "tools" / "bin" / "helm"), "upgrade", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    timeout = next(
        (line.split("(default ")[1].rstrip(")") for line in helm.splitlines() if "--timeout" in line), "?"
    )
    print("crash-looping release: deploy, detect, restore the previous release and verify it (3 runs):")
    print(f"  releasegate: median {statistics.median(times):.2f} s, exit 4 (target < 15 s)")
    helm_says = f"waits up to --timeout (default {timeout}) for readiness, then rolls back"
    print(f"  helm --rollback-on-failure: {helm_says}")


def smoke_overhead(stack: Stack) -> None:
    """The cost of a passing smoke check: the `smoke` stage's own time (from --json) over the
    number of checks, with the shipped two checks listed five times (ten requests per run)."""
    stack.publish("v1.4.2")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 0
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text()
    checks = text[text.index("  checks:\n") + len("  checks:\n") : text.index("values:\n")]
    path.write_text(text.replace(checks, checks * 5))
    per_check = []
    for _ in range(7):
        run = stack.releasegate("--json", "smoke", "--env", "nonprod")
        assert run.exit_code == 0, run.stderr
        result = json.loads(run.stdout)
        stage = next(s["seconds"] for s in result["stages"] if s["name"] == "smoke")
        per_check.append(stage / len(result["smoke"]) * 1000)
    print("smoke checks through the API server's service proxy (`releasegate smoke`, 10 checks, 7 runs):")
    print(f"  median {statistics.median(per_check):.1f} ms per passing check (target <= 50 ms)")


def compare_overhead(stack: Stack) -> None:
    """The comparison's own cost (``compare:``): 200 requests replayed to two Services through
    the API server's proxy and judged; its own time is the whole minus the time inside each
    proxied request (as each answer's own timing records it), per proxied request. The same
    400 requests sent bare with the same client are shown beside it."""
    import os

    from releasegate.core import comparison
    from releasegate.core.compare_config import Compare
    from releasegate.kube.api import Cluster
    from releasegate.kube.compare import replay

    stack.publish("v1.4.2")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 0
    os.environ["KUBECONFIG"] = str(stack.kubeconfig)
    cluster = Cluster(None)
    body = json.loads((ROOT / "k8s" / "smoke" / "compare-requests.jsonl").read_text().splitlines()[0])
    compare = Compare("bench.jsonl", tuple(body for _ in range(200)), field="predictions", tolerance=0.01)
    path = "/api/v1/namespaces/model-api-nonprod/services/model-api:http/proxy/predict"
    overheads = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(2 * len(compare.requests)):
            cluster.raw("POST", path, body)
        bare = time.perf_counter() - started
        started = time.perf_counter()
        pairs = replay(
            cluster, "model-api-nonprod", ("model-api", "model-api"), None, compare, lambda _: None
        )
        outcome = comparison.judge(compare, pairs)
        compared = time.perf_counter() - started
        assert outcome.agreed == len(compare.requests)
        inside = sum(a.ms + b.ms for a, b in pairs) / 1000
        overheads.append((compared - inside) / (2 * len(compare.requests)) * 1000)
    print("comparison (`compare:`, 200 requests to two Services through the proxy, 5 runs):")
    bare_ms = bare / (2 * len(compare.requests)) * 1000
    print(f"  median {statistics.median(overheads):.3f} ms of its own per proxied request, beyond the "
          f"request (target <= 5 ms; the request through the proxy: {bare_ms:.2f} ms bare)")  # fmt: skip


def rollback_rolling(stack: Stack) -> None:
    """A rolling rollback redeploys the previous image: from the command's start to its exit,
    the previous release Ready again (the emulator's pods are Ready 50 ms after they start)."""
    times = []
    for _ in range(5):
        deploy_both(stack)
        started = time.perf_counter()
        run = stack.releasegate("rollback", "--env", "nonprod", "--to", "v7.0.0")
        times.append(time.perf_counter() - started)
        assert run.exit_code == 0, run.stderr
    print("rollback, 5 runs each:")
    print(
        "  rolling (redeploy v7.0.0, verify it Ready): "
        f"median {statistics.median(times):.2f} s from the command's start to its exit"
    )


def deploy_both(stack: Stack) -> None:
    """v7.0.0, then v7.1.0 (blue/green: v7.0.0 in blue, v7.1.0 in green and live)."""
    for tag in ("v7.0.0", "v7.1.0"):
        if not any(r["tag_name"] == tag for r in stack.github.releases):
            stack.publish(tag)
        run = stack.releasegate("deploy", "--env", "nonprod", "--tag", tag, "--allow-downgrade")
        assert run.exit_code == 0, run.stderr


def rollback_bluegreen(stack: Stack) -> None:
    """Blue/green with keep_previous: from the command's start to the Service selecting the old
    slot (seen by the emulator's observer, in this process), and to the command's exit."""
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + "strategy: {type: bluegreen, keep_previous: true}\n")
    switched: list[float] = []
    live = [""]  # the slot serving v7.1.0 when the rollback starts

    def watch(event: str, obj: dict[str, Any]) -> None:
        service = obj["kind"] == "Service" and obj["metadata"]["name"] == "model-api"
        if service and obj["spec"]["selector"].get("releasegate.dev/slot") != live[0]:
            switched.append(time.perf_counter())

    to_switch, to_exit = [], []
    for _ in range(5):
        deploy_both(stack)
        live[0] = stack.kube.get("Service", "model-api-nonprod", "model-api")["spec"]["selector"][
            "releasegate.dev/slot"
        ]
        stack.kube.observers.append(watch)
        switched.clear()
        started = time.perf_counter()
        run = stack.releasegate("rollback", "--env", "nonprod", "--to", "v7.0.0")
        to_exit.append(time.perf_counter() - started)
        stack.kube.observers.remove(watch)
        assert run.exit_code == 0 and switched and "restore" not in run.stderr, run.stderr
        to_switch.append(switched[0] - started)
    print(
        f"  blue/green, keep_previous (a switch, no pod started): "
        f"median {statistics.median(to_switch):.2f} s "
        f"to the Service selecting the old slot (target <= 1 s), {statistics.median(to_exit):.2f} s to exit"
    )


def canary_abort(stack: Stack) -> None:
    """Canary (Gateway API): from the check that fails (the canary's 500, as the emulator
    answers it) to the HTTPRoute write that gives stable all the traffic again."""
    from tests.test_canary import route

    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text().replace("attempts: 30", "attempts: 2").replace("interval: 3 ", "interval: 0 ")
    steps = "[{weight: 10, pause: 30}, {weight: 50, pause: 30}]"
    path.write_text(
        # scale_down_delay: the canary is deleted 2 s after its traffic left; the route write is not
        text + f"strategy: {{type: canary, traffic: gateway, route: model-api, steps: {steps}, "
        "scale_down_delay: 2}\n"
    )
    stack.kube.put(route("gateway"))
    stack.publish("v7.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v7.0.0").exit_code == 0
    back: list[float] = []
    tag = [""]

    def watch(event: str, obj: dict[str, Any]) -> None:
        if obj["kind"] != "HTTPRoute":
            return
        weights = {b["name"]: b.get("weight", 1) for b in obj["spec"]["rules"][0]["backendRefs"]}
        if weights.get("model-api-canary") == 10:  # the release goes bad once it takes traffic
            stack.kube.proxy.apps.behaviours[tag[0]] = "broken_predict"
        elif weights.get("model-api-canary") == 0 and tag[0] in stack.kube.proxy.apps.behaviours:
            back.append(time.perf_counter())

    stack.kube.observers.append(watch)
    latencies = []
    for n in range(1, 6):
        tag[0] = f"v7.{n}.0"
        stack.publish(tag[0])
        back.clear()
        calls_before = len(stack.kube.proxy.apps.calls)
        run = stack.releasegate("deploy", "--env", "nonprod", "--tag", tag[0])
        assert run.exit_code == 4 and back, run.stderr
        failed = next(c for c in stack.kube.proxy.apps.calls[calls_before:] if c.status == 500)
        latencies.append(back[0] - failed.at)
    print(
        f"  canary abort (Gateway API): median {statistics.median(latencies) * 1000:.0f} ms "
        f"from the failed check to the route giving stable 100 % (target <= 1 s; "
        f"max {max(latencies) * 1000:.0f} ms over {len(latencies)} aborts)"
    )


def main() -> int:
    startup()
    ecr = EcrEmulator().start()
    try:
        benches = (
            github_requests,
            deploy_overhead,
            deploy_overhead_with_chart,
            failure_latency,
            crashloop_rollback,
            smoke_overhead,
            compare_overhead,
            rollback_rolling,
            rollback_bluegreen,
            canary_abort,
        )
        for bench in benches:
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
