"""``compare:`` through the real CLI against the emulators: the shipped requests replayed
through the API server's service proxy to the Service serving and to the candidate's, before
traffic moves (blue/green before the switch, canary at 0 %), and `releasegate compare`."""

from __future__ import annotations

import json

import pytest

from tests.emulators.stack import Stack
from tests.test_bluegreen import SLOT, bluegreen, deploy, selector, selector_changes, slot_image
from tests.test_canary import canary, weight_writes

NS = "model-api-nonprod"
COMPARE = """compare:
  requests_file: k8s/smoke/compare-requests.jsonl
  path: /predict
  field: predictions
  tolerance: 0.01
  min_agreement: 0.95
"""
SHIPPED = "k8s/smoke/compare-requests.jsonl"


def comparing(stack: Stack, extra: str = "") -> None:
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + COMPARE + extra)


def requests_sent(stack: Stack) -> dict[str, list[object]]:
    """The bodies each Service's pods got for POST /predict, by the pod's track or slot."""
    sent: dict[str, list[object]] = {}
    for call in stack.kube.proxy.apps.calls:
        if call.path == "/predict":
            pod = stack.kube.get("Pod", NS, call.pod)
            labels = pod["metadata"]["labels"] if pod else {}
            where = labels.get(SLOT) or labels.get("releasegate.dev/track")
            where = where or ("canary" if call.pod.startswith("model-api-canary-") else "?")  # deleted since
            sent.setdefault(where, []).append(call.body)
    return sent


def shipped_requests(stack: Stack) -> list[object]:
    return [json.loads(line) for line in (stack.project / SHIPPED).read_text().splitlines() if line.strip()]


@pytest.mark.e2e
def test_a_bluegreen_release_that_agrees_is_switched_with_the_comparison_in_its_result(stack: Stack) -> None:
    bluegreen(stack)
    comparing(stack)
    first = deploy(stack, "v1.0.0")
    assert first.exit_code == 0 and "nothing is live yet to compare" in first.stderr, first.stderr
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "nudged"  # within the tolerance
    stack.kube.proxy.apps.calls.clear()
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    found = result["compare"]
    requests = shipped_requests(stack)
    assert (found["requests"], found["agreed"], found["agreement"], found["disagreements"]) == (
        len(requests),
        len(requests),
        1.0,
        [],
    )
    assert set(found["p95_ms"]) == {"serving", "candidate"} and found["p95_ms"]["serving"] > 0
    sent = requests_sent(stack)
    smoke_body = json.loads((stack.project / "k8s/smoke/predict-request.json").read_text())
    assert sent["blue"] == requests  # the serving slot, in the file's order
    assert [b for b in sent["green"] if b != smoke_body] == requests
    stages = [s["name"] for s in result["stages"]]
    assert stages.index("preview") < stages.index("compare") < stages.index("switch")
    assert selector(stack)[SLOT] == "green"
    assert f"✓ compare  {len(requests)}/{len(requests)} answers agree (100%)" in run.stderr


