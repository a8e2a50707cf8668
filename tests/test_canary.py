"""Canary through the real CLI against the emulators, for each way traffic is weighed: an
HTTPRoute's backends (Gateway API), a VirtualService's destinations (Istio), or the pods'
ratio behind Service <app>. The emulator's observers see every write, so the weights are read
in the order they were written, and the stable Deployment is watched for any change."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.emulators.prometheus import PrometheusEmulator
from tests.emulators.stack import Run, Stack
from tests.test_faults import assert_lock_released_and_no_secret, interrupted, interrupted_deploy
from tests.test_smoke import quick_checks

NS = "model-api-nonprod"
APP = "model-api"
TRAFFIC = ["gateway", "istio", "replicas"]
TWO_STEPS = "[{weight: 10, pause: 0.2}, {weight: 50, pause: 0.2}]"
# Tests of what happens around a canary hold no drain time unless they are about it (the
# default scale_down_delay is 30 s).
NO_DRAIN = ", scale_down_delay: 0"
QUERY = 'sum(rate(http_requests_total{track="canary",code=~"5.."}[2m]))'


def route(traffic: str) -> dict[str, Any]:
    """The route a team creates once: parents, hostnames, matches, and a backend of its own."""
    if traffic == "gateway":
        return {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": APP, "namespace": NS},
            "spec": {
                "parentRefs": [{"name": "public", "namespace": "gateways"}],
                "hostnames": ["model-api.example.com"],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                           "backendRefs": [{"name": APP, "port": 80}]}],
            },
        }  # fmt: skip
    return {
        "apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
        "metadata": {"name": APP, "namespace": NS},
        "spec": {"hosts": ["model-api.example.com"], "gateways": ["gateways/public"],
                 "http": [{"match": [{"uri": {"prefix": "/"}}], "route": [{"destination": {"host": APP}}]}]},
    }  # fmt: skip


def canary(
    stack: Stack, traffic: str, steps: str = TWO_STEPS, analysis: str = "", with_route: bool = True
) -> None:
    quick_checks(stack)
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    where = "" if traffic == "replicas" else ", route: model-api"
    more = f", analysis: {analysis}" if analysis else ""
    path.write_text(
        path.read_text()
        + f"strategy: {{type: canary, traffic: {traffic}{where}, steps: {steps}{more}{NO_DRAIN}}}\n"
    )
    if with_route and traffic != "replicas":
        stack.kube.put(route(traffic))


def deploy(stack: Stack, tag: str, *args: str) -> Run:
    stack.publish(tag)
    return stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag, *args)


def weight_writes(stack: Stack, traffic: str) -> list[int]:
    """The canary's weight at every write from now on, in order (replicas: its share of the pods
    Service <app> selects, written as a selector or a scale)."""
    seen: list[int] = []
    generations: list[Any] = []  # of the route: its controller's status writes change none

    def watch(event: str, obj: dict[str, Any]) -> None:
        if event == "DELETED" or obj["metadata"]["namespace"] != NS:
            return
        if traffic == "replicas":
            if (obj["kind"], obj["metadata"]["name"]) in (("Service", APP), ("Deployment", f"{APP}-canary")):
                share = pod_share(stack, obj)
                if share is not None and (not seen or seen[-1] != share):
                    seen.append(share)
            return
        if obj["kind"] in ("HTTPRoute", "VirtualService") and obj["metadata"]["name"] == APP:
            weights = backend_weights(obj)
            if generations[-1:] == [obj["metadata"].get("generation")]:
                return
            generations.append(obj["metadata"].get("generation"))
            if set(weights) == {f"{APP}-stable", f"{APP}-canary"}:
                assert sum(weights.values()) == 100, weights
                seen.append(weights[f"{APP}-canary"])

    stack.kube.observers.append(watch)
    return seen


def backend_weights(obj: dict[str, Any]) -> dict[str, int]:
    if obj["kind"] == "HTTPRoute":
        return {b["name"]: b.get("weight", 1) for b in obj["spec"]["rules"][0]["backendRefs"]}
    return {d["destination"]["host"]: d.get("weight", 0) for d in obj["spec"]["http"][0]["route"]}


def pod_share(stack: Stack, changed: dict[str, Any]) -> int | None:
    """Percent of the pods Service <app> selects that are canary pods (with the object just
    changed, as the observer sees it before the store returns)."""
    objects = {(o["kind"], o["metadata"]["name"]): o for o in (
        stack.kube.get("Service", NS, APP), stack.kube.get("Deployment", NS, APP),
        stack.kube.get("Deployment", NS, f"{APP}-canary"), changed) if o}  # fmt: skip
    service, stable = objects.get(("Service", APP)), objects.get(("Deployment", APP))
    canary_deployment = objects.get(("Deployment", f"{APP}-canary"))
    if service is None or stable is None:
        return None
    if canary_deployment is None or "app.kubernetes.io/instance" in service["spec"]["selector"]:
        return 0
    ours, theirs = canary_deployment["spec"]["replicas"], stable["spec"]["replicas"]
    return round(100 * ours / (ours + theirs))


def stable_changes(stack: Stack) -> list[int]:
    """The stable Deployment's generation at every change of its spec from now on."""
    seen: list[int] = []

    def watch(event: str, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == APP:
            generation = obj["metadata"].get("generation", 0)
            if event == "DELETED" or not seen or seen[-1] != generation:
                seen.append(generation)

    stack.kube.observers.append(watch)
    return seen


def generation(stack: Stack) -> int:
    return int(stack.kube.get("Deployment", NS, APP)["metadata"]["generation"])


def stable_tag(stack: Stack) -> str:
    return str(stack.kube.get("Deployment", NS, APP)["metadata"]["annotations"]["releasegate.dev/tag"])


def history(stack: Stack) -> list[tuple[str, str]]:
    records = json.loads(stack.releasegate("--json", "history", "--env", "nonprod").stdout)["history"]
    return [(r["tag"], r["outcome"]) for r in records]


def github_statuses(stack: Stack) -> list[str]:
    """The descriptions of the newest GitHub deployment's statuses, oldest first."""
    newest = max(stack.github.statuses)
    return [str(s.get("description", "")) for s in reversed(stack.github.statuses[newest])]


@pytest.fixture
def prometheus(stack: Stack) -> Iterator[PrometheusEmulator]:
    server = PrometheusEmulator().start()
    assert isinstance(server, PrometheusEmulator)
    stack.kube.proxy.backends[("monitoring", "prometheus-server")] = server
    yield server
    server.stop()


def first_release(stack: Stack, traffic: str) -> list[int]:
    """v1.0.0 goes straight to stable; returns the weights written from then on."""
    first = deploy(stack, "v1.0.0")
    assert first.exit_code == 0, first.stderr
    assert stack.kube.get("Deployment", NS, f"{APP}-canary") is None
    return weight_writes(stack, traffic)


@pytest.mark.e2e
@pytest.mark.parametrize("traffic", TRAFFIC)
def test_a_canary_takes_each_step_then_is_promoted(stack: Stack, traffic: str) -> None:
    canary(
        stack,
        traffic,
        "[{weight: 40, pause: 0.2}, {weight: 100, pause: 0.2}]" if traffic == "replicas" else TWO_STEPS,
    )
    first = weight_writes(stack, traffic)
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert first in ([0], [])  # the route written stable 100 (replicas: <app> never selected a canary)
    writes = weight_writes(stack, traffic)
    stable = stable_changes(stack)
    before = generation(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["outcome"], result["strategy"], result["step"], result["weight"]) == (
        "deployed",
        "canary",
        2,
        100,
    )
    expected = [0, 33, 50, 0] if traffic == "replicas" else [0, 10, 50, 0]
    assert writes == expected
    assert stable == [before + 1]  # touched once: the promotion
    assert stable_tag(stack) == "v1.1.0"
    assert stack.kube.get("Deployment", NS, f"{APP}-canary") is None
    assert "step 1" in run.stderr and "step 2" in run.stderr and "promote" in run.stderr
    statuses = github_statuses(stack)
    weights = (40, 100) if traffic == "replicas" else (10, 50)
    assert statuses[-4:-1] == [f"canary {weights[0]} %", f"canary {weights[1]} %", "promoted"]
    assert statuses[-1].startswith("v1.1.0 is live")
    assert_lock_released_and_no_secret(stack, run)


def break_at(stack: Stack, writes: list[int], count: int, behaviour: str = "broken_predict") -> None:
    """From the ``count``-th weight write on, the new release answers its checks with ``behaviour``."""

    def watch(event: str, obj: dict[str, Any]) -> None:
        del event, obj
        if len(writes) >= count:
            stack.kube.proxy.apps.behaviours["v1.1.0"] = behaviour

    stack.kube.observers.append(watch)


def assert_aborted(stack: Stack, run: Run, code: int, before: int, stable: list[int], *words: str) -> None:
    """Traffic all on stable, the canary deleted, the stable Deployment never changed."""
    assert run.exit_code == code, run.stderr
    for word in words:
        assert word in run.stderr, (word, run.last_line)
    assert stable == [] and generation(stack) == before
    assert stable_tag(stack) == "v1.0.0"
    assert stack.kube.get("Deployment", NS, f"{APP}-canary") is None
    assert_lock_released_and_no_secret(stack, run)


@pytest.mark.e2e
@pytest.mark.parametrize("traffic", TRAFFIC)
def test_a_smoke_failure_in_step_2_puts_all_traffic_back_on_stable(stack: Stack, traffic: str) -> None:
    canary(
        stack,
        traffic,
        "[{weight: 40, pause: 0.2}, {weight: 100, pause: 5}]" if traffic == "replicas" else TWO_STEPS,
    )
    writes = first_release(stack, traffic)
    break_at(stack, writes, 3)
    stable, before = stable_changes(stack), generation(stack)
    run = deploy(stack, "v1.1.0")
    assert_aborted(
        stack, run, 4, before, stable, "step 2", "smoke check 'sample prediction'", "v1.0.0 was restored"
    )
    assert writes == ([0, 33, 50, 0] if traffic == "replicas" else [0, 10, 50, 0])
    assert history(stack)[:3] == [("v1.0.0", "deployed"), ("v1.1.0", "failed"), ("v1.0.0", "deployed")]
    failed = json.loads(run.stdout)
    assert (failed["strategy"], failed["step"], failed["weight"]) == (
        "canary",
        2,
        100 if traffic == "replicas" else 50,
    )


FIRST_SHARE = {"gateway": 10, "istio": 10, "replicas": 33}  # step 1 (10 %); replicas: 1 pod beside 2


@pytest.mark.e2e
@pytest.mark.parametrize("traffic", TRAFFIC)
def test_an_analysis_above_max_aborts_the_canary(
    stack: Stack, prometheus: PrometheusEmulator, traffic: str
) -> None:
    analysis = f"{{interval: 0.1, prometheus: {{url: '{prometheus.url}', query: '{QUERY}', max: 0.01}}}}"
    canary(stack, traffic, analysis=analysis)
    prometheus.answers["canary"] = 0.0
    writes = first_release(stack, traffic)
    stable, before = stable_changes(stack), generation(stack)

    def breach(event: str, obj: dict[str, Any]) -> None:
        if len(writes) >= 2:  # from the first step on: 25 % of the canary's answers are errors
            prometheus.answers["canary"] = 0.25

    stack.kube.observers.append(breach)
    run = deploy(stack, "v1.1.0")
    assert_aborted(stack, run, 4, before, stable, "step 1 (10 %): analysis 0.25 is above max 0.01")
    assert writes == [0, FIRST_SHARE[traffic], 0]
    assert prometheus.queries and all(q == QUERY for q in prometheus.queries)


@pytest.mark.e2e
@pytest.mark.parametrize("traffic", TRAFFIC)
def test_an_analysis_with_no_data_is_a_failed_check(
    stack: Stack, prometheus: PrometheusEmulator, traffic: str
) -> None:
    """Through the API server's service proxy to an in-cluster Prometheus that has no series."""
    service = "monitoring/prometheus-server:9090"
    analysis = f"{{interval: 0.1, prometheus: {{service: {service}, query: '{QUERY}', max: 0.01}}}}"
    canary(stack, traffic, analysis=analysis)
    writes = first_release(stack, traffic)
    stable, before = stable_changes(stack), generation(stack)
    run = deploy(stack, "v1.1.0")
    assert_aborted(stack, run, 4, before, stable, "step 1 (10 %)", "returned no data")
    assert writes == [0, FIRST_SHARE[traffic], 0]
    proxied = [
        r for r in stack.kube.requests if "/services/prometheus-server:9090/proxy/api/v1/query" in r.path
    ]
    assert proxied and proxied[0].query["query"] == QUERY


@pytest.mark.e2e
def test_one_failed_try_inside_a_pause_is_retried_not_an_abort(stack: Stack) -> None:
    """A 429 from API Priority and Fairness, a pod evicted mid-request: the check's next try."""
    canary(stack, "gateway", "[{weight: 10, pause: 0.4}]")
    first_release(stack, "gateway")
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "hiccup"  # every third answer of v1.1.0 is a 503
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    answered = [c.status for c in stack.kube.proxy.apps.calls if c.pod.startswith(f"{APP}-canary")]
    assert 503 in answered[2:], answered  # a hiccup came inside the step, and was retried
    assert stable_tag(stack) == "v1.1.0"


@pytest.mark.e2e
def test_with_traffic_replicas_waiting_for_the_canary_to_scale_is_bounded_by_timeout(stack: Stack) -> None:
    """It once waited a fixed 120 s for the canary's new pods, whatever --timeout said."""
    canary(stack, "replicas", "[{weight: 40, pause: 0.2}, {weight: 100, pause: 0.2}]")
    writes = first_release(stack, "replicas")

    def pods_stop_starting(event: str, obj: dict[str, Any]) -> None:
        if writes and writes[-1] == 33:  # step 1 holds: pods made from now on never become Ready
            stack.kube.controller.scenarios["v1.1.0"] = "never_ready"

    stack.kube.observers.append(pods_stop_starting)
    stable, before = stable_changes(stack), generation(stack)
    started = time.monotonic()
    run = deploy(stack, "v1.1.0", "--timeout", "8")
    assert_aborted(stack, run, 4, before, stable, "the canary did not scale")
    assert time.monotonic() - started < 40, "waited past --timeout"


@pytest.mark.e2e
@pytest.mark.parametrize("ending", ["promoted", "aborted"])
def test_the_canary_keeps_its_pods_scale_down_delay_after_its_traffic_left(stack: Stack, ending: str) -> None:
    """Gateways and meshes apply a weight seconds late: the canary is deleted only
    scale_down_delay after the write that moved its traffic, and that write is not delayed."""
    quick_checks(stack)
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(
        path.read_text()
        + "strategy: {type: canary, traffic: gateway, route: model-api, steps: [{weight: 10, pause: 0.2}], "
        "scale_down_delay: 1.5}\n"
    )
    stack.kube.put(route("gateway"))
    first_release(stack, "gateway")
    moments: dict[str, float] = {}

    def when(event: str, obj: dict[str, Any]) -> None:
        route_weight = backend_weights(obj).get(f"{APP}-canary") if obj["kind"] == "HTTPRoute" else None
        if route_weight == 0 and "weighted" in moments and "left" not in moments:
            moments["left"] = time.monotonic()  # the write that takes its traffic away, after the step
        if obj["kind"] == "HTTPRoute" and backend_weights(obj).get(f"{APP}-canary") == 10:
            moments["weighted"] = time.monotonic()
            if ending == "aborted":
                stack.kube.proxy.apps.behaviours["v1.1.0"] = "broken_predict"
        if event == "DELETED" and obj["kind"] == "Deployment" and obj["metadata"]["name"] == f"{APP}-canary":
            moments["deleted"] = time.monotonic()

    stack.kube.observers.append(when)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == (0 if ending == "promoted" else 4), run.stderr
    assert moments["deleted"] - moments["left"] >= 1.5, moments
    assert "kept its pods 1.5 s after traffic left it" in run.stderr


def analysed(prometheus: PrometheusEmulator, interval: float, **limits: int) -> str:
    keys = "".join(f", {key}: {value}" for key, value in limits.items())
    query = f"{{url: '{prometheus.url}', query: '{QUERY}', max: 0.01}}"
    return f"{{interval: {interval}{keys}, prometheus: {query}}}"


@pytest.mark.e2e
def test_tolerated_failures_and_errors_are_recorded_and_the_canary_promoted(
    stack: Stack, prometheus: PrometheusEmulator
) -> None:
    canary(
        stack,
        "gateway",
        "[{weight: 10, pause: 1}]",
        analysed(prometheus, 0.2, failure_limit=2, error_limit=1),
    )
    first_release(stack, "gateway")
    prometheus.answers["canary"] = ["error", 0.5, (float("nan"), 0.001), 0.001]
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    entries = json.loads(run.stdout)["analysis"]
    verdicts = [e["verdict"] for e in entries]
    assert verdicts[:3] == ["error", "fail", "no-data"] and set(verdicts[3:]) == {"pass"}, verdicts
    assert len(verdicts) >= 4 and {e["step"] for e in entries} == {1}
    assert [e["value"] for e in entries[:4]] == [None, 0.5, None, 0.001]
    assert "tolerated" in run.stderr
    assert stable_tag(stack) == "v1.1.0"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("answers", "limits", "words"),
    [
        (
            [0.5, None],
            {"failure_limit": 1},
            "no data (no series matched): not a pass (2 failed evaluations, failure_limit 1)",
        ),
        (["error", "error", "error"], {"error_limit": 2}, "3 query errors in a row, error_limit 2"),
        (["error"], {"error_limit": 9}, "no analysis evaluation passed in the step"),
    ],
    ids=["failures", "errors", "unproven"],
)
def test_beyond_its_limits_the_analysis_aborts_the_canary(
    stack: Stack, prometheus: PrometheusEmulator, answers: list[Any], limits: dict[str, int], words: str
) -> None:
    canary(stack, "gateway", "[{weight: 10, pause: 0.8}]", analysed(prometheus, 0.2, **limits))
    first_release(stack, "gateway")
    stable, before = stable_changes(stack), generation(stack)
    prometheus.answers["canary"] = answers
    run = deploy(stack, "v1.1.0")
    assert_aborted(stack, run, 4, before, stable, "step 1 (10 %): ", words)
    failed = json.loads(run.stdout)
    assert failed["analysis"] and all(e["step"] == 1 for e in failed["analysis"])


