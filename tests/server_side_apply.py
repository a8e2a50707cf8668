"""One server-side apply scenario, run over HTTP against the Kubernetes emulator (fast tier,
tests/test_server_side_apply.py) and against the real API server (real tier,
tests/real/test_server_side_apply.py), with the same expectations: what the real field manager
does is what the emulator must do.

The scenario is the life of a Deployment under releasegate's two deployers: created by a
client-side apply (kubectl, under skaffold), taken over the way ``kubectl apply --server-side``
does, applied without a label (removed only once taken over), a conflict with another manager,
replicas handed over to an autoscaler, and the autoscaler's own update.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from releasegate.kube.serverside import owners, take_over_client_side

Call = Callable[..., tuple[int, Any]]  # (method, path, body, content_type, **query) -> (status, body)
APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def deployment(namespace: str, labels: dict[str, str], replicas: int | None = 2) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": "ssa"}},
        "template": {
            "metadata": {"labels": {"app": "ssa"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "registry.example/app@sha256:" + "a" * 64,
                        "ports": [{"containerPort": 8000}],
                    }
                ]
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "ssa", "namespace": namespace, "labels": labels}, "spec": spec}  # fmt: skip


class Cluster:
    """The little of releasegate's Cluster that take_over_client_side uses, over ``call``: an
    error status is the client's ApiException, as there."""

    def __init__(self, call: Call) -> None:
        self._call = call

    def call(self, method: str, path: str, body: Any = None, content_type: str = "", **query: Any) -> Any:
        from kubernetes.client.exceptions import ApiException

        query.pop("retry", None)
        status, answer = self._call(method, path, body, content_type, **query)
        if not 200 <= status < 300:
            raise ApiException(status=status, reason=str(answer))
        return answer

    def get(self, path: str) -> Any:
        return self.call("GET", path)


def run_scenario(call: Call, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/ssa"
    collection = path.rsplit("/", 1)[0]
    first = deployment(namespace, {"app": "ssa", "team": "models"})
    client_side = {**first, "metadata": {**first["metadata"],
                                         "annotations": {LAST_APPLIED: json.dumps(first)}}}  # fmt: skip
    status, _ = call(
        "POST", collection, client_side, "application/json", fieldManager="kubectl-client-side-apply"
    )
    assert status == 201

    # Applied server-side without `team`: the client-side manager still owns it, so it stays.
    without_team = deployment(namespace, {"app": "ssa"})
    status, live = call("PATCH", path, without_team, APPLY, fieldManager="releasegate", force="true")
    assert status == 200 and live["metadata"]["labels"].get("team") == "models", live["metadata"]
    assert owners(live, "metadata", "labels", "team") == ["kubectl-client-side-apply/Update"]

    # Taken over as kubectl does: the client-side manager's fields become releasegate's Apply set.
    assert take_over_client_side(Cluster(call), path, live)
    _, live = call("GET", path, None, "")
    assert owners(live, "metadata", "labels", "team") == ["releasegate/Apply"]
    generation = live["metadata"]["generation"]
    status, live = call("PATCH", path, without_team, APPLY, fieldManager="releasegate", force="true")
    assert status == 200 and "team" not in live["metadata"]["labels"], live["metadata"]
    # A Deployment's generation follows its annotations too (apps/v1's strategy): a label is no
    # annotation, and the take-over left kubectl's annotation in place.
    assert LAST_APPLIED in live["metadata"]["annotations"] and live["metadata"]["generation"] == generation
    annotated = {"metadata": {"annotations": {"example.com/note": "x"}}}
    status, live = call("PATCH", path, annotated, MERGE, fieldManager="someone-else")
    assert status == 200 and live["metadata"]["generation"] == generation + 1

    # Another manager setting a field releasegate owns, to another value: a conflict, unless forced.
    other = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "ssa"},
        "spec": {"replicas": 5},
    }
    status, refused = call("PATCH", path, other, APPLY, fieldManager="someone-else")
    assert status == 409 and 'conflict with "releasegate"' in refused["message"], refused
    assert ".spec.replicas" in refused["message"]

    # releasegate owns replicas alone: stopping to send them would remove them (back to 1)...
    status, live = call("PATCH", path, deployment(namespace, {"app": "ssa"}, replicas=None), APPLY,
                        fieldManager="releasegate", force="true", dryRun="All")  # fmt: skip
    assert status == 200 and live["spec"]["replicas"] == 1
    # ... so the count is first applied by a second manager: shared, it stays when releasegate stops.
    handover = {**other, "spec": {"replicas": 2}}
    status, _ = call("PATCH", path, handover, APPLY, fieldManager="releasegate-handover", force="true")
    assert status == 200
    status, live = call("PATCH", path, deployment(namespace, {"app": "ssa"}, replicas=None), APPLY,
                        fieldManager="releasegate", force="true")  # fmt: skip
    assert status == 200 and live["spec"]["replicas"] == 2
    assert owners(live, "spec", "replicas") == ["releasegate-handover/Apply"]

    # The autoscaler's update takes the count over from everyone.
    status, live = call(
        "PATCH", path, {"spec": {"replicas": 4}}, MERGE, fieldManager="kube-controller-manager"
    )
    assert status == 200 and owners(live, "spec", "replicas") == ["kube-controller-manager/Update"]
    status, live = call("PATCH", path, deployment(namespace, {"app": "ssa"}, replicas=None), APPLY,
                        fieldManager="releasegate", force="true")  # fmt: skip
    assert status == 200 and live["spec"]["replicas"] == 4  # a deploy leaves the autoscaler's count

    annotations_map_survives_the_take_over(call, namespace)


def annotations_map_survives_the_take_over(call: Call, namespace: str) -> None:
    """A ConfigMap (no controller writes it): its client-side manager created the annotations
    map and owns it (``.``); the take-over must not hand that to releasegate, or the next apply
    without annotations removes the map and kubectl's annotation with it (the real API server
    did, for a Deployment whose controller had not yet annotated it)."""
    path = f"/api/v1/namespaces/{namespace}/configmaps/ssa"
    config = {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "1"},
              "metadata": {"name": "ssa", "namespace": namespace, "labels": {"app": "ssa"}}}  # fmt: skip
    client_side = {
        **config,
        "metadata": {**config["metadata"], "annotations": {LAST_APPLIED: json.dumps(config)}},
    }
    status, live = call("POST", path.rsplit("/", 1)[0], client_side, "application/json",
                        fieldManager="kubectl-client-side-apply")  # fmt: skip
    assert status == 201
    annotations = live["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:annotations"]
    assert "." in annotations, annotations  # the creator owns the map itself
    assert take_over_client_side(Cluster(call), path, live)
    status, live = call("PATCH", path, config, APPLY, fieldManager="releasegate", force="true")
    assert status == 200 and LAST_APPLIED in (live["metadata"].get("annotations") or {}), live["metadata"]
