"""Where each kind lives in the Kubernetes API: shared by the emulator and the skaffold stand-in."""

from __future__ import annotations

# kind -> (API path prefix, resource plural)
KINDS: dict[str, tuple[str, str]] = {
    "Pod": ("/api/v1", "pods"),
    "Service": ("/api/v1", "services"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "Event": ("/api/v1", "events"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "ReplicaSet": ("/apis/apps/v1", "replicasets"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases"),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices"),
    # Custom resources: served only where their CRD is installed (KubeEmulator.uninstalled).
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    "VirtualService": ("/apis/networking.istio.io/v1", "virtualservices"),
}
BY_PATH = {(prefix, plural): kind for kind, (prefix, plural) in KINDS.items()}


def api_version(kind: str) -> str:
    prefix = KINDS[kind][0]
    return "v1" if prefix == "/api/v1" else prefix.removeprefix("/apis/")


def object_path(kind: str, namespace: str, name: str | None = None) -> str:
    prefix, plural = KINDS[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path
