"""The HorizontalPodAutoscaler controller, as far as a deploy can tell it apart.

The real controller (kube-controller-manager's podautoscaler) reads its metrics every 15 s
and sets the target's ``spec.replicas`` to what they call for, kept within ``minReplicas``
and ``maxReplicas``: raising ``minReplicas`` above the count scales the target up at once,
and the count falls as far as the minimum when the load goes. Here the load is what a test
says (``want``): the count the metrics would ask for. The real one waits out a 300 s
stabilisation window before it scales down; this one scales at once, the harsher case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kube import KubeEmulator


class Autoscalers:
    def __init__(self, cluster: KubeEmulator) -> None:
        self.cluster = cluster
        self.wanted: dict[tuple[str, str], int] = {}  # (namespace, Deployment) -> count the load calls for

    def want(self, namespace: str, deployment: str, count: int) -> None:
        """The load now calls for ``count`` pods of ``deployment``."""
        with self.cluster.lock:
            self.wanted[(namespace, deployment)] = count
            for hpa in self.cluster.list("HorizontalPodAutoscaler", namespace):
                if hpa["spec"]["scaleTargetRef"]["name"] == deployment:
                    self._reconcile(hpa)

    def observe(self, event: str, obj: dict[str, Any]) -> None:
        """Called after every change: an autoscaler created or changed acts on its target."""
        if obj["kind"] == "HorizontalPodAutoscaler" and event != "DELETED":
            self._reconcile(obj)

    def _reconcile(self, hpa: dict[str, Any]) -> None:
        namespace = hpa["metadata"]["namespace"]
        target = hpa["spec"]["scaleTargetRef"]["name"]
        deployment = self.cluster.get("Deployment", namespace, target)
        if deployment is None:
            return
        current = int(deployment["spec"].get("replicas", 1))
        wanted = self.wanted.get((namespace, target), current)
        count = max(int(hpa["spec"].get("minReplicas", 1)), min(wanted, int(hpa["spec"]["maxReplicas"])))
        if count == current:
            return
        deployment["spec"]["replicas"] = count
        self.cluster.controller.changed(self.cluster.put(deployment))
