"""The API server's proxy to Services and pods, and the application behind it.

``/api/v1/namespaces/NS/services/NAME[:PORT]/proxy/PATH`` reaches one Ready pod the Service
selects (503 "no endpoints available" when there is none); ``pods/NAME[:PORT]/proxy/PATH``
reaches that pod. Behind each pod answers a small fake of the reference model-serving API,
whose behaviour tests script per release (the pod's version label, or its image digest):

- ``healthy`` (default): ``GET /health/ready`` and ``/health/live`` answer 200, ``POST
  /predict`` answers the model name, the release's version and a prediction;
- ``unhealthy``: the health endpoints answer 503;
- ``broken_predict``: ``/predict`` answers 500;
- ``slow``: every answer takes ``slow_ms``;
- ``drifted``: ``/predict`` answers each prediction ``DRIFT`` (0.5) higher (a retrained model whose
  answers differ: a comparison with the release before disagrees);
- ``nudged``: each prediction 0.004 higher (within a comparison's tolerance of 0.01, not equal);
- ``garbage``: 200 with a body that is not JSON;
- ``hiccup``: every ``hiccup_every``-th answer of the release is a 503, as a pod evicted
  mid-request or API Priority and Fairness answers now and then; the next try passes;
- ``degrading``: healthy for the release's first ``degrade_after`` answers (all its pods
  together), then 500 to everything, as a leak does under traffic. Blue/green tests use it for
  a release that passes through the preview Service and fails once it is live.

``mtls_strict`` makes every proxied request answer what the API server answers when an Istio
sidecar in STRICT mTLS mode drops its plaintext request (istio#27169): 503 "error trying to
reach service: read tcp ...: read: connection reset by peer".

``unreachable`` makes every proxied request answer what EKS answers when the control plane
cannot reach the pods (security groups, an overlay CNI): 503 "error trying to reach service".
``GET /metrics`` answers what the app has served, in Prometheus' text format: the counter
``http_requests_total{method, path, code}`` of that pod, one series per combination it has
answered (as prometheus_client does: a 5xx series exists only once a 5xx was answered).

Every proxied request is recorded in ``calls`` (pod, method, path, body). A Service in
``backends`` (namespace, name) is answered by another emulator instead, as an in-cluster
Prometheus is.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .http import Request, Response

if TYPE_CHECKING:
    from .http import EmulatorServer
    from .kube import KubeEmulator

PROXY = re.compile(
    r"/api/v1/namespaces/(?P<ns>[^/]+)/(?P<kind>services|pods)/(?P<name>[^/:]+)(?::(?P<port>[^/]+))?"
    r"/proxy(?P<path>/.*)?"
)
VERSION_LABEL = "app.kubernetes.io/version"
DRIFT = 0.5  # what a `drifted` release adds to each prediction


@dataclass
class Call:
    pod: str
    method: str
    path: str
    body: Any
    at: float = field(default_factory=time.perf_counter)  # when it was answered (benchmarks)
    status: int = 0


@dataclass
class Applications:
    behaviours: dict[str, str] = field(default_factory=dict)  # version, digest or pod name -> behaviour
    slow_ms: int = 300
    unreachable: bool = False
    mtls_strict: bool = False
    degrade_after: int = 2
    hiccup_every: int = 3
    calls: list[Call] = field(default_factory=list)
    answered: dict[str, int] = field(default_factory=dict)  # release (version label) -> answers
    served: dict[tuple[str, str, str, int], int] = field(default_factory=dict)  # (pod, method, path, code)

    def behaviour(self, pod: dict[str, Any]) -> str:
        version = (pod["metadata"].get("labels") or {}).get(VERSION_LABEL, "")
        digest = pod["spec"]["containers"][0]["image"].partition("@")[2]
        name = pod["metadata"]["name"]
        return (
            self.behaviours.get(name)
            or self.behaviours.get(version)
            or self.behaviours.get(digest)
            or "healthy"
        )

    def answer(self, pod: dict[str, Any], method: str, path: str, body: Any) -> Response:
        """What the application in ``pod`` answers (the real tier's pod network asks it too)."""
        name = pod["metadata"]["name"]
        if (method, path) == ("GET", "/metrics"):
            return self.metrics(name)
        answer = self._respond(pod, method, path, body)
        counted = (name, method, path, answer.status)
        self.served[counted] = self.served.get(counted, 0) + 1
        return answer

    def metrics(self, pod_name: str) -> Response:
        lines = [
            "# HELP http_requests_total Requests answered, by method, path and status code.",
            "# TYPE http_requests_total counter",
        ]
        for (pod, method, path, code), count in sorted(self.served.items()):
            if pod == pod_name:
                lines.append(f'http_requests_total{{method="{method}",path="{path}",code="{code}"}} {count}')
        text = "\n".join(lines) + "\n"
        return Response(200, text.encode(), {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    def _respond(self, pod: dict[str, Any], method: str, path: str, body: Any) -> Response:
        behaviour = self.behaviour(pod)
        version = (pod["metadata"].get("labels") or {}).get(VERSION_LABEL, "")
        self.answered[version] = self.answered.get(version, 0) + 1
        if behaviour == "degrading" and self.answered[version] > self.degrade_after:
            return Response(500, {"detail": "Internal Server Error"})
        if behaviour == "hiccup" and self.answered[version] % self.hiccup_every == 0:
            return Response(503, {"detail": "Service Unavailable"})
        if behaviour == "slow":
            time.sleep(self.slow_ms / 1000)
        if behaviour == "garbage":
            return Response(200, b"<html>502 Bad Gateway</html>")
        handler = ROUTES.get((method, path))
        if handler is None:
            return Response(404, {"detail": "Not Found"})
        return handler(pod, behaviour, body)


class Proxy:
    def __init__(self, cluster: KubeEmulator) -> None:
        self.cluster = cluster
        self.apps = Applications()
        self._turn = itertools.count()
        self.backends: dict[tuple[str, str], EmulatorServer] = {}

    def handle(self, match: re.Match[str], request: Request) -> Response:
        namespace, name = match["ns"], match["name"]
        if match["kind"] == "services" and (backend := self.backends.get((namespace, name))):
            return backend.handle(replace(request, path=match["path"] or "/"))
        if match["kind"] == "services":
            service = self.cluster.get("Service", namespace, name)
            if service is None:
                return _status(404, "NotFound", f'services "{name}" not found')
            if not _port_of(service, match["port"]):
                return _status(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
            ready = self.cluster.endpoints.ready_pods(namespace, name)
            if not ready:
                return _status(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
            pod = ready[next(self._turn) % len(ready)]  # the API server picks one endpoint per request
        else:
            found = self.cluster.get("Pod", namespace, name)
            if found is None:
                return _status(404, "NotFound", f'pods "{name}" not found')
            pod = found
        address = pod["status"].get("podIP", "10.0.1.17")
        if self.apps.unreachable:
            message = f"error trying to reach service: dial tcp {address}:8000: i/o timeout"
            return _status(503, "ServiceUnavailable", message)
        if self.apps.mtls_strict:
            message = (
                f"error trying to reach service: read tcp 172.16.0.10:51234->{address}:8000: "
                "read: connection reset by peer"
            )
            return _status(503, "ServiceUnavailable", message)
        return self._application(pod, request.method, match["path"] or "/", request)

    def _application(self, pod: dict[str, Any], method: str, path: str, request: Request) -> Response:
        body = request.json() if request.body else None
        call = Call(pod["metadata"]["name"], method, path, body)
        self.apps.calls.append(call)
        answer = self.apps.answer(pod, method, path, body)
        call.at, call.status = time.perf_counter(), answer.status
        return answer


def _health(pod: dict[str, Any], behaviour: str, body: Any) -> Response:
    del pod, body
    if behaviour == "unhealthy":
        return Response(503, {"status": "loading model"})
    return Response(200, {"status": "ok"})


def _predict(pod: dict[str, Any], behaviour: str, body: Any) -> Response:
    if behaviour == "broken_predict":
        return Response(500, {"detail": "Internal Server Error"})
    if not isinstance(body, dict) or "inputs" not in body:
        return Response(422, {"detail": [{"loc": ["body", "inputs"], "msg": "field required"}]})
    variables = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}
    shift = {"drifted": DRIFT, "nudged": 0.004}.get(behaviour, 0.0)
    prediction = [round(sum(map(float, row)) / max(len(row), 1) + shift, 4) for row in body["inputs"]]
    return Response(
        200, {"model": "model-api", "version": variables.get("APP_VERSION", ""), "predictions": prediction}
    )


ROUTES: dict[tuple[str, str], Callable[[dict[str, Any], str, Any], Response]] = {
    ("GET", "/health/ready"): _health,
    ("GET", "/health/live"): _health,
    ("POST", "/predict"): _predict,
}


def _port_of(service: dict[str, Any], port: str | None) -> bool:
    ports = service["spec"].get("ports") or []
    if port is None:
        return bool(ports)
    return any(port in (str(p.get("port")), p.get("name")) for p in ports)


def _status(code: int, reason: str, message: str) -> Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip
    return Response(code, body)
