"""A stand-in for a Gateway API implementation on the real tier: it reports on every HTTPRoute
as Envoy Gateway or the AWS Gateway API controller would (``status.parents``: Accepted and
ResolvedRefs per parent, at the generation it read), written through the real API server's
``/status`` subresource, so the real CRD's schema judges the report and the route's
generation moves as the real API server moves it. The report itself is
``tests.emulators.routes.parents_status``, the same one the emulator's controller writes.
Nothing routes traffic: the pods are kwok's.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

from tests.emulators.routes import parents_status, without_times

from .controlplane import ControlPlane

ROUTES = "/apis/gateway.networking.k8s.io/v1"
POLL_SECONDS = 0.2


class RealGateway:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.behaviour = "accepted"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gateway-controller", daemon=True)

    def __enter__(self) -> RealGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self._reconcile()
            except (OSError, urllib.error.URLError, ValueError):
                continue  # an API server restarted by a test: the next round reports

    def _reconcile(self) -> None:
        routes = self.plane.get(f"{ROUTES}/httproutes") or {"items": []}
        for route in routes["items"]:
            namespace, name = route["metadata"]["namespace"], route["metadata"]["name"]
            services = self.plane.get(f"/api/v1/namespaces/{namespace}/services") or {"items": []}
            names = {s["metadata"]["name"] for s in services["items"]}
            at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            parents = parents_status(route, names, self.behaviour, at)
            if without_times(parents) == without_times((route.get("status") or {}).get("parents") or []):
                continue
            route["status"] = {"parents": parents}
            self._put(f"{ROUTES}/namespaces/{namespace}/httproutes/{name}/status", route)

    def _put(self, path: str, body: dict[str, Any]) -> None:
        request = urllib.request.Request(
            self.plane.url + path,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"Authorization": f"Bearer {self.plane.admin.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, context=self.plane.tls, timeout=10):
                pass
        except urllib.error.HTTPError as error:
            # 409: changed meanwhile, the next round reads it again; 404: deleted meanwhile (a
            # test's namespace going away), nothing left to report on. Either would otherwise end
            # this thread, and every later test's route would wait for a report that never comes.
            if error.code not in (404, 409):
                raise AssertionError(
                    f"the real API server refused the route's status: {error.read()!r}"
                ) from error
