"""``deployer: apply`` through the real CLI against the emulators: server-side apply instead of
``skaffold deploy`` (no skaffold on PATH at all), the take-over of objects skaffold applied
client-side (a value removed from the templates leaves the live object), no pod restarted by a
move between deployers, the autoscaler's count never touched, and the server-side dry run."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from releasegate.kube.ledger import LABEL as LEDGER
from releasegate.kube.serverside import owners
from tests.emulators.stack import Stack

NS = "model-api-nonprod"
APP = "model-api"
ENV_FILE = "k8s/environments/nonprod.yaml"


def use_deployer(stack: Stack, deployer: str) -> None:
    path = stack.project / ENV_FILE
    text = "".join(
        line for line in path.read_text().splitlines(keepends=True) if not line.startswith("deployer:")
    )
    path.write_text(text + f"deployer: {deployer}\n")


def without_skaffold(stack: Stack) -> None:
    (stack.bin / "skaffold").unlink()


def deploy(stack: Stack, tag: str, *args: str) -> Any:
    stack.publish(tag)
    return stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag, *args)


def deployment(stack: Stack) -> dict[str, Any]:
    found = stack.kube.get("Deployment", NS, APP)
    assert found is not None
    return found


def env_names(stack: Stack) -> list[str]:
    return [e["name"] for e in deployment(stack)["spec"]["template"]["spec"]["containers"][0].get("env", [])]


def replica_writes(stack: Stack) -> list[int]:
    """Every spec.replicas the Deployment <app> has had from now on."""
    seen: list[int] = []

    def watch(event: str, obj: dict[str, Any]) -> None:
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == APP and event != "DELETED":
            count = obj["spec"].get("replicas")
            if not seen or seen[-1] != count:
                seen.append(count)

    stack.kube.observers.append(watch)
    return seen


@pytest.mark.e2e
def test_deployer_apply_puts_the_release_in_with_server_side_apply_and_no_skaffold(stack: Stack) -> None:
    use_deployer(stack, "apply")
    without_skaffold(stack)
    run = deploy(stack, "v1.4.2")
    assert run.exit_code == 0, run.stderr
    assert (
        "✓ deploy   server-side applied" in run.stderr
        and "skaffold" not in json.loads(run.stdout)["skaffold"]
    )
    live = deployment(stack)
    assert owners(live, "spec", "template") == ["releasegate/Apply"]
    assert live["spec"]["template"]["metadata"]["labels"]["skaffold.dev/run-id"] == "releasegate-nonprod"
    order = [(r.method, r.path.rsplit("/", 2)[-2]) for r in stack.kube.writes() if r.method == "PATCH"]
    kinds = [plural for _, plural in order]
    # Dependency tiers: what the pods refer to, at once; then the workload; then what refers to it.
    assert max(kinds.index("serviceaccounts"), kinds.index("services")) < kinds.index("deployments")
    assert kinds.index("deployments") < min(
        kinds.index("horizontalpodautoscalers"), kinds.index("poddisruptionbudgets")
    )


@pytest.mark.e2e
def test_a_deploy_asks_the_api_server_nothing_twice(stack: Stack) -> None:
    """The ledger is read once (under the lock), the ApplySet parent once before the apply and
    once for the prune, and each group/version's discovery once for the whole run."""
    use_deployer(stack, "apply")
    assert deploy(stack, "v1.4.2").exit_code == 0
    stack.kube.requests.clear()
    run = deploy(stack, "v1.4.3")
    assert run.exit_code == 0, run.stderr
    reads = [r for r in stack.kube.requests if r.method == "GET"]
    listed = [r for r in reads if r.path.endswith("/configmaps")]
    ledger = [r for r in listed if LEDGER in r.query.get("labelSelector", "")]
    parent = [r for r in reads if r.path == f"/api/v1/namespaces/{NS}/configmaps/{APP}-applyset"]
    discovery = Counter(r.path for r in reads if re.fullmatch(r"/api/v1|/apis/[^/]+/[^/]+", r.path))
    assert (len(ledger), len(parent)) == (1, 2), [r.path for r in reads]
    assert discovery and set(discovery.values()) == {1}, discovery


