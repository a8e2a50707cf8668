"""`make demo`: the whole pipeline against local emulators, then a broken release caught;
then nonprod moves to releasegate's own server-side apply (`deployer: apply`, no skaffold) and
drops its PodDisruptionBudget, which is pruned once the release is good; then nonprod moves to
blue/green: a release goes to the idle slot, is tested there and switched
to, and a bad one is caught in preview while the live slot keeps serving; each release's
answers are compared with the live one's on k8s/smoke/compare-requests.jsonl before the switch
(one within the tolerance passes, a retrained model whose answers differ is blocked), and every
end is announced to a local Slack-like receiver (notify:). A freeze window refuses nonprod for a
moment (`check` says why and until when), and `metrics` measures the DORA keys of the history the
demo made. Last, a project whose nonprod has two
clusters (two Kubernetes emulators) releases in two waves, and a release failing in wave 2 is
put back in both.

Starts the GitHub, ECR (moto), Kubernetes emulators and the skaffold stand-in, publishes a
few releases, and runs the real `releasegate` command as a person would, showing its output.
With ``--chart`` (``make demo CHART=1``) nonprod is described by the Helm chart in helm/ instead
of the templates: the same steps, rendered by the real helm binary. With ``--canary`` (``make
demo CANARY=1``) nonprod moves to a canary instead of blue/green: an HTTPRoute's weights go
0 → 10 → 50 (waiting for approval) → promoted, and a release whose error rate (Prometheus) is
too high is aborted at 10 %.
"""

from __future__ import annotations

import shlex
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.emulators.ecr import EcrEmulator
from tests.emulators.prometheus import PrometheusEmulator
from tests.emulators.stack import Stack
from tests.emulators.webhooks import WebhookReceiver
from tests.test_compare import COMPARE  # the shipped requests, compared on predictions within 0.01

WEBHOOK: dict[str, str] = {}  # SLACK_WEBHOOK_URL, pointing at the local receiver
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

APPLY_STEPS = [
    (
        "nonprod moves to `deployer: apply` and drops its PodDisruptionBudget: v1.4.2 again, applied "
        "server-side (taken over from skaffold's client-side apply, no pod restarted), and the "
        "budget pruned once the release is good",
        ["deploy", "--env", "nonprod", "--tag", "v1.4.2"],
        0,
    ),
]

BLUEGREEN_STEPS = [
    (
        "Move to blue/green: v1.6.0 goes to slot blue, is tested through model-api-preview, then "
        "model-api is switched to it (v1.4.2 serves until then) and the rolling Deployment removed",
        ["deploy", "--env", "nonprod", "--tag", "v1.6.0"],
        0,
    ),
    (
        "v1.7.0 goes to the idle slot (green) while blue serves; tested, its answers compared with "
        "blue's (each within 0.01: they agree), then switched",
        ["deploy", "--env", "nonprod", "--tag", "v1.7.0"],
        0,
    ),
    (
        "A bad release (v1.8.0 answers 500 to a sample prediction) is caught in preview: "
        "the live slot (green) never stops serving",
        ["deploy", "--env", "nonprod", "--tag", "v1.8.0"],
        4,
    ),
    (
        "v1.9.0 is healthy but its model answers otherwise (every prediction 0.5 higher): its "
        "comparison with the live slot blocks it before the switch",
        ["deploy", "--env", "nonprod", "--tag", "v1.9.0"],
        4,
    ),
    ("The slots now", ["status", "--env", "nonprod"], 0),
]


CANARY_STEPS = [
    (
        "Move to canary: the first canary release goes straight to stable (nothing to compare with)",
        ["deploy", "--env", "nonprod", "--tag", "v1.6.0"],
        0,
    ),
    (
        "v1.7.0 as a canary: tested at 0 %, 10 % for 3 s (checks and analysis all along), then 50 % "
        "and a wait for approval",
        ["deploy", "--env", "nonprod", "--tag", "v1.7.0"],
        0,
    ),
    ("The canary's weight, and the paused release", ["status", "--env", "nonprod"], 0),
    (
        "While it waits, compare its answers with stable's again (testers reach it with the header "
        "x-canary: always, through the rule releasegate-canary-header)",
        ["compare", "--env", "nonprod"],
        0,
    ),
    ("Approved: promote v1.7.0 to stable (100 %), the canary deleted", ["promote", "--env", "nonprod"], 0),
    (
        "v1.8.0's error rate is 20 % once it takes traffic: aborted at 10 %, all traffic back on stable",
        ["deploy", "--env", "nonprod", "--tag", "v1.8.0"],
        4,
    ),
    ("Stable is still v1.7.0", ["status", "--env", "nonprod"], 0),
]


FREEZE_STEPS = [
    (
        "A freeze window (freeze: in releasegate.yaml) holds nonprod now: check passes every check "
        "and still says no, naming the window and its end",
        ["check", "--env", "nonprod", "--tag", "v1.4.2"],
        3,
    ),
    ("When the freeze ends (reads the file only)", ["freeze", "--env", "nonprod"], 0),
]

