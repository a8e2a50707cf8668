"""The pipeline on the real tier: the real CLI as the deployer identity, real skaffold and kubectl,
a real API server, controllers and scheduler, kwok's kubelets. Mirrors tests/test_e2e.py."""

from __future__ import annotations

import json
import time

import pytest

from tests.test_e2e import assert_one_line_failure
from tests.test_smoke import quick_checks

from .stack import RealStack

pytestmark = pytest.mark.real


def ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def test_deploy_pins_the_digest_and_proves_pods_ready(real: RealStack) -> None:
    digest = real.publish("v1.4.2")
    run = real.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["outcome"] == "deployed" and result["pods_ready"] == "2/2", result
    deployment = real.deployment("nonprod")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == real.image(digest)
    pods = real.pods("nonprod")
    assert len(pods) == 2 and all(ready(p) for p in pods)
    assert real.serving_images("nonprod") == {real.image(digest)}
    # The smoke checks went through the real API server's service proxy to the pods.
    checked = {(c.method, c.path) for c in real.network.apps.calls}
    assert {("GET", "/health/ready"), ("POST", "/predict")} <= checked, checked
    assert [s["passed"] for s in result["smoke"]] == [True, True]
    said = {"skaffold": "skaffold |  - deployment.apps/model-api created",  # as the stand-in says
            "apply": "apply | Deployment/model-api created"}  # fmt: skip
    assert said[real.deployer] in run.stderr, run.stderr


def test_crash_loop_is_diagnosed_and_the_previous_release_restored(real: RealStack) -> None:
    good = real.publish("v1.0.0")
    bad = real.publish("v1.1.0")
    real.behave(bad, "crashloop")
    assert real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    run = real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0", "--timeout", "120")
    assert run.exit_code == 4, run.stderr
    assert_one_line_failure(run, "v1.1.0", "CrashLoopBackOff", "v1.0.0 was restored")
    # The diagnosis read the crashed container's log through the API server from the kubelet.
    assert "log: RuntimeError: MODEL_URI is not set" in run.stderr, run.stderr
    assert "event: BackOff: Back-off restarting failed container" in run.stderr
    assert real.serving_images("nonprod") == {real.image(good)}
    history = real.releasegate("--json", "history", "--env", "nonprod")
    outcomes = [(r["tag"], r["outcome"]) for r in json.loads(history.stdout)["history"]]
    assert outcomes[:3] == [("v1.0.0", "deployed"), ("v1.1.0", "failed"), ("v1.0.0", "deployed")], outcomes
    # The metrics read the same real ledger: the failure counted, and restored by the next record.
    found = deploys_measured(real)
    assert [(d["tag"], d["outcome"]) for d in found["deploys"]][-2:] == [
        ("v1.0.0", "deployed"),
        ("v1.1.0", "failed"),
    ]
    assert found["change_failure_rate"]["failed"] >= 1 and found["time_to_restore_hours"]["restored"] >= 1


def test_rollback_and_status_answer_from_the_cluster(real: RealStack) -> None:
    first = real.publish("v1.0.0")
    real.publish("v1.1.0")
    for tag in ("v1.0.0", "v1.1.0"):
        assert real.releasegate("deploy", "--env", "nonprod", "--tag", tag).exit_code == 0
    run = real.releasegate("rollback", "--env", "nonprod")
    assert run.exit_code == 0, run.stderr
    assert real.serving_images("nonprod") == {real.image(first)}
    status = real.releasegate("--json", "status", "--env", "nonprod")
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["tag"] == "v1.0.0", status.stdout
    outcomes = [(d["tag"], d["outcome"]) for d in deploys_measured(real)["deploys"]]
    assert outcomes[-2:] == [("v1.0.0", "deployed"), ("v1.1.0", "rolled-back")], outcomes


def deploys_measured(real: RealStack) -> dict:
    run = real.releasegate("--json", "metrics", "--env", "nonprod", "--since", "1d")
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