@pytest.mark.e2e
def test_the_first_evaluation_comes_one_interval_after_the_weight_is_written(
    stack: Stack, prometheus: PrometheusEmulator
) -> None:
    """Metrics need time to show a new weight: a query at once would judge the old one."""
    canary(
        stack, "gateway", "[{weight: 10, pause: 0.1}, {weight: 50, pause: 0.1}]", analysed(prometheus, 0.6)
    )
    first_release(stack, "gateway")
    written: list[tuple[int, float]] = []

    def when(event: str, obj: dict[str, Any]) -> None:
        if obj["kind"] == "HTTPRoute" and set(weights := backend_weights(obj)) == {
            f"{APP}-stable",
            f"{APP}-canary",
        }:
            written.append((weights[f"{APP}-canary"], time.time()))

    stack.kube.observers.append(when)
    prometheus.answers["canary"] = 0.001
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    at: dict[int, float] = {}
    for weight, moment in written:  # the write itself, not the gateway's status writes after it
        at.setdefault(weight, moment)
    # each step held one interval (0.6 s), not its 0.1 s pause, and was evaluated once at its end
    assert len(prometheus.asked_at) == 2, prometheus.asked_at
    assert prometheus.asked_at[0] - at[10] >= 0.6 and prometheus.asked_at[1] - at[50] >= 0.6
    assert at[50] > prometheus.asked_at[0]


