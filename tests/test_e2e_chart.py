"""End to end with the Helm chart: the real CLI, the real helm binary, the skaffold stand-in
rendering the profile's helm release, and the emulators. One pipeline, two renderers: the
ledger, the lock, verification and rollback behave as on the template path."""

from __future__ import annotations

import json

import pytest

from tests.emulators.stack import Stack

pytestmark = pytest.mark.e2e
NS = "model-api-nonprod"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api"


@pytest.fixture
def chart_stack(stack: Stack) -> Stack:
    stack.describe_with_chart("nonprod")
    return stack


def live(stack: Stack) -> dict:
    return stack.kube.get("Deployment", NS, "model-api")


def live_image(stack: Stack) -> str:
    return live(stack)["spec"]["template"]["spec"]["containers"][0]["image"]


def test_chart_deploy_pins_the_digest_and_proves_pods_ready(chart_stack: Stack) -> None:
    digest = chart_stack.publish("v1.4.2")
    run = chart_stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    assert "v1.4.2 is live in nonprod (2/2 pods Ready)" in run.stdout
    assert "objects from the chart in helm/" in run.stderr
    deployment = live(chart_stack)
    assert live_image(chart_stack) == f"{REGISTRY}@{digest}"
    # Skaffold rendered it from the chart: helm's own labels are on the live object.
    assert deployment["metadata"]["labels"]["helm.sh/chart"] == "model-api-1.0.0"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.4.2"
    for kind in ("Service", "ServiceAccount", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert chart_stack.kube.get(kind, NS, "model-api")["metadata"]["labels"]["helm.sh/chart"]
    history = json.loads(chart_stack.releasegate("--json", "history", "--env", "nonprod").stdout)["history"]
    assert [(r["tag"], r["outcome"]) for r in history] == [("v1.4.2", "deployed")]
    assert chart_stack.files_left_behind() == []  # the values file given to helm is removed


def test_chart_dry_run_writes_the_release_values_and_changes_nothing(chart_stack: Stack) -> None:
    digest = chart_stack.publish("v1.4.2")
    run = chart_stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.4.2", "--dry-run")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert "--profile" in result["skaffold"] and "nonprod-chart" in result["skaffold"]
    values = chart_stack.project / "build" / "nonprod" / "release-values.json"
    assert str(values) in result["files"]
    assert json.loads(values.read_text()) == {"image": f"{REGISTRY}@{digest}", "releaseTag": "v1.4.2"}
    assert chart_stack.kube.list("Deployment", NS) == []


def test_failing_chart_release_is_rolled_back_through_the_chart(chart_stack: Stack) -> None:
    good = chart_stack.publish("v1.0.0")
    assert chart_stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    chart_stack.publish("v1.1.0")
    chart_stack.kube.controller.scenarios["v1.1.0"] = "crashloop"
    run = chart_stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "CrashLoopBackOff" in run.stderr
    assert run.last_line.startswith("error: ") and "Next: " in run.last_line
    assert live_image(chart_stack) == f"{REGISTRY}@{good}"
    deployment = live(chart_stack)
    assert deployment["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.0.0"
    assert deployment["metadata"]["labels"]["helm.sh/chart"] == "model-api-1.0.0"
    pods = chart_stack.kube.list("Pod", NS)
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {f"{REGISTRY}@{good}"}
    assert chart_stack.kube.get("Lease", NS, "releasegate-model-api") is None  # lock released
    history = json.loads(chart_stack.releasegate("--json", "history", "--env", "nonprod").stdout)["history"]
    assert [(r["tag"], r["outcome"]) for r in history][:2] == [("v1.0.0", "deployed"), ("v1.1.0", "failed")]


def test_switching_an_environment_from_templates_to_the_chart(stack: Stack) -> None:
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    assert live(stack)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "releasegate"
    selector = live(stack)["spec"]["selector"]
    stack.describe_with_chart("nonprod")
    digest = stack.publish("v1.1.0")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert live(stack)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    assert live(stack)["spec"]["selector"] == selector  # immutable in Kubernetes: must not change
    assert live_image(stack) == f"{REGISTRY}@{digest}"
    # Rolling back to a release first deployed from the templates now renders it from the chart.
    back = stack.releasegate("rollback", "--env", "nonprod")
    assert back.exit_code == 0, back.stderr
    assert live(stack)["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.0.0"
    assert live(stack)["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_chart_values_breaking_the_schema_stop_before_any_change(chart_stack: Stack) -> None:
    chart_stack.publish("v1.4.2")
    values = chart_stack.project / "helm" / "values-nonprod.yaml"
    values.write_text(values.read_text().replace("replicaCount: 2", "replicaCount: two"))
    run = chart_stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 2, run.stderr
    assert "replicaCount" in run.last_line and "got string, want integer" in run.last_line
    assert "Next: fix the chart or its values" in run.last_line
    assert chart_stack.kube.list("Deployment", NS) == []


def test_chart_bluegreen_deploys_to_the_idle_slot_and_switches(chart_stack: Stack) -> None:
    """The slot objects come from the chart (rendered by the skaffold stand-in with the slots
    releasegate writes in release-values.json), and the switch works on them the same way."""
    path = chart_stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + "strategy: {type: bluegreen, scale_down_delay: 0}\n")
    for tag, slot in (("v1.0.0", "blue"), ("v1.1.0", "green")):
        chart_stack.publish(tag)
        run = chart_stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag)
        assert run.exit_code == 0, run.stderr
        assert json.loads(run.stdout)["slot"] == slot
        deployment = chart_stack.kube.get("Deployment", NS, f"model-api-{slot}")
        assert deployment["metadata"]["labels"]["helm.sh/chart"] == "model-api-1.0.0"
        assert deployment["spec"]["template"]["metadata"]["labels"]["releasegate.dev/slot"] == slot
        service = chart_stack.kube.get("Service", NS, "model-api")
        assert service["spec"]["selector"]["releasegate.dev/slot"] == slot
    values = json.loads((chart_stack.project / "build" / "nonprod" / "release-values.json").read_text())
    assert values["blueGreen"] == {"slot": "green", "liveSlot": "blue"}
    assert chart_stack.kube.get("Deployment", NS, "model-api-blue")["spec"]["replicas"] == 2  # kept
