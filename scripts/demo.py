"""`make demo`: the whole pipeline against local emulators, then a broken release caught.

Starts the GitHub, ECR (moto), Kubernetes emulators and the skaffold stand-in, publishes a
few releases, and runs the real `releasegate` command as a person would, showing its output.
With ``--chart`` (``make demo CHART=1``) nonprod is described by the Helm chart in helm/ instead
of the templates: the same steps, rendered by the real helm binary.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.emulators.ecr import EcrEmulator
from tests.emulators.stack import Stack

BOLD, RESET = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")


STEPS = [
    ("The releases that may be deployed", ["releases"], 0),
    ("Deploy v1.4.2 to nonprod", ["deploy", "--env", "nonprod", "--tag", "v1.4.2"], 0),
    (
        "A typo in the tag is refused before anything changes",
        ["deploy", "--env", "nonprod", "--tag", "v1.4.3"],
        3,
    ),
    (
        "A broken release (v1.5.0 crash-loops): caught, explained, and v1.4.2 put back",
        ["deploy", "--env", "nonprod", "--tag", "v1.5.0", "--timeout", "60"],
        4,
    ),
    ("What is serving now, from the ledger in the cluster", ["status", "--env", "nonprod"], 0),
    ("Every attempt, newest first", ["history", "--env", "nonprod"], 0),
]


def step(stack: Stack, title: str, *args: str, expect: int) -> bool:
    print(f"\n{BOLD}== {title}{RESET}\n$ releasegate {shlex.join(args)}", flush=True)
    code = stack.releasegate_live(*args)
    print(f"(exit {code}; expected {expect})", flush=True)
    return code == expect


def main() -> int:
    chart = "--chart" in sys.argv[1:]
    ecr = EcrEmulator().start()
    with tempfile.TemporaryDirectory(prefix="releasegate-demo-") as workdir:
        stack = Stack(ecr, Path(workdir))
        try:
            if chart:
                stack.describe_with_chart("nonprod")
                print(f"{BOLD}nonprod is described by the Helm chart{RESET} (renderer: chart, "
                      "skaffold profile nonprod-chart)")  # fmt: skip
            for tag in ("v1.3.0", "v1.4.0", "v1.4.1", "v1.4.2", "v1.5.0"):
                stack.publish(tag)
            stack.kube.controller.scenarios["v1.5.0"] = "crashloop"  # a release that cannot start
            print(f"{BOLD}Emulators up{RESET}: GitHub {stack.github.url}, ECR (moto) {ecr.url}, "
                  f"Kubernetes {stack.kube.url}; skaffold stand-in at {stack.bin}/skaffold")  # fmt: skip
            results = [step(stack, title, *args, expect=expect) for title, args, expect in STEPS]
            print(f"\n{BOLD}Pods in model-api-nonprod now{RESET}:")
            for pod in stack.kube.list("Pod", "model-api-nonprod"):
                version = pod["metadata"]["labels"]["app.kubernetes.io/version"]
                ready = any(
                    c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"]
                )
                print(f"  {pod['metadata']['name']:<32} {version:<8} {'Ready' if ready else 'not Ready'}")
        finally:
            stack.stop()
            ecr.stop()
    ok = all(results)
    print(f"\n{BOLD}Demo {'finished as expected' if ok else 'did NOT behave as expected'}{RESET}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