APPROVAL_STEPS = "[{weight: 10, pause: 0.2}, {weight: 50, pause: approval}, {weight: 80, pause: 0.2}]"


@dataclass(frozen=True)
class Approval:
    """A canary that waits for approval, as each traffic mode writes it."""

    steps: str
    step: int  # the step it waits at
    weight: int  # that step's weight
    share: int  # the canary's share there, as read back (replicas: its share of the pods)
    paused: list[int]  # the writes up to the pause
    promoted: list[int]  # the writes `promote` adds


APPROVALS = {
    "gateway": Approval(APPROVAL_STEPS, 2, 50, 50, [0, 10, 50], [80, 0]),
    "istio": Approval(APPROVAL_STEPS, 2, 50, 50, [0, 10, 50], [80, 0]),
    # Two stable pods: 40 % is one canary pod (33 %), 100 % two (50 %).
    "replicas": Approval(
        "[{weight: 40, pause: approval}, {weight: 100, pause: 0.2}]", 1, 40, 33, [0, 33], [50, 0]
    ),
}  # fmt: skip


def paused_canary(stack: Stack, traffic: str) -> tuple[Approval, list[int], list[int], int]:
    """v1.0.0 stable, then v1.1.0 deployed to its approval step: the approval expected, the
    weights written, the stable Deployment's changes and its generation before."""
    approval = APPROVALS[traffic]
    canary(stack, traffic, approval.steps)
    writes = first_release(stack, traffic)
    stable, before = stable_changes(stack), generation(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["outcome"], result["step"], result["weight"]) == ("paused", approval.step, approval.weight)
    assert writes == approval.paused and stable == []
    return approval, writes, stable, before


