"""Pruning through the real CLI against the emulators, with either deployer: once a release is
good, the ApplySet's members it no longer renders are deleted (and listed in ``pruned``); a
restore prunes what the failed release added; nothing outside the set is ever deleted; a dry run
says what would go."""

from __future__ import annotations

import json

import pytest

from releasegate.core.applyset import PART_OF, applyset_id
from tests.emulators.stack import Stack
from tests.test_serverside import AUTOSCALING, ENV_FILE, deploy, use_deployer

NS = "model-api-nonprod"
APP = "model-api"
SET_ID = applyset_id(APP, NS)


DISRUPTION = "  disruption: {max_unavailable: 1}\n"


def drop_budget_and_autoscaler(stack: Stack) -> None:
    (stack.project / "k8s" / "templates" / "poddisruptionbudget.yaml.j2").unlink()
    path = stack.project / ENV_FILE
    path.write_text(path.read_text().replace(AUTOSCALING, "").replace(DISRUPTION, ""))


def members(stack: Stack) -> list[str]:
    """What `kubectl get` with the part-of label would list, as Kind/name."""
    found = []
    for kind in ("Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        found += [f"{kind}/{o['metadata']['name']}" for o in stack.kube.list(kind, NS)
                  if (o["metadata"].get("labels") or {}).get(PART_OF) == SET_ID]  # fmt: skip
    return sorted(found)


@pytest.mark.e2e
@pytest.mark.parametrize("deployer", ["skaffold", "apply"])
def test_a_good_release_prunes_what_it_no_longer_renders(stack: Stack, deployer: str) -> None:
    use_deployer(stack, deployer)
    assert deploy(stack, "v1.0.0").exit_code == 0
    assert members(stack) == [
        "Deployment/model-api", "HorizontalPodAutoscaler/model-api", "PodDisruptionBudget/model-api",
        "Service/model-api", "ServiceAccount/model-api",
    ]  # fmt: skip
    parent = stack.kube.get("ConfigMap", NS, f"{APP}-applyset")
    assert parent["metadata"]["labels"]["applyset.kubernetes.io/id"] == SET_ID
    assert parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"] == (
        "Deployment.apps,HorizontalPodAutoscaler.autoscaling,PodDisruptionBudget.policy,Service,ServiceAccount"
    )
    drop_budget_and_autoscaler(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["pruned"] == [
        "HorizontalPodAutoscaler/model-api",
        "PodDisruptionBudget/model-api",
    ]
    assert members(stack) == ["Deployment/model-api", "Service/model-api", "ServiceAccount/model-api"]
    parent = stack.kube.get("ConfigMap", NS, f"{APP}-applyset")
    assert parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"] == (
        "Deployment.apps,Service,ServiceAccount"
    )


@pytest.mark.e2e
def test_nothing_outside_the_set_is_ever_deleted(stack: Stack) -> None:
    assert deploy(stack, "v1.0.0").exit_code == 0
    theirs = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "metadata": {"name": "someone-elses", "namespace": NS, "labels": {"app": "other"}},
              "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "other"}}}}  # fmt: skip
    another_set = {**theirs, "metadata": {**theirs["metadata"], "name": "another-set",
                                          "labels": {PART_OF: "applyset-somebody-else-v1"}}}  # fmt: skip
    stack.kube.put(theirs)
    stack.kube.put(another_set)
    drop_budget_and_autoscaler(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert stack.kube.get("PodDisruptionBudget", NS, "someone-elses") is not None
    assert stack.kube.get("PodDisruptionBudget", NS, "another-set") is not None
    assert stack.kube.get("PodDisruptionBudget", NS, APP) is None


@pytest.mark.e2e
def test_a_restore_prunes_what_the_failed_release_added(stack: Stack) -> None:
    path = stack.project / ENV_FILE
    with_autoscaling = path.read_text()
    path.write_text(with_autoscaling.replace(AUTOSCALING, ""))
    assert deploy(stack, "v1.0.0").exit_code == 0
    path.write_text(with_autoscaling)  # v1.1.0 adds an autoscaler, and crash-loops
    stack.kube.controller.scenarios["v1.1.0"] = "crashloop"
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert stack.kube.get("HorizontalPodAutoscaler", NS, APP) is None  # v1.0.0 had none
    assert "deleted HorizontalPodAutoscaler/model-api: no longer rendered" in run.stderr


@pytest.mark.e2e
def test_a_dry_run_says_what_would_be_pruned_and_deletes_nothing(stack: Stack) -> None:
    assert deploy(stack, "v1.0.0").exit_code == 0
    drop_budget_and_autoscaler(stack)
    run = deploy(stack, "v1.1.0", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["pruned"] == [
        "HorizontalPodAutoscaler/model-api",
        "PodDisruptionBudget/model-api",
    ], run.stderr
    assert "would delete HorizontalPodAutoscaler/model-api, PodDisruptionBudget/model-api" in run.stderr
    assert stack.kube.get("PodDisruptionBudget", NS, APP) is not None