@pytest.mark.e2e
def test_an_environment_moving_from_skaffold_to_apply_is_taken_over_and_loses_what_the_templates_dropped(
    stack: Stack,
) -> None:
    assert deploy(stack, "v1.0.0").exit_code == 0  # skaffold: client-side apply
    assert "MODEL_CACHE_DIR" in env_names(stack)
    use_deployer(stack, "apply")
    path = stack.project / ENV_FILE
    path.write_text(path.read_text().replace("    MODEL_CACHE_DIR: /tmp/models\n", ""))
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert "took over" in run.stderr
    assert "MODEL_CACHE_DIR" not in env_names(stack) and "LOG_LEVEL" in env_names(
        stack
    )  # gone from the live object
    assert not [
        e
        for e in deployment(stack)["metadata"]["managedFields"]
        if e["manager"] == "kubectl-client-side-apply"
    ]


@pytest.mark.e2e
def test_moving_between_deployers_restarts_no_pod(stack: Stack) -> None:
    assert deploy(stack, "v1.0.0").exit_code == 0
    template = deployment(stack)["spec"]["template"]
    generation = deployment(stack)["metadata"]["generation"]
    for deployer in ("apply", "skaffold"):
        use_deployer(stack, deployer)
        again = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0")
        assert again.exit_code == 0, again.stderr
        assert deployment(stack)["spec"]["template"] == template, deployer
        assert deployment(stack)["metadata"]["generation"] == generation, deployer


AUTOSCALING = "  autoscaling: {min_replicas: 2, max_replicas: 4, target_cpu_percent: 80}\n"


@pytest.mark.e2e
@pytest.mark.parametrize("case", ["taken over from skaffold", "applied before", "hpa added", "hpa removed"])
def test_no_apply_changes_the_running_pod_count(stack: Stack, case: str) -> None:
    """The count was scaled to 3 (by the autoscaler, or by hand before one existed); deploys
    with apply keep 3: a take-over, an HPA added (releasegate owned the count: handed over
    first), an HPA removed (kept at its count this deploy)."""
    path = stack.project / ENV_FILE
    if case == "hpa added":
        path.write_text(path.read_text().replace(AUTOSCALING, ""))
    use_deployer(stack, "skaffold" if case == "taken over from skaffold" else "apply")
    assert deploy(stack, "v1.0.0").exit_code == 0
    scaled = {**deployment(stack), "spec": {**deployment(stack)["spec"], "replicas": 3}}
    stack.kube.put(scaled)  # as the autoscaler's scale write, without its field ownership
    use_deployer(stack, "apply")
    if case == "hpa added":
        path.write_text(path.read_text().replace("  resources:\n", AUTOSCALING + "  resources:\n"))
    if case == "hpa removed":
        path.write_text(path.read_text().replace(AUTOSCALING, ""))
    counts = replica_writes(stack)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert set(counts) <= {3} and deployment(stack)["spec"]["replicas"] == 3, (counts, run.stderr)


@pytest.mark.e2e
def test_a_dry_run_with_apply_asks_the_api_server_and_changes_nothing(stack: Stack) -> None:
    use_deployer(stack, "apply")
    without_skaffold(stack)
    run = deploy(stack, "v1.4.2", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["outcome"] == "planned"
    assert (
        "in a server-side dry run" in run.stderr
        and "Deployment/model-api created (server dry run)" in run.stderr
    )
    assert stack.kube.list("Deployment", NS) == []
    dry = [r for r in stack.kube.writes() if r.method == "PATCH"]
    assert dry and all(r.query.get("dryRun") == "All" for r in dry)
