"""`make bench-real`: releasegate beside the plain tools, on the real control plane, in one run.

1. a whole deploy, with each deployer: `releasegate deploy` (validate, ECR, render, permissions,
   lock, apply (`deployer: apply`: its own server-side apply; `deployer: skaffold`: the real
   skaffold), verify, smoke, prune) beside `kubectl apply` + `kubectl rollout status` of the same
   rendered manifests;
2. a crash-looping release: `releasegate deploy` (detect, restore the previous release, verify)
   beside `helm upgrade --install --rollback-on-failure --wait` of the same release from helm/.

Both sides talk to the same real API servers, controllers, scheduler and kwok kubelets (pods
Ready 0.3 s after they start); rounds alternate so that machine noise hits both alike.
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
from tests.emulators.stack import HELM  # noqa: E402
from tests.real.controlplane import running  # noqa: E402
from tests.real.stack import RealStack  # noqa: E402
from tests.real.stages import Kubelets  # noqa: E402

ROUNDS = 5
TIMEOUT = 60  # seconds, for releasegate's --timeout and helm's --timeout alike


def timed(argv: list[str], expect: int = 0, env: dict[str, str] | None = None) -> float:
    return run_timed(argv, expect, env)[0]


def run_timed(argv: list[str], expect: int = 0, env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    took = time.perf_counter() - started
    if done.returncode != expect:
        raise SystemExit(
            f"{' '.join(argv[:3])}… exited {done.returncode}, not {expect}:\n{done.stderr[-2000:]}"
        )
    return took, done.stdout


def where_the_time_goes(results: list[dict[str, Any]], total: float) -> str:
    """The median of each stage's seconds over the runs (the --json result's stages), the rest
    being the process's start (imports) and what no stage times."""
    names = list(dict.fromkeys(s["name"] for r in results for s in r["stages"]))
    medians = {n: statistics.median(s["seconds"] for r in results for s in r["stages"] if s["name"] == n)
               for n in names}  # fmt: skip
    shown = ", ".join(f"{n} {v:.2f}" for n, v in medians.items())
    return f"{shown}; outside stages (start-up, imports) {total - sum(medians.values()):.2f} s"


def deploys(stack: RealStack, deployer: str, first: int) -> None:
    kubectl = [str(stack.plane.bin / "kubectl"), "--kubeconfig", str(stack.kubeconfig)]
    namespace = stack.namespaces["nonprod"]
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text().replace(f"deployer: {stack.deployer}\n", f"deployer: {deployer}\n"))
    stack.deployer = deployer
    ours, theirs, results = [], [], []
    for n in range(first, first + 2 * ROUNDS):
        tag = f"v2.0.{n}"
        stack.publish(tag)
        if n % 2:
            took, out = run_timed(
                stack.argv("--json", "deploy", "--env", "nonprod", "--tag", tag), env=stack.env()
            )
            ours.append(took)
            results.append(json.loads(out))
            continue
        out = stack.workdir / f"render-{n}"
        timed(stack.argv("render", "--env", "nonprod", "--tag", tag, "--out", str(out)), env=stack.env())
        started = time.perf_counter()
        subprocess.run([*kubectl, "apply", "-f", str(out)], capture_output=True, check=True)
        subprocess.run(
            [*kubectl, "rollout", "status", "deployment/model-api", "-n", namespace, f"--timeout={TIMEOUT}s"],
            capture_output=True, check=True,
        )  # fmt: skip
        theirs.append(time.perf_counter() - started)
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(
        f"a whole deploy on the real control plane, deployer: {deployer} ({ROUNDS} rounds each, interleaved):"
    )
    print(f"  releasegate deploy (validate, ECR, render, permissions, lock, {deployer}, verify, 2 smoke "
          f"checks, prune): median {statistics.median(ours):.2f} s")  # fmt: skip
    print(
        f"  kubectl apply + kubectl rollout status, same manifests: median {statistics.median(theirs):.2f} s"
    )
    print(f"  ratio releasegate deploy (deployer: {deployer}) / kubectl apply + rollout status: {ratio:.2f}x")
    added = statistics.median(ours) - statistics.median(theirs)
    print(f"  releasegate's own time on top (the same whatever the rollout's length): {added:.2f} s")
    print(
        f"  where releasegate's time goes (median s): {where_the_time_goes(results, statistics.median(ours))}"
    )


def crash_loop_restores(stack: RealStack) -> None:
    helm_namespace = stack.namespaces["prod"]
    helm = [str(HELM), "--kubeconfig", str(stack.plane.admin.kubeconfig), "-n", helm_namespace]
    good = stack.publish("v3.0.0")
    stack.behave(good, "ready")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v3.0.0").exit_code == 0
    chart = [str(ROOT / "helm"), "-f", str(ROOT / "helm" / "values-nonprod.yaml")]
    release = [*helm, "upgrade", "--install", "model-api", *chart, "--wait", f"--timeout={TIMEOUT}s"]
    timed([*release, "--set", f"image={stack.image(good)}", "--set", "releaseTag=v3.0.0"])
    ours, theirs = [], []
    for n in range(1, 3):
        tag = f"v3.0.{n}"
        digest = stack.publish(tag)
        stack.behave(digest, "crashloop")
        ours.append(
            timed(
                stack.argv("deploy", "--env", "nonprod", "--tag", tag, "--timeout", str(TIMEOUT)),
                4,
                stack.env(),
            )
        )
        theirs.append(
            timed([*release, "--rollback-on-failure", "--set", f"image={stack.image(digest)}",
                   "--set", f"releaseTag={tag}"], expect=1)
        )  # fmt: skip
    ratio = statistics.median(theirs) / statistics.median(ours)
    print(f"a crash-looping release, on the real control plane (2 rounds each, --timeout {TIMEOUT}s both):")
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    print(f"  releasegate: detected, v3.0.0 restored and verified, exit 4:  median {ours_s:.2f} s")
    print(f"  helm upgrade --rollback-on-failure --wait: rolled back, exit 1: median {theirs_s:.2f} s")
    print(f"  helm takes {ratio:.1f}x as long: it waits out --timeout before it rolls back")


def main() -> int:
    ecr = EcrEmulator().start()
    try:
        with running() as (plane, network):
            kubelets = Kubelets(plane)
            kubelets.install()
            network.kubelets = kubelets
            print(f"real control plane up in {plane.started_in:.1f} s")
            with tempfile.TemporaryDirectory(prefix="releasegate-bench-real-") as workdir:
                stack = RealStack(ecr, Path(workdir), plane, network, kubelets)
                try:
                    deploys(stack, "apply", first=1)
                    deploys(stack, "skaffold", first=1 + 2 * ROUNDS)
                    crash_loop_restores(stack)
                finally:
                    stack.stop()
    finally:
        ecr.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