@pytest.mark.e2e
@pytest.mark.parametrize("traffic", TRAFFIC)
def test_an_approval_step_pauses_and_promote_goes_on_to_the_next_step(stack: Stack, traffic: str) -> None:
    approval, writes, stable, before = paused_canary(stack, traffic)
    assert github_statuses(stack)[-1] == f"canary {approval.weight} %, waiting for approval"
    assert stack.kube.get("Lease", NS, "releasegate-model-api") is None
    refused = deploy(stack, "v1.2.0")
    assert refused.exit_code == 3 and f"v1.1.0 is paused in nonprod (step {approval.step}" in refused.stderr
    status = stack.releasegate("status", "--env", "nonprod")
    assert f"canary weight: {approval.share} %" in status.stdout and "PAUSED" in status.stdout, status.stdout
    promoted = stack.releasegate("--json", "promote", "--env", "nonprod")
    assert promoted.exit_code == 0, promoted.stderr
    assert json.loads(promoted.stdout)["outcome"] == "promoted"
    assert writes == approval.paused + approval.promoted
    assert stable == [before + 1] and stable_tag(stack) == "v1.1.0"
    assert github_statuses(stack)[-2:-1] == ["promoted"]
    again = stack.releasegate("promote", "--env", "nonprod")
    assert again.exit_code == 3 and "nothing is paused" in again.stderr


