"""Proving a rollout through the Kubernetes API, and explaining one that failed.

The rollout is followed with two watches (the Deployment, and the pods its selector
matches) feeding one queue, so the verdict is re-evaluated the moment anything changes: a
crash loop is reported as soon as the kubelet reports it, not at the next poll. The watches
survive the server closing them or forgetting old versions (``Cluster.watch``). Objects stay
the API's JSON and are judged by the pure functions in ``rollout.py``.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from releasegate.core.errors import NeedsAttention, Refused
from releasegate.core.rollout import (
    UNSCHEDULABLE_SECONDS,
    PodProblem,
    Verdict,
    evaluate,
    is_ready,
    unschedulable,
)
from releasegate.kube.api import (
    DEPLOYMENTS,
    EVENTS,
    PODS,
    Cluster,
    WatchEvent,
    WatchStop,
    translated_errors,
)

ENDPOINT_SLICES = "/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices"
ENDPOINTS_POLL_SECONDS = 0.2
LOG_LINES = 20
EVENTS_PER_POD = 5
HEARTBEAT_SECONDS = 5.0
SCALE_UP_POLL_SECONDS = 2.0  # how often the Events of a pod waiting for a node are read
Snapshot = tuple[dict[str, Any], dict[str, dict[str, Any]]]  # the Deployment, its pods by name


def workload(
    cluster: Cluster, namespace: str, name: str
) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The Deployment (None when there is none) and the pods its selector matches."""
    from kubernetes.client.exceptions import ApiException

    with translated_errors("cannot read", namespace, Refused):
        try:
            deployment = cluster.get(f"{DEPLOYMENTS.format(namespace=namespace)}/{name}")
        except ApiException as exc:
            if exc.status == 404:
                return None, []
            raise
        pods = cluster.get(PODS.format(namespace=namespace), labelSelector=_selector(deployment))["items"]
        return deployment, pods


def wait_for_rollout(
    cluster: Cluster,
    namespace: str,
    name: str,
    image: str,
    timeout: float,
    on_progress: Callable[[str], None],
    unschedulable_timeout: float = UNSCHEDULABLE_SECONDS,
) -> Verdict:
    deadline = time.monotonic() + timeout
    with translated_errors("cannot watch the rollout in", namespace, NeedsAttention):
        deployment = cluster.get(f"{DEPLOYMENTS.format(namespace=namespace)}/{name}")
        listing = cluster.get(PODS.format(namespace=namespace), labelSelector=_selector(deployment))
        pods = {p["metadata"]["name"]: p for p in listing["items"]}
        verdict = evaluate(deployment, list(pods.values()), image, unschedulable_timeout)
        if verdict.state != "progressing":  # already settled: nothing to watch
            on_progress(verdict.summary)
            return verdict
        streams = {
            "deployment": (
                DEPLOYMENTS.format(namespace=namespace),
                deployment["metadata"]["resourceVersion"],
                {"fieldSelector": f"metadata.name={name}"},
            ),
            "pod": (
                PODS.format(namespace=namespace),
                listing["metadata"]["resourceVersion"],
                {"labelSelector": _selector(deployment)},
            ),
        }
        judge = _Judge(cluster, namespace, image, unschedulable_timeout)
        with _watching(cluster, streams, deadline) as events:
            return _follow(events, (deployment, pods), judge, deadline, on_progress)


def wait_for_endpoints(
    cluster: Cluster,
    namespace: str,
    service: str,
    selector: dict[str, str],
    image: str,
    timeout: float,
    on_progress: Callable[[str], None],
) -> int:
    """Until Service ``service``'s EndpointSlices list as ready exactly the Ready pods on
    ``image`` that ``selector`` matches; returns how many. The API server's proxy, kube-proxy and load
    balancers send traffic to those slices, which the endpointslice controller rewrites a moment
    after a selector changes: until then users still reach the old pods (or none)."""
    deadline = time.monotonic() + timeout
    heartbeat = time.monotonic() + HEARTBEAT_SECONDS
    labels = ",".join(f"{k}={v}" for k, v in selector.items())
    with translated_errors("cannot read the endpoints of the Services in", namespace, NeedsAttention):
        while True:
            listed = _ready_endpoints(cluster, namespace, service)
            pods = cluster.get(PODS.format(namespace=namespace), labelSelector=labels)["items"]
            wanted = {p["status"]["podIP"] for p in pods if _serves(p, image) and p["status"].get("podIP")}
            if wanted and listed == wanted:
                return len(wanted)
            now = time.monotonic()
            if now > deadline:
                raise NeedsAttention(
                    f"Service {service} did not move to the new pods within {timeout:.0f}s: its endpoints "
                    f"list {len(listed & wanted)} of the {len(wanted)} new Ready pods and "
                    f"{len(listed - wanted)} others",
                    "check the endpointslice controller (kube-controller-manager), then deploy again",
                )
            if now > heartbeat:
                on_progress(
                    f"waiting for Service {service}'s endpoints: {len(listed & wanted)} of {len(wanted)}"
                )
                heartbeat = now + HEARTBEAT_SECONDS
            time.sleep(ENDPOINTS_POLL_SECONDS)


