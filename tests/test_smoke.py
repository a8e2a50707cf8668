"""Smoke checks: the pure verdict on one answer, and the whole stage through the real CLI
against the Kubernetes emulator's service proxy and its fake model-serving application."""

from __future__ import annotations

import json

import pytest

from releasegate.core.config import SmokeCheck
from releasegate.kube.smoke import judge
from tests.emulators.stack import Stack

NS = "model-api-nonprod"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@{}"
RESET = b'{"message": "error trying to reach service: read tcp 1:2->3:4: read: connection reset by peer"}'


@pytest.mark.parametrize(
    ("check", "status", "body", "ms", "problem"),
    [
        (SmokeCheck("h", "/health"), 200, b"{}", 5, ""),
        (SmokeCheck("h", "/health"), 503, b"{}", 5, "answered 503, expected 200"),
        (SmokeCheck("h", "/health", max_ms=100), 200, b"{}", 150, "took 150 ms, more than max_ms 100"),
        (SmokeCheck("p", "/p", expect_json={"model": "m"}), 200, b"<html>", 5, "not JSON"),
        (SmokeCheck("p", "/p", expect_json={"model": "m"}), 200, b'{"model": "x"}', 5, 'model is "x"'),
        (SmokeCheck("p", "/p", expect_json={"a": {"b": 1}}), 200, b'{"a": {"b": 1, "c": 2}}', 5, ""),
        (SmokeCheck("p", "/p", expect_json={"a": {"b": 1}}), 200, b'{"a": {}}', 5, "the answer has no a.b"),
        (SmokeCheck("h", "/h"), 503, b'{"message": "error trying to reach service: dial tcp"}', 5,
         "error trying to reach service"),
        (SmokeCheck("h", "/h"), 503, RESET, 5, "reach service (503, connection reset by the pod)"),
    ],
)  # fmt: skip
def test_judge(check: SmokeCheck, status: int, body: bytes, ms: int, problem: str) -> None:
    found = judge(check, status, body, ms)
    assert (found == "") if not problem else (problem in found), found


def quick_checks(stack: Stack, env: str = "nonprod", each_pod: bool = False) -> None:
    """Two tries, no wait: a failing check fails in a second, not in 90."""
    path = stack.project / "k8s" / "environments" / f"{env}.yaml"
    text = path.read_text().replace("attempts: 30", "attempts: 2").replace("interval: 3 ", "interval: 0 ")
    if each_pod:
        text = text.replace("  checks:\n", "  each_pod: true\n  checks:\n", 1)
    path.write_text(text)


def serving(stack: Stack) -> str:
    return stack.kube.get("Deployment", NS, "model-api")["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.mark.e2e
def test_a_release_passes_its_smoke_checks_through_the_service_proxy(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert [(c["name"], c["passed"], c["status"], c["attempts"]) for c in result["smoke"]] == [
        ("health", True, 200, 1), ("sample prediction", True, 200, 1)
    ]  # fmt: skip
    assert all(isinstance(c["ms"], int) for c in result["smoke"])
    calls = [(c.method, c.path) for c in stack.kube.proxy.apps.calls]
    assert calls == [("GET", "/health/ready"), ("POST", "/predict")]
    sent = json.loads((stack.project / "k8s" / "smoke" / "predict-request.json").read_text())
    assert stack.kube.proxy.apps.calls[1].body == sent
    assert "✓ smoke" in run.stderr


@pytest.mark.e2e
def test_a_check_failing_only_on_the_new_release_restores_the_previous_one(stack: Stack) -> None:
    quick_checks(stack)
    good = stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    stack.publish("v1.1.0")
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "broken_predict"
    run = stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 4, run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert "smoke check 'sample prediction' failed after 2 tries: POST /predict" in last
    assert "answered 500, expected 200" in last and "v1.0.0 was restored and verified" in last
    assert serving(stack) == IMAGE.format(good)
    failed = json.loads(run.stdout)
    assert [(c["name"], c["passed"]) for c in failed["smoke"]] == [
        ("health", True),
        ("sample prediction", False),
    ]


@pytest.mark.e2e
def test_a_check_slower_than_max_ms_fails_the_release(stack: Stack) -> None:
    quick_checks(stack)
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    stack.publish("v1.1.0")
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "slow"
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text().replace("max_ms: 2000", "max_ms: 100"))
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "more than max_ms 100" in run.last_line and "sample prediction" in run.last_line


@pytest.mark.e2e
def test_smoke_checks_what_serves_now(stack: Stack) -> None:
    quick_checks(stack)
    stack.publish("v1.4.2")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 0
    run = stack.releasegate("smoke", "--env", "nonprod")
    assert run.exit_code == 0, run.stderr
    assert "2 smoke checks passed in nonprod" in run.stdout
    stack.kube.proxy.apps.behaviours["v1.4.2"] = "unhealthy"
    failing = stack.releasegate("smoke", "--env", "nonprod")
    assert failing.exit_code == 5
    assert "smoke check 'health' failed after 2 tries" in failing.last_line and "Next: " in failing.last_line
    writes_before = len(stack.kube.writes())
    stack.releasegate("smoke", "--env", "nonprod")
    assert len(stack.kube.writes()) == writes_before  # `smoke` changes nothing


@pytest.mark.e2e
def test_each_pod_finds_the_one_bad_pod(stack: Stack) -> None:
    quick_checks(stack, each_pod=True)
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    bad = stack.kube.list("Pod", NS)[1]["metadata"]["name"]
    stack.kube.proxy.apps.behaviours[bad] = "unhealthy"
    run = stack.releasegate("smoke", "--env", "nonprod")
    assert run.exit_code == 5, run.stderr
    assert f"via pod {bad}:8000" in run.last_line


def deployed_with_quick_checks(stack: Stack) -> None:
    quick_checks(stack)
    stack.publish("v1.4.2")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 0


@pytest.mark.e2e
def test_a_control_plane_that_cannot_reach_the_pods_is_said_as_such(stack: Stack) -> None:
    deployed_with_quick_checks(stack)
    stack.kube.proxy.apps.unreachable = True
    run = stack.releasegate("smoke", "--env", "nonprod")
    assert run.exit_code == 5
    assert "the API server cannot reach the pods" in run.last_line and "not the release" in run.last_line
    assert "security group" in run.last_line
    assert len(stack.kube.proxy.apps.calls) == 2  # from the deploy; none answered while unreachable


@pytest.mark.e2e
def test_istio_strict_mtls_is_named_as_the_cause_not_the_security_group(stack: Stack) -> None:
    """istio#27169: the sidecar resets the API server's plaintext; the network is fine."""
    deployed_with_quick_checks(stack)
    stack.kube.proxy.apps.mtls_strict = True
    run = stack.releasegate("smoke", "--env", "nonprod")
    assert run.exit_code == 5
    assert "STRICT mTLS" in run.last_line and "PeerAuthentication" in run.last_line, run.last_line
    assert "security group" not in run.last_line


@pytest.mark.e2e
def test_a_dry_run_names_the_smoke_checks_it_would_run(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "then smoke checks: health (GET /health/ready), sample prediction (POST /predict)" in run.stdout
    assert stack.kube.writes() == []  # it reads, to say what pruning would delete