@pytest.mark.e2e
@pytest.mark.parametrize("traffic", TRAFFIC)
def test_abort_while_paused_puts_traffic_back_and_exits_4(stack: Stack, traffic: str) -> None:
    approval, writes, stable, before = paused_canary(stack, traffic)
    aborted = stack.releasegate("--json", "abort", "--env", "nonprod")
    assert_aborted(stack, aborted, 4, before, stable, "v1.1.0 was aborted in nonprod; v1.0.0 keeps serving")
    assert json.loads(aborted.stdout)["outcome"] == "aborted"
    assert writes == [*approval.paused, 0]
    assert history(stack)[:2] == [("v1.1.0", "aborted"), ("v1.0.0", "deployed")]
    assert stack.releasegate("abort", "--env", "nonprod").exit_code == 3


@pytest.mark.e2e
@pytest.mark.parametrize("failing", ["smoke", "analysis"])
def test_an_approval_step_is_checked_before_it_stops(
    stack: Stack, prometheus: PrometheusEmulator, failing: str
) -> None:
    """It once wrote the weight and stopped: half the users on a release nothing had checked."""
    canary(stack, "gateway", "[{weight: 50, pause: approval}]", analysed(prometheus, 0.3))
    prometheus.answers["canary"] = 0.5 if failing == "analysis" else 0.001
    writes = first_release(stack, "gateway")
    if failing == "smoke":
        break_at(stack, writes, 2)  # from the approval step's weight on
    stable, before = stable_changes(stack), generation(stack)
    run = deploy(stack, "v1.1.0")
    said = "analysis 0.5 is above max 0.01" if failing == "analysis" else "smoke check 'sample prediction'"
    assert_aborted(stack, run, 4, before, stable, "step 1 (50 %): ", said)
    assert writes == [0, 50, 0] and history(stack)[1] == ("v1.1.0", "failed")


@pytest.mark.e2e
def test_an_approval_step_that_passed_its_interval_is_recorded_paused(
    stack: Stack, prometheus: PrometheusEmulator
) -> None:
    canary(
        stack,
        "gateway",
        "[{weight: 50, pause: approval}, {weight: 100, pause: 0.3}]",
        analysed(prometheus, 0.3),
    )
    prometheus.answers["canary"] = 0.001
    first_release(stack, "gateway")
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert (result["outcome"], result["step"]) == ("paused", 1)
    assert [(e["step"], e["verdict"]) for e in result["analysis"]] == [
        (1, "pass")
    ]  # one interval, then it stops
    promoted = stack.releasegate("--json", "promote", "--env", "nonprod")
    assert promoted.exit_code == 0, promoted.stderr
    steps = [e["step"] for e in json.loads(promoted.stdout)["analysis"]]
    assert steps[0] == 1 and 2 in steps  # checked once more on approval, then step 2


