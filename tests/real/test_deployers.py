"""Moving between the two deployers on a real control plane: skaffold's client-side apply taken
over by releasegate's server-side apply (a label and an env var removed from the templates are
gone after the next deploy), no pod restarted by a move either way, the running count never
changed under the real autoscaler (take-over, autoscaler removed, autoscaler added), and the
ApplySet pruned (a removed disruption budget, a renamed Service, an autoscaler turned off)."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from releasegate.core.applyset import PART_OF, applyset_id

from .stack import RealStack
from .test_strategies import deploy, strategy

pytestmark = pytest.mark.real
APP = "model-api"
AUTOSCALING = "  autoscaling: {min_replicas: 2, max_replicas: 4, target_cpu_percent: 80}\n"
DISRUPTION = "  disruption: {max_unavailable: 1}\n"
SKAFFOLD_FIRST = pytest.mark.parametrize("real", ["skaffold"], indirect=True)


def use_deployer(real: RealStack, deployer: str) -> None:
    path = real.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text().replace(f"deployer: {real.deployer}\n", f"deployer: {deployer}\n"))
    real.deployer = deployer


def edit_values(real: RealStack, old: str, new: str) -> None:
    path = real.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def env_names(deployment: dict[str, Any]) -> list[str]:
    return [e["name"] for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])]


@contextmanager
def replica_counts(real: RealStack) -> Iterator[list[int]]:
    """Every spec.replicas the Deployment has while the body runs: a real watch (kubectl's),
    stopped by its own pid afterwards."""
    namespace = real.namespaces["nonprod"]
    plane = real.plane
    watcher = subprocess.Popen(
        [str(plane.bin / "kubectl"), "--kubeconfig", str(plane.admin.kubeconfig), "get", "deployment", APP,
         "-n", namespace, "--watch", "-o", "jsonpath={.spec.replicas}{\"\\n\"}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    seen: list[int] = []

    def read() -> None:
        assert watcher.stdout is not None
        seen.extend(int(line) for line in watcher.stdout if line.strip().isdigit())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield seen
    finally:
        watcher.terminate()
        watcher.wait(10)
        reader.join(10)


@SKAFFOLD_FIRST
def test_a_move_to_apply_takes_over_removes_what_the_templates_dropped_and_restarts_no_pod(
    real: RealStack,
) -> None:
    strategy(real, "{type: rolling}")
    template = real.project / "k8s" / "templates" / "deployment.yaml.j2"
    original = template.read_text()
    labels = "  labels: {{ l.workload_labels() }}\n  annotations:"
    with_team = "  labels: {{ l.workload_labels() | replace('}', ', team: models}') }}\n  annotations:"
    template.write_text(original.replace(labels, with_team, 1))  # a label on the Deployment itself
    assert deploy(real, "v1.0.0").exit_code == 0  # skaffold: the real kubectl's client-side apply
    before = real.deployment("nonprod")
    assert before is not None and before["metadata"]["labels"]["team"] == "models"
    pods = {p["metadata"]["uid"] for p in real.pods("nonprod")}
    for deployer in ("apply", "skaffold", "apply"):  # the same release, each deployer in turn
        use_deployer(real, deployer)
        again = real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0")
        assert again.exit_code == 0, again.stderr
        now = real.deployment("nonprod")
        assert now is not None and now["spec"]["template"] == before["spec"]["template"], deployer
        assert now["metadata"]["generation"] == before["metadata"]["generation"], deployer  # no rollout
        assert {p["metadata"]["uid"] for p in real.pods("nonprod")} == pods, deployer  # no pod restarted
    template.write_text(original)  # the label goes, and so does an env var
    edit_values(real, "    MODEL_CACHE_DIR: /tmp/models\n", "")
    run = deploy(real, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    live = real.deployment("nonprod")
    assert live is not None and "team" not in live["metadata"]["labels"]
    assert "MODEL_CACHE_DIR" not in env_names(live) and "LOG_LEVEL" in env_names(live)
    managers = {(e["manager"], e["operation"]) for e in live["metadata"]["managedFields"]}
    assert ("releasegate", "Apply") in managers and ("kubectl-client-side-apply", "Update") not in managers


@SKAFFOLD_FIRST
def test_no_deploy_changes_the_count_the_real_autoscaler_keeps(real: RealStack) -> None:
    """The real podautoscaler (no metrics here: it keeps the count within its bounds) holds 3
    pods; a take-over, the autoscaler turned off (then pruned) and turned on again keep 3."""
    strategy(real, "{type: rolling}")
    assert deploy(real, "v1.0.0").exit_code == 0
    namespace = real.namespaces["nonprod"]
    real.plane.kubectl(
        "patch", "hpa", APP, "-n", namespace, "--type=merge", "-p", '{"spec":{"minReplicas":3}}'
    )
    real.plane.kubectl(
        "wait", "deployment", APP, "-n", namespace, "--for=jsonpath={.spec.replicas}=3", "--timeout=60s"
    )
    use_deployer(real, "apply")
    steps = [
        ("v1.1.0", lambda: None),  # taken over from client-side apply
        ("v1.2.0", lambda: edit_values(real, AUTOSCALING, "")),  # autoscaler turned off
        ("v1.3.0", lambda: edit_values(real, "  resources:\n", AUTOSCALING + "  resources:\n")),  # on again
    ]
    for tag, change in steps:
        change()
        with replica_counts(real) as counts:
            run = deploy(real, tag)
        assert run.exit_code == 0, run.stderr
        assert set(counts) == {3}, (tag, counts, run.stderr)
        if tag == "v1.2.0":  # turned off: kept at its count, and the autoscaler pruned once good
            assert "kept at its 3 pods this deploy" in run.stderr
            assert json.loads(run.stdout)["pruned"] == ["HorizontalPodAutoscaler/model-api"]
    assert real.deployment("nonprod")["spec"]["replicas"] == 3  # type: ignore[index]


@SKAFFOLD_FIRST
def test_pruning_deletes_only_what_a_good_release_no_longer_renders(real: RealStack) -> None:
    strategy(real, "{type: rolling}")
    extra = real.project / "k8s" / "templates" / "service-metrics.yaml.j2"
    service = real.project / "k8s" / "templates" / "service.yaml.j2"
    extra.write_text(service.read_text().replace("name: {{ app | q }}", "name: {{ (app ~ '-metrics') | q }}"))
    account = real.project / "k8s" / "templates" / "serviceaccount-scraper.yaml.j2"
    account.write_text(
        (real.project / "k8s" / "templates" / "serviceaccount.yaml.j2")
        .read_text()
        .replace("name: {{ app | q }}", "name: {{ (app ~ '-scraper') | q }}")
    )
    assert deploy(real, "v1.0.0").exit_code == 0
    namespace = real.namespaces["nonprod"]
    theirs = real.plane.kubectl(
        "create", "service", "clusterip", "someone-elses", "--tcp=80:80", "-n", namespace
    )
    assert "created" in theirs
    set_id = applyset_id(APP, namespace)

    def the_set() -> list[str]:
        listed = real.plane.kubectl("get", "deployments,services,serviceaccounts,hpa,pdb", "-n", namespace,
                                    "-l", f"{PART_OF}={set_id}", "-o", "name")  # fmt: skip
        return sorted(listed.split())

    assert the_set() == [
        "deployment.apps/model-api", "horizontalpodautoscaler.autoscaling/model-api",
        "poddisruptionbudget.policy/model-api", "service/model-api", "service/model-api-metrics",
        "serviceaccount/model-api", "serviceaccount/model-api-scraper",
    ]  # fmt: skip
    use_deployer(real, "apply")
    account.unlink()  # a ServiceAccount no longer wanted
    (real.project / "k8s" / "templates" / "poddisruptionbudget.yaml.j2").unlink()
    edit_values(real, DISRUPTION, "")
    edit_values(real, AUTOSCALING, "")
    extra.write_text(extra.read_text().replace("-metrics'", "-telemetry'"))  # the Service renamed
    dry = deploy(real, "v1.1.0", "--dry-run")  # the real API server's admission answers; nothing changes
    assert dry.exit_code == 0, dry.stderr
    assert (
        "in a server-side dry run" in dry.stderr
        and "Service/model-api-telemetry created (server dry run)" in dry.stderr
    )
    expected = [
        "HorizontalPodAutoscaler/model-api", "PodDisruptionBudget/model-api", "Service/model-api-metrics",
        "ServiceAccount/model-api-scraper",
    ]  # fmt: skip
    assert json.loads(dry.stdout)["pruned"] == expected
    assert "service/model-api-metrics" in the_set() and "service/model-api-telemetry" not in the_set()
    run = real.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0")  # published above
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["pruned"] == expected
    assert the_set() == [
        "deployment.apps/model-api", "service/model-api", "service/model-api-telemetry",
        "serviceaccount/model-api",
    ]  # fmt: skip
    assert real.plane.get(f"/api/v1/namespaces/{namespace}/services/someone-elses") is not None