def _serves(pod: dict[str, Any], image: str) -> bool:
    return is_ready(pod) and pod["spec"]["containers"][0]["image"] == image


def _ready_endpoints(cluster: Cluster, namespace: str, service: str) -> set[str]:
    slices = cluster.get(
        ENDPOINT_SLICES.format(namespace=namespace), labelSelector=f"kubernetes.io/service-name={service}"
    )
    return {
        address
        for piece in slices["items"]
        for endpoint in piece.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint.get("addresses") or []
    }


@contextmanager
def _watching(
    cluster: Cluster, streams: dict[str, tuple[str, str, dict[str, str]]], deadline: float
) -> Iterator[queue.Queue[tuple[str, WatchEvent | Exception]]]:
    events: queue.Queue[tuple[str, WatchEvent | Exception]] = queue.Queue()
    done = WatchStop()

    def pump(source: str, path: str, version: str, selectors: dict[str, str]) -> None:
        try:
            for event in cluster.watch(path, version, deadline, done, **selectors):
                events.put((source, event))
        except Exception as exc:  # surfaced to the follower, which decides what it means
            events.put((source, exc))

    for source, (path, version, selectors) in streams.items():
        # Daemon threads: a watch blocked in a read must not keep the process alive.
        threading.Thread(target=pump, args=(source, path, version, selectors), daemon=True).start()
    try:
        yield events
    finally:
        done.set()  # and each watch's read is cut: no thread outlives the rollout


class _Judge:
    """The verdict on the watched state: ``rollout.evaluate``, and for pods waiting for a node,
    whether the cluster autoscaler has said it will not add one (an Event, read every few s)."""

    def __init__(self, cluster: Cluster, namespace: str, image: str, unschedulable_timeout: float) -> None:
        self.cluster, self.namespace, self.image = cluster, namespace, image
        self.unschedulable_timeout = unschedulable_timeout
        self.events_read = 0.0

    def __call__(self, deployment: dict[str, Any], pods: dict[str, dict[str, Any]]) -> Verdict:
        verdict = evaluate(deployment, list(pods.values()), self.image, self.unschedulable_timeout)
        waiting = [name for name, pod in pods.items() if unschedulable(pod) is not None]
        if verdict.state != "progressing" or not waiting:
            return verdict
        if time.monotonic() - self.events_read < SCALE_UP_POLL_SECONDS:
            return verdict
        self.events_read = time.monotonic()
        refusal = self._no_scale_up(waiting)
        if refusal is None:
            return verdict
        summary = f"{refusal.pod}: {refusal.reason}: {refusal.explanation}"
        return Verdict("failed", summary, verdict.ready, verdict.desired, (refusal,))

    def _no_scale_up(self, pods: list[str]) -> PodProblem | None:
        for pod in pods:
            selector = f"involvedObject.name={pod},reason=NotTriggerScaleUp"
            found = self.cluster.get(EVENTS.format(namespace=self.namespace), fieldSelector=selector)["items"]
            if found:
                message = str(found[-1].get("message") or "")
                explanation = f"the cluster autoscaler will not add a node for it ({message})"
                return PodProblem(pod, "", "NotTriggerScaleUp", message, explanation)
        return None


