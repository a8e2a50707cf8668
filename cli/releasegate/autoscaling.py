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
"""

from __future__ import annotations

import json
from typing import Any

from .kube import DEPLOYMENTS, Cluster
from .render import INITIAL_REPLICAS, Manifest

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