def autoscaled_counts(stack: Stack, writes: list[int]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(weight, count) each time the canary's count changed, and the stable's at each weight
    write; the load on the stable falls to one pod's worth once the canary takes 50 %."""
    canary_counts: list[tuple[int, int]] = []
    stable_counts: list[tuple[int, int]] = []

    def watch(event: str, obj: dict[str, Any]) -> None:
        weight = writes[-1] if writes else 0
        if obj["kind"] == "HTTPRoute" and len(stable_counts) < len(writes):  # a weight write
            stable_counts.append((weight, stack.kube.get("Deployment", NS, APP)["spec"]["replicas"]))
        if obj["kind"] == "Deployment" and event != "DELETED" and obj["metadata"]["name"] == f"{APP}-canary":
            count = int(obj["spec"].get("replicas", 1))
            if not canary_counts or canary_counts[-1][1] != count:
                canary_counts.append((weight, count))
        if weight == 50 and stack.kube.autoscalers.wanted.get((NS, APP)) != 1:
            stack.kube.autoscalers.want(NS, APP, 1)

    stack.kube.observers.append(watch)
    return canary_counts, stable_counts


@pytest.mark.e2e
@pytest.mark.parametrize("ending", ["promoted", "aborted"])
def test_the_canary_is_sized_to_its_share_and_the_stable_autoscaler_held(stack: Stack, ending: str) -> None:
    """nonprod autoscales (2 to 4 pods); the load has the stable at 4 when the deploy starts.
    The canary once ran a fixed 2 pods at every weight, and the stable autoscaler shrank the
    stable to 2 as traffic left it, so an abort landed everyone on half the pods."""
    canary(
        stack, "gateway", "[{weight: 10, pause: 0.2}, {weight: 50, pause: 0.5}, {weight: 100, pause: 0.2}]"
    )
    writes = first_release(stack, "gateway")
    stack.kube.autoscalers.want(NS, APP, 4)
    assert stack.kube.get("Deployment", NS, APP)["spec"]["replicas"] == 4
    canary_counts, stable_counts = autoscaled_counts(stack, writes)
    if ending == "aborted":
        break_at(stack, writes, 4)  # at 100 %
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == (0 if ending == "promoted" else 4), run.stderr
    # ceil(4 x w / 100): one pod to test at 0 % and at 10 %, two at 50 %, four at 100 %
    assert canary_counts == [(0, 1), (10, 2), (50, 4)], canary_counts
    # the stable held at 4 through every weight write, the last one (all back on it) too
    assert [weight for weight, _ in stable_counts] == [0, 10, 50, 100, 0] and {
        c for _, c in stable_counts
    } == {4}
    hpa = stack.kube.get("HorizontalPodAutoscaler", NS, APP)
    assert hpa["spec"]["minReplicas"] == 2  # the autoscaler's own minimum back
    assert "releasegate.dev/held-min-replicas" not in (hpa["metadata"].get("annotations") or {})
    assert stack.kube.get("Deployment", NS, APP)["spec"]["replicas"] == 2  # and the load's count with it


@pytest.mark.e2e
def test_with_traffic_replicas_the_canary_is_never_applied_at_the_stables_size(stack: Stack) -> None:
    """Two stable pods, 40 %: one canary pod from the start. It was once applied with two (the
    stable's count) and scaled down at the step: for a moment it carried half the traffic."""
    canary(stack, "replicas", "[{weight: 40, pause: 0.2}]")
    first_release(stack, "replicas")
    counts: list[int] = []

    def watch(event: str, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == f"{APP}-canary" and event != "DELETED":
            counts.append(int(obj["spec"].get("replicas", 1)))

    stack.kube.observers.append(watch)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert counts and set(counts) == {1}, counts


@pytest.mark.e2e
def test_the_pauses_come_on_top_of_the_timeout(stack: Stack) -> None:
    """--timeout bounds each wait for pods, not the whole run: 4 s of pause beside --timeout 3
    was once refused before any change."""
    canary(stack, "gateway", "[{weight: 10, pause: 4}]")
    first_release(stack, "gateway")
    started = time.monotonic()
    run = deploy(stack, "v1.1.0", "--timeout", "3")
    assert run.exit_code == 0, run.stderr
    assert time.monotonic() - started > 4 and stable_tag(stack) == "v1.1.0"


@pytest.mark.e2e
def test_a_canary_re_scaled_for_its_step_waits_no_longer_than_the_timeout(stack: Stack) -> None:
    """Its pods for 100 % start slowly: the wait for them is one wait for pods, bounded by
    --timeout, however long the pauses before it were."""
    canary(stack, "gateway", "[{weight: 10, pause: 2}, {weight: 100, pause: 0.2}]")
    writes = first_release(stack, "gateway")
    stable, before = stable_changes(stack), generation(stack)

    def slow_from_step_1(event: str, obj: dict[str, Any]) -> None:
        if writes and writes[-1] == 10:  # pods made from now on take 30 s to become Ready
            stack.kube.controller.scenarios["v1.1.0"] = "slow"

    stack.kube.controller.slow_seconds = 30
    stack.kube.observers.append(slow_from_step_1)
    started = time.monotonic()
    run = deploy(stack, "v1.1.0", "--timeout", "4")
    assert_aborted(stack, run, 4, before, stable, "the canary did not scale")
    assert writes == [0, 10, 0] and time.monotonic() - started < 20


MID_PAUSE = "step 1/1 · canary 50 %"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("traffic", "sent"),
    [(traffic, signal.SIGINT) for traffic in TRAFFIC] + [("gateway", signal.SIGTERM)],
    ids=[*TRAFFIC, "gateway-SIGTERM"],
)
def test_an_interrupt_mid_pause_puts_traffic_back_and_exits_130(
    stack: Stack, traffic: str, sent: int
) -> None:
    canary(stack, traffic, "[{weight: 50, pause: 60}]")
    writes = first_release(stack, traffic)
    stable, before = stable_changes(stack), generation(stack)
    stack.publish("v1.1.0")
    run = interrupted_deploy(stack, "v1.1.0", when=lambda line: MID_PAUSE in line, sent=sent)
    assert_aborted(stack, run, 130, before, stable, "interrupted while deploying v1.1.0")
    assert writes[-1] == 0 and max(writes) > 0
    assert history(stack)[:2] == [("v1.0.0", "deployed"), ("v1.1.0", "interrupted")]


@pytest.mark.e2e
def test_recover_after_a_killed_canary_puts_traffic_back_on_stable(stack: Stack) -> None:
    """A cancelled Actions run kills the deploy mid-pause (no chance to put anything back); the
    workflow's `if: cancelled()` step runs `releasegate recover` in the same run."""
    canary(stack, "gateway", "[{weight: 50, pause: 60}]")
    writes = first_release(stack, "gateway")
    stable, before = stable_changes(stack), generation(stack)
    stack.publish("v1.1.0")
    same_run = {"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1"}
    killed = interrupted_deploy(stack, "v1.1.0", lambda line: MID_PAUSE in line, signal.SIGKILL, **same_run)
    assert killed.exit_code == -signal.SIGKILL and writes == [0, 50]  # the canary still has 50 %
    assert stack.kube.get("Deployment", NS, f"{APP}-canary") is not None
    recovered = stack.releasegate("recover", "--env", "nonprod", **same_run)
    assert recovered.exit_code == 0, recovered.stderr
    assert "v1.0.0 was restored" in recovered.stdout
    assert "stable 100 % / canary 0 %" in recovered.stderr
    assert "model-api-canary and its disruption budget deleted" in recovered.stderr
    assert writes == [0, 50, 0]
    assert_aborted(stack, recovered, 0, before, stable)
    assert history(stack)[:2] == [("v1.0.0", "deployed"), ("v1.1.0", "interrupted")]


@pytest.mark.e2e
def test_recover_after_a_killed_promote_puts_traffic_back_on_stable(stack: Stack) -> None:
    """The canary workflow's promote cancelled and killed mid-pause, then its `if: cancelled()`
    step: the release is unfinished work, not still paused at the step it had left."""
    canary(stack, "gateway", "[{weight: 10, pause: approval}, {weight: 50, pause: 60}]")
    writes = first_release(stack, "gateway")
    stable, before = stable_changes(stack), generation(stack)
    assert deploy(stack, "v1.1.0").exit_code == 0 and writes == [0, 10]
    same_run = {"GITHUB_RUN_ID": "4343", "GITHUB_RUN_ATTEMPT": "1"}
    mid_pause = "step 2/2 · canary 50 %"
    killed = interrupted(
        stack, ["promote", "--env", "nonprod"], lambda line: mid_pause in line, signal.SIGKILL, **same_run
    )
    assert killed.exit_code == -signal.SIGKILL and writes == [0, 10, 50]
    assert history(stack)[0] == ("v1.1.0", "pending")
    recovered = stack.releasegate("recover", "--env", "nonprod", **same_run)
    assert recovered.exit_code == 0, recovered.stderr
    assert "v1.1.0 did not finish; v1.0.0 was restored" in recovered.stdout
    assert writes == [0, 10, 50, 0]
    assert_aborted(stack, recovered, 0, before, stable)
    assert history(stack)[:2] == [("v1.0.0", "deployed"), ("v1.1.0", "interrupted")]
    assert stack.releasegate("abort", "--env", "nonprod").exit_code == 3  # nothing paused any more


def accepted_now(obj: dict[str, Any]) -> bool:
    """The gateway has reported on this generation of the route, and accepted it."""
    parents = (obj.get("status") or {}).get("parents") or []
    conditions = [c for p in parents for c in p["conditions"]]
    generation = obj["metadata"].get("generation")
    return bool(conditions) and all(
        c["status"] == "True" and c.get("observedGeneration") == generation for c in conditions
    )


@pytest.mark.e2e
def test_a_route_its_gateway_does_not_accept_is_refused_before_any_change(stack: Stack) -> None:
    canary(stack, "gateway")
    first_release(stack, "gateway")
    stack.kube.gateway.set_behaviour("not_allowed")
    time.sleep(0.3)  # the gateway's report lands
    changes = len([r for r in stack.kube.writes() if "/leases" not in r.path])
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 3, run.stderr
    assert "HTTPRoute model-api in model-api-nonprod is not accepted by its gateway" in run.last_line
    assert "Accepted is False (NotAllowedByListeners" in run.last_line and "allowedRoutes" in run.stderr
    assert len([r for r in stack.kube.writes() if "/leases" not in r.path]) == changes


@pytest.mark.e2e
def test_a_route_the_gateway_stops_accepting_mid_step_aborts_the_canary(
    stack: Stack, prometheus: PrometheusEmulator
) -> None:
    canary(stack, "gateway", "[{weight: 10, pause: 2}]", analysed(prometheus, 0.2))
    prometheus.answers["canary"] = 0.001
    writes = first_release(stack, "gateway")
    stable, before = stable_changes(stack), generation(stack)

    def listener_changed(event: str, obj: dict[str, Any]) -> None:
        if obj["kind"] == "HTTPRoute" and writes[-1:] == [10] and accepted_now(obj) and not breaking:
            # Once releasegate has seen the step accepted (it reads every 0.25 s), a listener
            # stops admitting the route.
            breaking.append(threading.Timer(0.6, stack.kube.gateway.set_behaviour, args=("not_allowed",)))
            breaking[0].start()

    breaking: list[threading.Timer] = []

    stack.kube.observers.append(listener_changed)
    run = deploy(stack, "v1.1.0")
    assert_aborted(
        stack, run, 4, before, stable, "step 1 (10 %): HTTPRoute model-api is not served as written",
    )  # fmt: skip
    assert writes == [0, 10, 0]


@pytest.mark.e2e
@pytest.mark.parametrize("behaviour", ["accepted", "no_generation"])
def test_each_weight_waits_for_the_gateway_to_report_on_it(stack: Stack, behaviour: str) -> None:
    """The gateway reports a second after a change: the checks at a weight start only once it
    has reported on that generation of the route. An implementation that writes no
    observedGeneration (linkerd2#14964) is taken at its word: nothing to wait for."""
    canary(stack, "gateway", "[{weight: 10, pause: 0.2}, {weight: 50, pause: 0.2}]")
    first_release(stack, "gateway")
    stack.kube.gateway.delay = 1.0
    stack.kube.gateway.set_behaviour(behaviour)
    time.sleep(1.3)  # its report on the route as it is now has landed
    written: dict[int, tuple[int, float]] = {}  # canary weight -> (generation, when written)
    reported: dict[int, float] = {}  # generation -> when the gateway first reported on it

    def watch(event: str, obj: dict[str, Any]) -> None:
        if obj["kind"] != "HTTPRoute" or event == "DELETED":
            return
        generation = obj["metadata"]["generation"]
        weight = backend_weights(obj).get(f"{APP}-canary")
        if weight is not None and weight not in written:
            written[weight] = (generation, time.perf_counter())
        seen = {
            c.get("observedGeneration")
            for p in (obj.get("status") or {}).get("parents") or []
            for c in p["conditions"]
        }
        if generation in seen:
            reported.setdefault(generation, time.perf_counter())

    stack.kube.observers.append(watch)
    calls_before = len(stack.kube.proxy.apps.calls)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    calls = [c for c in stack.kube.proxy.apps.calls[calls_before:] if c.pod.startswith(f"{APP}-canary")]
    for weight in (10, 50):
        generation, at = written[weight]
        first_check = min(c.at for c in calls if c.at > at)
        if behaviour == "accepted":
            assert first_check > reported[generation] > at, (weight, first_check, reported, at)
        else:
            assert first_check < at + 1.0 and generation not in reported


@pytest.mark.e2e
@pytest.mark.parametrize("traffic", ["gateway", "istio"])
def test_a_missing_route_is_refused_before_any_change(stack: Stack, traffic: str) -> None:
    canary(stack, traffic, with_route=False)
    run = deploy(stack, "v1.0.0")
    assert run.exit_code == 3, run.stderr
    kind = "HTTPRoute" if traffic == "gateway" else "VirtualService"
    assert f"{kind} model-api" in run.last_line and "does not exist" in run.last_line
    assert stack.kube.writes() == []
    stack.kube.uninstalled.add(kind)
    missing = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0")
    assert missing.exit_code == 3 and f"{kind} is not installed" in missing.last_line


@pytest.mark.e2e
def test_amazon_managed_prometheus_is_queried_with_sigv4(
    stack: Stack, prometheus: PrometheusEmulator
) -> None:
    """AMP refuses unsigned queries: with sigv4: true each is signed with boto3's credentials."""
    from tests.emulators.ecr import CREDENTIALS

    prometheus.sigv4 = {k: CREDENTIALS[k] for k in ("aws_access_key_id", "aws_secret_access_key")}
    prometheus.answers["canary"] = 0.001
    url = f"{prometheus.url}/workspaces/ws-0123"
    analysis = f"{{interval: 0.1, prometheus: {{url: '{url}', sigv4: true, query: '{QUERY}', max: 0.01}}}}"
    canary(stack, "gateway", analysis=analysis)
    first_release(stack, "gateway")
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert "analysis 0.001 ≤ 0.01" in run.stderr
    signed = [r for r in prometheus.requests if r.path.endswith("/api/v1/query")]
    assert signed and all(r.headers["authorization"].startswith("AWS4-HMAC-SHA256 ") for r in signed)
    assert_lock_released_and_no_secret(stack, run)
    prometheus.sigv4 = {**prometheus.sigv4, "aws_secret_access_key": "another"}  # credentials AMP rejects
    refused = deploy(stack, "v1.2.0")
    assert refused.exit_code == 4 and "the analysis query failed: 403" in refused.stderr