METRICS_STEPS = [
    ("The four DORA keys from nonprod's ledger and the tags' commits", ["metrics", "--env", "nonprod"], 0),
]


def freeze_now(stack: Stack) -> str:
    """A freeze window for nonprod from an hour ago to two hours from now; the file as it was."""
    from datetime import UTC, datetime, timedelta

    path = stack.project / "releasegate.yaml"
    before = path.read_text()
    now = datetime.now(UTC).replace(microsecond=0)
    window = (f"freeze:\n  - name: release-review\n    from: {(now - timedelta(hours=1)).isoformat()}\n"
              f"    to: {(now + timedelta(hours=2)).isoformat()}\n    environments: [nonprod]\n")  # fmt: skip
    path.write_text(before + window)
    print(f"\n{BOLD}releasegate.yaml gains a freeze window{RESET}:\n{window}")
    return before


NOTIFY = """notify:
  - slack_webhook_env: SLACK_WEBHOOK_URL
"""


def step(stack: Stack, title: str, *args: str, expect: int) -> bool:
    print(f"\n{BOLD}== {title}{RESET}\n$ releasegate {shlex.join(args)}", flush=True)
    code = stack.releasegate_live(*args, **WEBHOOK)
    print(f"(exit {code}; expected {expect})", flush=True)
    return code == expect


def move_to_apply(stack: Stack) -> None:
    """One line in the environment's file, and a template the team no longer wants."""
    (stack.project / "k8s" / "templates" / "poddisruptionbudget.yaml.j2").unlink()
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text().replace("  disruption: {max_unavailable: 1}\n", "")
    path.write_text(text + "deployer: apply\n")
    print(f"\n{BOLD}k8s/environments/nonprod.yaml now says `deployer: apply`; "
          f"k8s/templates/poddisruptionbudget.yaml.j2 is deleted{RESET}")  # fmt: skip


def move_to_bluegreen(stack: Stack) -> None:
    """What a team does to move an environment to blue/green: one line in its file. The smoke
    checks are shortened (3 tries, 1 s apart) so the bad release is caught in seconds."""
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text().replace("attempts: 30", "attempts: 3").replace("interval: 3 ", "interval: 1 ")
    path.write_text(text + "strategy: {type: bluegreen, scale_down_delay: 3}\n" + COMPARE)
    print(f"\n{BOLD}k8s/environments/nonprod.yaml now says `strategy: {{type: bluegreen}}`, and{RESET} "
          f"(smoke checks: 3 tries, 1 s apart)\n{COMPARE}")  # fmt: skip


def move_to_canary(stack: Stack, prometheus: PrometheusEmulator) -> None:
    """The route the team creates once, and the strategy in nonprod's file."""
    from tests.test_canary import route

    stack.kube.put(route("gateway"))
    stack.kube.proxy.backends[("monitoring", "prometheus-server")] = prometheus
    prometheus.answers["canary"] = 0.002
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text().replace("attempts: 30", "attempts: 3").replace("interval: 3 ", "interval: 1 ")
    strategy = (
        "strategy: {type: canary, traffic: gateway, route: model-api,\n"
        "  steps: [{weight: 10, pause: 3}, {weight: 50, pause: approval}], scale_down_delay: 3,\n"
        "  header: {name: x-canary, value: always},\n"
        "  analysis: {interval: 1, prometheus: {service: 'monitoring/prometheus-server:9090',\n"
        '    query: \'(sum(rate(http_requests_total{track="canary",code=~"5.."}[2m])) or vector(0)) '
        '/ sum(rate(http_requests_total{track="canary"}[2m]))\', max: 0.01}}}\n'
    )
    path.write_text(text + strategy + COMPARE)
    print(
        f"\n{BOLD}HTTPRoute model-api created once; k8s/environments/nonprod.yaml now says{RESET}\n"
        f"{strategy}{COMPARE}"
    )


WAVES_STEPS = [
    ("Several clusters: v2.0.0 to eu-west-1 (wave 1), then us-east-1 (wave 2)",
     ["deploy", "--env", "nonprod", "--tag", "v2.0.0"], 0),
    ("v2.1.0 crash-loops in wave 2: us-east-1 restored, and eu-west-1 (wave 1, already live) put back",
     ["deploy", "--env", "nonprod", "--tag", "v2.1.0", "--timeout", "60"], 4),
    ("What serves in every cluster", ["status", "--env", "nonprod"], 0),
]  # fmt: skip