def test_each_pod_smoke_checks_reach_every_new_pod_through_the_pod_proxy(real: RealStack) -> None:
    quick_checks(real, each_pod=True)
    real.publish("v1.4.2")
    run = real.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    pods = {p["metadata"]["name"] for p in real.pods("nonprod")}
    assert {c.pod for c in real.network.apps.calls} == pods and len(pods) == 2
    assert len(json.loads(run.stdout)["smoke"]) == 4  # two checks for each of two pods


# The kubelet moves ErrImagePull to ImagePullBackOff within seconds, so either may be
# the state releasegate saw when it decided; both name the pull as the cause.
@pytest.mark.parametrize(
    ("scenario", "reasons"),
    [("pull_error", ("ErrImagePull", "ImagePullBackOff")), ("oom", ("OOMKilled",))],
    ids=["pull", "oom"],
)
def test_a_failing_pod_is_named_with_its_reason_and_the_previous_release_restored(
    real: RealStack, scenario: str, reasons: tuple[str, ...]
) -> None:
    good = real.publish("v1.0.0")
    real.behave(real.publish("v1.1.0"), scenario)
    assert real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    run = real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0", "--timeout", "120")
    assert run.exit_code == 4, run.stderr
    assert any(f": {reason}: " in run.stderr for reason in reasons), run.stderr
    assert_one_line_failure(run, "v1.1.0", "v1.0.0 was restored")
    assert real.serving_images("nonprod") == {real.image(good)}


def test_the_helm_chart_is_rendered_by_real_skaffold_and_helm_and_a_failure_restored(real: RealStack) -> None:
    """renderer: chart: skaffold's helm renderer runs the real helm on helm/, then applies."""
    real.describe_with_chart("nonprod")
    good = real.publish("v1.0.0")
    first = real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0")
    assert first.exit_code == 0, first.stderr
    assert real.serving_images("nonprod") == {real.image(good)}
    deployment = real.deployment("nonprod")
    assert deployment is not None
    assert deployment["metadata"]["labels"].get("helm.sh/chart", "").startswith("model-api-"), deployment
    real.behave(real.publish("v1.1.0"), "crashloop")
    run = real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0", "--timeout", "120")
    assert run.exit_code == 4, run.stderr
    assert_one_line_failure(run, "v1.1.0", "v1.0.0 was restored")
    assert real.serving_images("nonprod") == {real.image(good)}


def test_pods_no_node_can_hold_are_named_with_the_schedulers_message_and_undone(real: RealStack) -> None:
    """A values change asks for more CPU than the Node has: the real scheduler leaves the pod
    Pending; the restore renders v1.0.0 with the values it was deployed with, so it fits again."""
    good = real.publish("v1.0.0")
    assert real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    path = real.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text().replace("requests: {cpu: 250m,", 'requests: {cpu: "64",')
    path.write_text(text.replace('limits: {cpu: "1",', 'limits: {cpu: "64",') + "unschedulable_timeout: 5\n")
    real.publish("v1.1.0")
    started = time.monotonic()
    run = real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0", "--timeout", "120")
    assert run.exit_code == 4, run.stderr
    assert time.monotonic() - started < 60, "waited for --timeout, not unschedulable_timeout"
    assert "cannot be scheduled: 0/1 nodes are available: 1 Insufficient cpu." in run.stderr, run.stderr
    assert "(for 5 s: unschedulable_timeout)" in run.stderr
    assert "FailedScheduling: 0/1 nodes are available: 1 Insufficient cpu." in run.stderr, run.stderr
    assert "v1.0.0 is rendered with the values it was deployed with" in run.stderr
    assert_one_line_failure(run, "v1.1.0", "v1.0.0 was restored")
    assert real.serving_images("nonprod") == {real.image(good)}
    pods = real.pods("nonprod")
    assert all(ready(p) for p in pods) and len(pods) == 2
