"""Leaving the replica count to a HorizontalPodAutoscaler.

When an environment autoscales, its Deployment manifest has no ``spec.replicas``: an apply
that set it would put prod back from the autoscaler's 12 pods to 3 under load, every deploy
and every restore. Two things a manifest alone cannot do are done here, through the API:
- on creation the API server would default the count to 1: releasegate sets the count the
  manifest names in ``releasegate.dev/initial-replicas`` (a plain update, not an apply, so no
  later apply claims the field);
- an environment deployed before with ``replicas`` in its manifests has it in kubectl's
  ``last-applied-configuration``; kubectl's three-way merge would then delete the field and
  reset the count to 1. Removing it from that annotation first is what the Kubernetes docs
  on migrating to autoscaling prescribe (``kubectl apply edit-last-applied``).

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import json
from typing import Any

from releasegate.core.placement import INITIAL_REPLICAS, Manifest
from releasegate.kube.api import DEPLOYMENTS, Cluster

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MERGE_PATCH = "application/merge-patch+json"


def initial_replicas(manifest: Manifest) -> int | None:
    """The count to create the Deployment with when an autoscaler owns it, else None."""
    if "replicas" in manifest.obj.get("spec", {}):
        return None
    text = (manifest.obj["metadata"].get("annotations") or {}).get(INITIAL_REPLICAS)
    return int(text) if text and str(text).isdigit() else None


def live_deployment(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes.client.exceptions import ApiException

    try:
        return dict(cluster.get(f"{DEPLOYMENTS.format(namespace=namespace)}/{name}"))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def forget_applied_replicas(cluster: Cluster, deployment: dict[str, Any]) -> bool:
    """Drop spec.replicas from the last applied configuration; True when there was one."""
    meta = deployment["metadata"]
    applied = json.loads((meta.get("annotations") or {}).get(LAST_APPLIED) or "{}")
    if "replicas" not in (applied.get("spec") or {}):
        return False
    del applied["spec"]["replicas"]
    patch = {"metadata": {"annotations": {LAST_APPLIED: json.dumps(applied, separators=(",", ":"))}}}
    path = f"{DEPLOYMENTS.format(namespace=meta['namespace'])}/{meta['name']}"
    cluster.call("PATCH", path, body=patch, content_type=MERGE_PATCH, retry=True)
    return True


def set_replicas(cluster: Cluster, namespace: str, name: str, replicas: int) -> None:
    path = f"{DEPLOYMENTS.format(namespace=namespace)}/{name}"
    cluster.call("PATCH", path, body={"spec": {"replicas": replicas}}, content_type=MERGE_PATCH, retry=True)


# While a canary runs, the stable HorizontalPodAutoscaler may not shrink the stable Deployment
# as traffic leaves it (an abort would land everything on the smaller count): its minReplicas
# is held at the count the deploy started with, the original kept in this annotation so that
# a later `promote`, `abort` or `recover` (another process) can put it back.
AUTOSCALERS = "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
HELD_MINIMUM = "releasegate.dev/held-min-replicas"


def autoscaler(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    return cluster.get_or_none(f"{AUTOSCALERS.format(namespace=namespace)}/{name}")


def held_minimum(hpa: dict[str, Any] | None) -> int | None:
    """The minReplicas a held autoscaler will go back to, or None when it is not held."""
    text = ((hpa or {}).get("metadata", {}).get("annotations") or {}).get(HELD_MINIMUM)
    return int(text) if text and str(text).isdigit() else None


def hold_minimum(cluster: Cluster, namespace: str, name: str, count: int) -> int | None:
    """Keep autoscaler ``name`` from going below ``count``; the minimum now (None: no autoscaler)."""
    hpa = autoscaler(cluster, namespace, name)
    if hpa is None:
        return None
    current = int(hpa["spec"].get("minReplicas", 1))
    original = held_minimum(hpa)
    wanted = max(count, original if original is not None else current)
    wanted = min(wanted, int(hpa["spec"]["maxReplicas"]))
    if original is not None and current == wanted:
        return current
    patch = {"metadata": {"annotations": {HELD_MINIMUM: str(original if original is not None else current)}},
             "spec": {"minReplicas": wanted}}  # fmt: skip
    path = f"{AUTOSCALERS.format(namespace=namespace)}/{name}"
    cluster.call("PATCH", path, body=patch, content_type=MERGE_PATCH, retry=True)
    return wanted


def release_minimum(cluster: Cluster, namespace: str, name: str) -> int | None:
    """Put a held autoscaler's minReplicas back; the minimum it went back to (None: not held)."""
    original = held_minimum(hpa := autoscaler(cluster, namespace, name))
    if hpa is None or original is None:
        return None
    patch = {"metadata": {"annotations": {HELD_MINIMUM: None}}, "spec": {"minReplicas": original}}
    path = f"{AUTOSCALERS.format(namespace=namespace)}/{name}"
    cluster.call("PATCH", path, body=patch, content_type=MERGE_PATCH, retry=True)
    return original
