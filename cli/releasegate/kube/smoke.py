"""Smoke checks: requests to the release where it runs, before it is called good.

Each check goes through the Kubernetes API server's service proxy
(``/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``) with the kube-context's own
credentials: no port-forward, no public ingress, nothing more to open from a CI runner. The
API server picks one Ready endpoint per request; with ``each_pod`` every check goes to every
new pod instead (``pods/NAME:PORT/proxy``), so one bad pod cannot hide behind good ones.

A check is tried up to ``attempts`` times, ``interval`` seconds apart, and passes on the first
try whose status, latency (``max_ms``) and JSON (``expect_json``: every key given, equal, maps
compared the same way) are as expected. A 503 "error trying to reach service" means the control
plane cannot reach the pods at all: it is said at once, as that, instead of being blamed on the
release. Its cause is named from the dial error: a timeout or a refused connection is the
network (EKS: the cluster security group, an overlay CNI); a connection the pod accepted and
then reset is an Istio sidecar in STRICT mTLS mode refusing the API server's plaintext.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from releasegate.core.config import Smoke, SmokeCheck
from releasegate.core.errors import NeedsAttention
from releasegate.core.rollout import is_ready
from releasegate.kube.api import PODS, SERVICES, Cluster, translated_errors

BODY_START = 120
UNREACHABLE = "error trying to reach service"


@dataclass(frozen=True)
class Target:
    """Where the requests go: a Service (one endpoint per request) or one pod."""

    kind: str  # services | pods
    name: str
    port: str

    def path(self, namespace: str, path: str) -> str:
        return f"/api/v1/namespaces/{namespace}/{self.kind}/{self.name}:{self.port}/proxy{path}"

    def __str__(self) -> str:
        return f"{self.kind[:-1]} {self.name}:{self.port}"


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    status: int | None
    ms: int
    attempts: int
    target: str
    request: str
    problem: str = ""  # why the last try failed
    body_start: str = ""

    def as_dict(self) -> dict[str, Any]:
        found = {"name": self.name, "passed": self.passed, "status": self.status, "ms": self.ms}
        return {**found, "attempts": self.attempts, "target": self.target}


def run_checks(
    cluster: Cluster,
    namespace: str,
    service: str,
    smoke: Smoke,
    image: str,
    on_progress: Callable[[str], None],
) -> list[CheckResult]:
    """Every check against every target; raises NeedsAttention naming the first that fails
    (its result is in the error's ``results``)."""
    results: list[CheckResult] = []
    with translated_errors("cannot reach the Service for smoke checks in", namespace, NeedsAttention):
        targets = _targets(cluster, namespace, service, smoke, image)
    for target in targets:
        for check in smoke.checks:
            result = _run(cluster, namespace, target, check, smoke, on_progress)
            results.append(result)
            on_progress(_line(result))
            if not result.passed:
                raise SmokeFailed(result, results)
    return results


def _reset(text: str) -> bool:
    """The pod's side accepted the connection and dropped it: what a STRICT mTLS sidecar does."""
    return "connection reset by peer" in text or text.rstrip('"} \n').endswith(": EOF")


class SmokeFailed(NeedsAttention):
    def __init__(self, failed: CheckResult, results: list[CheckResult]) -> None:
        if failed.problem.startswith(UNREACHABLE):
            cause, hint = unreachable(failed.target, failed.problem)
            super().__init__(f"smoke check {failed.name!r}: {cause}", hint)
        else:
            super().__init__(
                f"smoke check {failed.name!r} failed after {failed.attempts} tries: {failed.request} via "
                f"{failed.target}: {failed.problem}"
                + (f": {failed.body_start}" if failed.body_start else ""),
                "fix the release (or the check in the environment file), then deploy again",
            )
        self.results = results


def unreachable(target: str, problem: str) -> tuple[str, str]:
    """(cause, hint) when the API server could not reach the pods behind ``target``: a reset
    connection is an Istio sidecar in STRICT mTLS mode; anything else is the network."""
    if "connection reset" in problem:
        return (
            f"the pods behind {target} reset the API server's connection ({problem}): an Istio sidecar "
            "in STRICT mTLS mode refuses plaintext from outside the mesh; this is the mesh's policy, "
            "not the release",
            "allow plaintext to the app's port (a PeerAuthentication with portLevelMtls PERMISSIVE "
            "for it, or the pod annotation traffic.sidecar.istio.io/excludeInboundPorts), "
            "or remove the smoke checks",
        )
    return (
        f"the API server cannot reach the pods behind {target} ({problem}); this is the cluster's "
        "network, not the release",
        "let the control plane reach the pods (EKS: allow the cluster security group to the "
        "nodes' pod port), or remove the smoke checks",
    )


def service_target(cluster: Cluster, namespace: str, name: str, wanted_port: int | str | None) -> Target:
    """Service ``name`` at ``wanted_port`` (number or name; None: its first port)."""
    service = cluster.get(f"{SERVICES.format(namespace=namespace)}/{name}")
    port = _service_port(service, wanted_port)
    return Target("services", name, str(port.get("name") or port["port"]))


def _targets(cluster: Cluster, namespace: str, name: str, smoke: Smoke, image: str) -> list[Target]:
    if not smoke.each_pod:
        return [service_target(cluster, namespace, name, smoke.service_port)]
    service = cluster.get(f"{SERVICES.format(namespace=namespace)}/{name}")
    port = _service_port(service, smoke.service_port)
    selector = ",".join(f"{k}={v}" for k, v in (service["spec"].get("selector") or {}).items())
    pods = cluster.get(PODS.format(namespace=namespace), labelSelector=selector)["items"]
    new = [p for p in pods if is_ready(p) and p["spec"]["containers"][0]["image"] == image]
    if not new:
        raise NeedsAttention(f"no Ready pod of Service {name} runs {image}", "look at the rollout")
    return [Target("pods", p["metadata"]["name"], str(_container_port(p, port))) for p in new]


def _service_port(service: dict[str, Any], wanted: int | str | None) -> dict[str, Any]:
    ports = service["spec"].get("ports") or []
    for port in ports:
        if wanted is None or str(wanted) in (str(port.get("port")), port.get("name")):
            return dict(port)
    name = service["metadata"]["name"]
    raise NeedsAttention(
        f"Service {name} has no port {wanted}", "fix smoke.service_port in the environment file"
    )


def _container_port(pod: dict[str, Any], service_port: dict[str, Any]) -> int:
    """The pod's port a Service port leads to (its targetPort, by number or by name)."""
    target = service_port.get("targetPort", service_port["port"])
    if isinstance(target, int) or str(target).isdigit():
        return int(target)
    for container in pod["spec"]["containers"]:
        for port in container.get("ports") or []:
            if port.get("name") == target:
                return int(port["containerPort"])
    raise NeedsAttention(f"pod {pod['metadata']['name']} has no port named {target}", "fix the Service")


def _run(
    cluster: Cluster,
    namespace: str,
    target: Target,
    check: SmokeCheck,
    smoke: Smoke,
    on_progress: Callable[[str], None],
) -> CheckResult:
    request = f"{check.method} {check.path}"
    status: int | None = None
    problem, body_start, ms = "", "", 0
    for attempt in range(1, smoke.attempts + 1):
        started = time.monotonic()
        try:
            status, body = cluster.raw(check.method, target.path(namespace, check.path), check.body)
            ms = round((time.monotonic() - started) * 1000)
            problem = judge(check, status, body, ms)
            body_start = _start(body)
        except Exception as exc:  # a broken connection is a failed try, like a 5xx
            ms, problem, body_start = round((time.monotonic() - started) * 1000), exc.__class__.__name__, ""
        if not problem:
            return CheckResult(check.name, True, status, ms, attempt, str(target), request)
        if problem.startswith(UNREACHABLE) or attempt == smoke.attempts:
            break
        on_progress(f"{check.name}: try {attempt}/{smoke.attempts}: {problem}; again in {smoke.interval:g}s")
        time.sleep(smoke.interval)
    return CheckResult(check.name, False, status, ms, attempt, str(target), request, problem, body_start)


def judge(check: SmokeCheck, status: int, body: bytes, ms: int) -> str:
    """Why this answer fails the check ('' when it passes). Pure: tested without a server."""
    text = body.decode(errors="replace")
    if status == 503 and UNREACHABLE in text:
        return f"{UNREACHABLE} (503{', connection reset by the pod' if _reset(text) else ''})"
    if status != check.expect_status:
        return f"answered {status}, expected {check.expect_status}"
    if check.max_ms is not None and ms > check.max_ms:
        return f"took {ms} ms, more than max_ms {check.max_ms}"
    if check.expect_json is None:
        return ""
    try:
        answer = json.loads(body)
    except ValueError:
        return "answered something that is not JSON"
    return _mismatch(check.expect_json, answer, "")


def _mismatch(expected: dict[str, Any], answer: Any, where: str) -> str:
    if not isinstance(answer, dict):
        return f"expected an object{' at ' + where if where else ''}, got {type(answer).__name__}"
    for key, want in expected.items():
        path = f"{where}.{key}" if where else key
        if key not in answer:
            return f"the answer has no {path}"
        if isinstance(want, dict):
            if found := _mismatch(want, answer[key], path):
                return found
        elif answer[key] != want:
            return f"{path} is {json.dumps(answer[key])[:40]}, expected {json.dumps(want)[:40]}"
    return ""


def _start(body: bytes) -> str:
    text = " ".join(body.decode(errors="replace").split())
    return text[:BODY_START] + ("…" if len(text) > BODY_START else "")


def _line(result: CheckResult) -> str:
    mark = "passed" if result.passed else "FAILED"
    tries = f", {result.attempts} tries" if result.attempts > 1 else ""
    answer = f"{result.status} in {result.ms} ms{tries}"
    return f"{result.name} {mark}: {result.request} via {result.target} → {answer}"
