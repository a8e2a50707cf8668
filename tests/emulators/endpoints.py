"""The emulator's endpoint-slice controller: which pods a Service's traffic reaches, a moment late.

As in a real cluster, the API server's service proxy (and every load balancer, mesh and
kube-proxy) picks from the Service's EndpointSlices, not from its selector: the endpointslice
controller rewrites them after a pod or a selector changes, ``delay`` seconds later (real
controllers: from a few milliseconds under no load to seconds under load). So right after a
selector PATCH, traffic still reaches the pods the old selector chose, and right after a
Service is created it reaches none ("no endpoints available").
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kube import KubeEmulator

SERVICE_NAME = "kubernetes.io/service-name"


class EndpointSliceController:
    def __init__(self, cluster: KubeEmulator, delay: float = 0.2) -> None:
        self.cluster = cluster
        self.delay = delay
        self._pending: set[str] = set()  # namespaces with a resync scheduled

    # An observer of the emulator's store: called under its lock, so it only schedules.
    def observe(self, event: str, obj: dict[str, Any]) -> None:
        del event
        if obj["kind"] not in ("Pod", "Service"):
            return
        namespace = obj["metadata"]["namespace"]
        if namespace in self._pending:
            return
        self._pending.add(namespace)
        timer = threading.Timer(self.delay, self.sync, args=(namespace,))
        timer.daemon = True
        timer.start()

    def sync(self, namespace: str) -> None:
        with self.cluster.lock:
            self._pending.discard(namespace)
            pods = self.cluster.list("Pod", namespace)
            services = {s["metadata"]["name"]: s for s in self.cluster.list("Service", namespace)}
            for name, service in services.items():
                wanted = endpoint_slice(service, pods)
                current = self.cluster.get("EndpointSlice", namespace, f"{name}-slice")
                if current is None or current.get("endpoints") != wanted["endpoints"]:
                    self.cluster.put(wanted)
            for piece in self.cluster.list("EndpointSlice", namespace):
                if piece["metadata"]["labels"].get(SERVICE_NAME) not in services:
                    self.cluster.delete("EndpointSlice", namespace, piece["metadata"]["name"])

    def ready_pods(self, namespace: str, service: str) -> list[dict[str, Any]]:
        """The pods the proxy may pick for ``service``: its EndpointSlice's ready endpoints."""
        with self.cluster.lock:
            piece = self.cluster.get("EndpointSlice", namespace, f"{service}-slice")
            names = [
                e["targetRef"]["name"]
                for e in (piece or {}).get("endpoints") or []
                if (e.get("conditions") or {}).get("ready")
            ]
            found = (self.cluster.get("Pod", namespace, name) for name in names)
            return [pod for pod in found if pod is not None]


def endpoint_slice(service: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    namespace, name = service["metadata"]["namespace"], service["metadata"]["name"]
    selector = service["spec"].get("selector") or {}
    chosen = [
        p for p in pods
        if selector and p["status"].get("podIP")
        and all((p["metadata"].get("labels") or {}).get(k) == v for k, v in selector.items())
    ]  # fmt: skip
    return {
        "kind": "EndpointSlice",
        "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": f"{name}-slice",
            "namespace": namespace,
            "labels": {
                SERVICE_NAME: name,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [pod["status"]["podIP"]],
                "conditions": {"ready": _ready(pod), "serving": _ready(pod), "terminating": False},
                "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod["metadata"]["name"]},
            }
            for pod in sorted(chosen, key=lambda p: p["metadata"]["name"])
        ],
        "ports": [
            {"name": p.get("name", ""), "protocol": p.get("protocol", "TCP"), "port": p["targetPort"]}
            for p in service["spec"].get("ports") or []
            if isinstance(p.get("targetPort"), int)
        ],
    }


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])