def _follow(
    events: queue.Queue[tuple[str, WatchEvent | Exception]],
    snapshot: Snapshot,
    judge: _Judge,
    deadline: float,
    on_progress: Callable[[str], None],
) -> Verdict:
    deployment, pods = snapshot
    verdict = judge(deployment, pods)
    shown = verdict.summary
    on_progress(shown)  # where it stands from the start (a pod no node takes: said at once)
    heartbeat = time.monotonic() + HEARTBEAT_SECONDS
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Verdict("failed", f"timed out: {verdict.summary}", verdict.ready, verdict.desired)
        try:
            source, event = events.get(timeout=min(remaining, SCALE_UP_POLL_SECONDS))
        except queue.Empty:  # nothing changed, but time passes: a pod may have waited too long
            verdict = judge(deployment, pods)
            if verdict.state != "progressing":
                return verdict
            if time.monotonic() >= heartbeat:
                on_progress(f"still waiting: {verdict.summary}")
                heartbeat = time.monotonic() + HEARTBEAT_SECONDS
            continue
        if isinstance(event, Exception):
            raise event
        deployment = _apply(source, event, deployment, pods)
        verdict = judge(deployment, pods)
        if verdict.summary != shown:
            shown = verdict.summary
            on_progress(shown)
            heartbeat = time.monotonic() + HEARTBEAT_SECONDS
        elif time.monotonic() >= heartbeat:  # events that change nothing said (status, bookmarks)
            on_progress(f"still waiting: {verdict.summary}")  # must not silence a long wait
            heartbeat = time.monotonic() + HEARTBEAT_SECONDS
        if verdict.state != "progressing":
            return verdict


def _apply(
    source: str, event: WatchEvent, deployment: dict[str, Any], pods: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """The watched state after ``event``: the Deployment returned, the pods updated in place."""
    if source == "deployment":
        if event.type == "SYNC":
            if not event.items:
                raise NeedsAttention("the Deployment was deleted during the rollout", "look at the cluster")
            return event.items[0]
        if event.type == "DELETED":
            raise NeedsAttention("the Deployment was deleted during the rollout", "look at the cluster")
        return event.obj
    if event.type == "SYNC":
        pods.clear()
        pods.update({p["metadata"]["name"]: p for p in event.items})
    elif event.type == "DELETED":
        pods.pop(event.obj["metadata"]["name"], None)
    else:
        pods[event.obj["metadata"]["name"]] = event.obj
    return deployment


def diagnose(cluster: Cluster, namespace: str, verdict: Verdict, image: str) -> list[str]:
    """Events and log tails that explain a failed or stuck rollout (best effort)."""
    problems = list(verdict.problems) or _unready_pods(cluster, namespace, image)
    lines: list[str] = []
    for problem in _one_per_pod(problems)[:3]:
        lines.append(f"pod {problem.pod}: {problem.reason}: {problem.message or problem.explanation}")
        lines += [f"  event: {e}" for e in _warning_events(cluster, namespace, problem.pod)]
        lines += [f"  log: {line}" for line in _log_tail(cluster, namespace, problem)]
    return lines


def _unready_pods(cluster: Cluster, namespace: str, image: str) -> list[PodProblem]:
    try:
        pods = cluster.get(PODS.format(namespace=namespace))["items"]
    except Exception:  # diagnosis is best effort: the failure itself is already known
        return []
    return [
        PodProblem(p["metadata"]["name"], "", "NotReady", "", "the pod never became Ready")
        for p in pods
        if any(c.get("image") == image for c in p["spec"]["containers"]) and not is_ready(p)
    ]


def _warning_events(cluster: Cluster, namespace: str, pod: str) -> list[str]:
    try:
        path = EVENTS.format(namespace=namespace)
        items = cluster.get(path, fieldSelector=f"involvedObject.name={pod}")["items"]
    except Exception:
        return []
    warnings = [e for e in items if e.get("type") == "Warning"]
    warnings.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
    return [
        f"{e.get('reason')}: {e.get('message')} (x{e.get('count', 1)})" for e in warnings[-EVENTS_PER_POD:]
    ]


def _log_tail(cluster: Cluster, namespace: str, problem: PodProblem) -> list[str]:
    try:
        text = cluster.call(
            "GET",
            f"{PODS.format(namespace=namespace)}/{problem.pod}/log",
            container=problem.container or None,
            tailLines=LOG_LINES,
            previous="true" if problem.restarts > 0 else None,  # the crashed run's output
        )
    except Exception:  # no logs yet (the image was never pulled): nothing to show
        return []
    return str(text).splitlines()[-LOG_LINES:]


def _one_per_pod(problems: list[PodProblem]) -> list[PodProblem]:
    seen: dict[str, PodProblem] = {}
    for problem in problems:
        seen.setdefault(problem.pod, problem)
    return list(seen.values())


def _selector(deployment: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