def several_clusters(ecr: EcrEmulator, workdir: Path) -> list[bool]:
    """A fresh project whose nonprod has two clusters (two Kubernetes emulators, ECR in each
    cluster's region), released to in two waves."""
    from tests.emulators.fleet import Fleet
    from tests.test_smoke import quick_checks

    stack = Stack(ecr, workdir)
    clusters = [("eu-west-1", "eu-west-1", 1), ("us-east-1", "us-east-1", 2)]
    fleet = Fleet(stack, clusters, {"on_failure": "rollback"})
    try:
        quick_checks(stack)
        fleet.publish("v2.0.0")
        fleet.publish("v2.1.0")
        fleet.member("us-east-1").kube.controller.scenarios["v2.1.0"] = "crashloop"
        print(f"\n{BOLD}A new project: nonprod lists two clusters, each its own Kubernetes emulator{RESET}")
        text = (stack.project / "k8s" / "environments" / "nonprod.yaml").read_text()
        print("clusters:\n" + text.split("clusters:\n", 1)[1])
        return [step(stack, title, *args, expect=expect) for title, args, expect in WAVES_STEPS]
    finally:
        fleet.stop()
        stack.stop()


def main() -> int:
    chart = "--chart" in sys.argv[1:]
    canary = "--canary" in sys.argv[1:]
    prometheus = PrometheusEmulator().start()
    assert isinstance(prometheus, PrometheusEmulator)
    ecr = EcrEmulator().start()
    receiver = WebhookReceiver().start()
    assert isinstance(receiver, WebhookReceiver)
    WEBHOOK["SLACK_WEBHOOK_URL"] = receiver.slack_url()
    with tempfile.TemporaryDirectory(prefix="releasegate-demo-") as workdir:
        stack = Stack(ecr, Path(workdir))
        try:
            if chart:
                stack.describe_with_chart("nonprod")
                print(f"{BOLD}nonprod is described by the Helm chart{RESET} (renderer: chart, "
                      "skaffold profile nonprod-chart)")  # fmt: skip
            for tag in (
                "v1.3.0",
                "v1.4.0",
                "v1.4.1",
                "v1.4.2",
                "v1.5.0",
                "v1.6.0",
                "v1.7.0",
                "v1.8.0",
                "v1.9.0",
            ):
                stack.publish(tag)
            (stack.project / "releasegate.yaml").write_text(
                (stack.project / "releasegate.yaml").read_text() + NOTIFY
            )
            stack.kube.proxy.apps.behaviours["v1.7.0"] = "nudged"  # answers 0.004 off: within the tolerance
            stack.kube.proxy.apps.behaviours["v1.9.0"] = "drifted"  # a model whose answers differ
            stack.kube.controller.scenarios["v1.5.0"] = "crashloop"  # a release that cannot start
            stack.kube.proxy.apps.behaviours["v1.8.0"] = "broken_predict"  # starts, but answers 500
            print(f"{BOLD}Emulators up{RESET}: GitHub {stack.github.url}, ECR (moto) {ecr.url}, "
                  f"Kubernetes {stack.kube.url}; skaffold stand-in at {stack.bin}/skaffold")  # fmt: skip
            results = [step(stack, title, *args, expect=expect) for title, args, expect in STEPS]
            unfrozen = freeze_now(stack)
            results += [step(stack, title, *args, expect=expect) for title, args, expect in FREEZE_STEPS]
            (stack.project / "releasegate.yaml").write_text(unfrozen)  # the window lifted again
            if canary:
                stack.kube.proxy.apps.behaviours.pop("v1.8.0")  # its checks pass: its metrics do not
                move_to_canary(stack, prometheus)
                for title, args, expect in CANARY_STEPS:
                    if "v1.8.0" in args:
                        prometheus.answers["canary"] = 0.2
                    results.append(step(stack, title, *args, expect=expect))
            else:
                if not chart:  # the chart is rendered inside skaffold: its objects are not pruned
                    move_to_apply(stack)
                    results += [
                        step(stack, title, *args, expect=expect) for title, args, expect in APPLY_STEPS
                    ]
                move_to_bluegreen(stack)
                results += [
                    step(stack, title, *args, expect=expect) for title, args, expect in BLUEGREEN_STEPS
                ]
            results += [step(stack, title, *args, expect=expect) for title, args, expect in METRICS_STEPS]
            print(f"\n{BOLD}Pods in model-api-nonprod now{RESET}:")
            for pod in stack.kube.list("Pod", "model-api-nonprod"):
                labels = pod["metadata"]["labels"]
                version = labels["app.kubernetes.io/version"]
                ready = any(
                    c["type"] == "Ready" and c["status"] == "True" for c in pod["status"]["conditions"]
                )
                slot = labels.get("releasegate.dev/slot") or labels.get("releasegate.dev/track", "-")
                state = "Ready" if ready else "not Ready"
                print(f"  {pod['metadata']['name']:<36} {version:<8} slot {slot:<6} {state}")
            print(f"\n{BOLD}What the team's Slack channel got (notify:){RESET}:")
            for body in receiver.bodies("slack"):
                print("  " + body["text"].replace("\n", "\n    "))
            if not chart and not canary:
                results += several_clusters(ecr, Path(workdir) / "clusters")
        finally:
            stack.stop()
            ecr.stop()
            prometheus.stop()
            receiver.stop()
    ok = all(results)
    print(f"\n{BOLD}Demo {'finished as expected' if ok else 'did NOT behave as expected'}{RESET}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
