"""A Gateway API controller for the emulator: it reports on every HTTPRoute a moment after it
changes (or after a Service it references comes or goes), as a real implementation's
reconcile loop does, with the status ``routes.parents_status`` describes. ``behaviour`` picks
how it answers (``routes.ROUTE_BEHAVIOURS``); tests change it to break a route mid-canary.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .routes import parents_status, without_times

if TYPE_CHECKING:
    from .kube import KubeEmulator


class GatewayController:
    def __init__(self, cluster: KubeEmulator) -> None:
        self.cluster = cluster
        self.behaviour = "accepted"
        self.delay = 0.05  # seconds from a change to the controller's status write

    def set_behaviour(self, behaviour: str) -> None:
        self.behaviour = behaviour
        with self.cluster.lock:
            namespaces = {key[1] for key in self.cluster.objects if key[0] == "HTTPRoute"}
        for namespace in namespaces:
            self._later(namespace)

    def observe(self, event: str, obj: dict[str, Any]) -> None:
        route_changed = obj["kind"] == "HTTPRoute" and event != "DELETED"
        backend_came_or_went = obj["kind"] == "Service" and event in ("ADDED", "DELETED")
        if route_changed or backend_came_or_went:
            self._later(obj["metadata"]["namespace"])

    def _later(self, namespace: str) -> None:
        timer = threading.Timer(self.delay, self._report, args=(namespace,))
        timer.daemon = True
        timer.start()

    def _report(self, namespace: str) -> None:
        with self.cluster.lock:
            services = {s["metadata"]["name"] for s in self.cluster.list("Service", namespace)}
            for route in self.cluster.list("HTTPRoute", namespace):
                at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                parents = parents_status(route, services, self.behaviour, at)
                current = (route.get("status") or {}).get("parents") or []
                if without_times(parents) != without_times(current):
                    route["status"] = {"parents": parents}
                    self.cluster.put(route)