@pytest.mark.e2e
def test_a_bluegreen_release_whose_answers_differ_never_takes_traffic(stack: Stack) -> None:
    bluegreen(stack)
    comparing(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "drifted"
    changes = selector_changes(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    last = run.last_line
    assert (
        "comparison with model-api failed: agreement 0.00 (0 of 10 answers) is below min_agreement 0.95"
        in last
    )
    assert f"first disagreement: request 0 (line 1 of {SHIPPED}): serving [2.55], candidate [3.05]" in last
    assert changes == [] and selector(stack)[SLOT] == "blue"  # traffic never moved
    assert slot_image(stack, "green")[1] == 0
    result = json.loads(run.stdout)
    assert result["compare"]["agreed"] == 0 and len(result["compare"]["disagreements"]) == 5
    assert result["compare"]["disagreements"][0] == {"index": 0, "serving": [2.55], "candidate": [3.05]}


@pytest.mark.e2e
def test_a_slower_candidate_is_refused_beyond_max_latency_increase(stack: Stack) -> None:
    bluegreen(stack)
    comparing(stack, "  max_latency_increase: 0.2\n")
    assert deploy(stack, "v1.0.0").exit_code == 0
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "slow"
    stack.kube.proxy.apps.slow_ms = 60
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "comparison with model-api failed: the candidate's p95" in run.last_line
    assert "(max_latency_increase 0.2)" in run.last_line
    found = json.loads(run.stdout)["compare"]
    assert found["agreed"] == found["requests"] and found["p95_ms"]["candidate"] >= 60


@pytest.mark.e2e
def test_a_canary_whose_answers_differ_is_aborted_at_zero_percent(stack: Stack) -> None:
    canary(stack, "gateway")
    comparing(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0  # straight to stable: nothing to compare
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "drifted"
    writes = weight_writes(stack, "gateway")
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "comparison with model-api-stable failed: agreement 0.00" in run.last_line
    assert max(writes, default=0) == 0  # the canary never took any traffic
    assert stack.kube.get("Deployment", NS, "model-api-canary") is None
    assert "stable" in requests_sent(stack) and "canary" in requests_sent(stack)


@pytest.mark.e2e
def test_a_canary_that_agrees_goes_on_to_its_steps(stack: Stack) -> None:
    canary(stack, "replicas")
    comparing(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["compare"]["agreement"] == 1.0 and result["outcome"] == "deployed"
    stages = [s["name"] for s in result["stages"]]
    assert stages.index("canary") < stages.index("compare") < stages.index("step 1")


@pytest.mark.e2e
def test_releasegate_compare_runs_against_a_paused_release(stack: Stack) -> None:
    bluegreen(stack, pause_before_switch="true")
    comparing(stack)
    nothing = stack.releasegate("compare", "--env", "nonprod")
    assert nothing.exit_code == 3 and "nothing is paused" in nothing.last_line
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert stack.releasegate("promote", "--env", "nonprod").exit_code == 0
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "nudged"
    assert json.loads(deploy(stack, "v1.1.0").stdout)["outcome"] == "paused"
    passed = stack.releasegate("--json", "compare", "--env", "nonprod")
    assert passed.exit_code == 0, passed.stderr
    assert json.loads(passed.stdout)["compare"]["agreement"] == 1.0
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "drifted"  # the same release, answering otherwise now
    failed = stack.releasegate("--json", "compare", "--env", "nonprod")
    assert (
        failed.exit_code == 4
        and "v1.1.0 (paused at before-switch): comparison with model-api failed" in failed.last_line
    )
    assert json.loads(failed.stdout)["compare"]["agreed"] == 0
    promoted = stack.releasegate("promote", "--env", "nonprod")  # promote compares again
    assert promoted.exit_code == 4 and "comparison with model-api failed" in promoted.last_line
    assert selector(stack)[SLOT] == "blue"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, f"compare.requests_file {SHIPPED} cannot be read (FileNotFoundError)"),
        ("\n\n", f"{SHIPPED} holds no requests"),
        ('{"inputs": [[1, 2]]}\n{"inputs": [[1, 2]\n', f"{SHIPPED} line 2 is not JSON"),
    ],
)
def test_a_requests_file_missing_empty_or_not_json_is_exit_2_before_any_change(
    stack: Stack, content: str | None, problem: str
) -> None:
    bluegreen(stack)
    comparing(stack)
    file = stack.project / SHIPPED
    if content is None:
        file.unlink()
    else:
        file.write_text(content)
    run = deploy(stack, "v1.0.0")
    assert run.exit_code == 2 and problem in run.last_line, run.stderr
    assert stack.kube.list("Deployment", NS) == []


def test_compare_with_a_rolling_environment_is_exit_2(stack: Stack) -> None:
    comparing(stack)
    run = stack.releasegate("check", "--env", "nonprod", "--tag", "v1.0.0")
    assert run.exit_code == 2 and "compare needs strategy bluegreen or canary" in run.last_line


def without_smoke_checks(stack: Stack) -> None:
    """Only the comparison talks to the pods: what it compares is all that judges the release."""
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text()
    start = text.index("smoke:\n")
    end = text.index("values:\n")
    path.write_text(text[:start] + text[end:])


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("scenario", "named"),
    [
        ("unreachable", "the API server cannot reach the pods behind"),
        ("wrong_path", "no request was answered by both models"),
    ],
)
def test_a_comparison_that_compared_nothing_blocks_the_release(
    stack: Stack, scenario: str, named: str
) -> None:
    """The API server's own 503 (its Status object) is no answer, and two 404s compared nothing:
    the release is not switched on a comparison in which no request reached both models."""
    bluegreen(stack)
    comparing(stack)
    without_smoke_checks(stack)
    assert deploy(stack, "v1.0.0").exit_code == 0
    if scenario == "unreachable":
        stack.kube.proxy.apps.unreachable = True
    else:
        path = stack.project / "k8s" / "environments" / "nonprod.yaml"
        path.write_text(path.read_text().replace("  path: /predict\n", "  path: /v2/predict\n"))
    changes = selector_changes(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "comparison with model-api failed" in run.last_line and named in run.last_line, run.last_line
    assert changes == [] and selector(stack)[SLOT] == "blue"  # traffic never moved
    found = json.loads(run.stdout)["compare"]
    if scenario == "unreachable":  # the API server's answers never agree
        assert found["agreed"] == 0 and found["agreement"] == 0.0, found
        first = found["disagreements"][0]
        assert first["serving"]["api_server"].startswith("error trying to reach service"), first
        assert "EKS: allow the cluster security group" in run.last_line
    else:  # two equal 404s agree (the same refusal), yet nothing was compared
        assert found["agreed"] == found["requests"] == 10, found
        assert "every request was answered 404 by both" in run.last_line
        assert "check compare.path (/v2/predict)" in run.last_line
