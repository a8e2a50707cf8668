"""The Kubernetes API through the official client: access check, rollout watch, diagnosis.

The rollout is followed with two API watches (the Deployment, and the pods its selector
matches) feeding one queue, so the verdict is re-evaluated the moment anything changes: a
crash loop is reported as soon as the kubelet reports it, not at the next poll. Objects are
kept as the API's JSON and judged by the pure functions in ``rollout.py``.

Requests go through the official client's ``ApiClient`` (kubeconfig, auth, TLS) and its
``Watch``, but not through the generated ``CoreV1Api``/``AppsV1Api`` classes: importing
those costs over half a second, for the handful of GET paths used here.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import NeedsAttention, Refused
from .rollout import PodProblem, Verdict, evaluate, is_ready

DEPLOYMENTS = "/apis/apps/v1/namespaces/{namespace}/deployments"
PODS = "/api/v1/namespaces/{namespace}/pods"
EVENTS = "/api/v1/namespaces/{namespace}/events"
LOG_LINES = 20
EVENTS_PER_POD = 5
HEARTBEAT_SECONDS = 5.0


class Cluster:
    """One kube-context (None: the current one in KUBECONFIG). The client is created lazily."""

    def __init__(self, context: str | None) -> None:
        self.context = context
        self._client: Any = None

    def _api(self) -> Any:
        if self._client is None:
            from kubernetes import config
            from kubernetes.config.config_exception import ConfigException

            # KUBECONFIG is read here, not at import time as the client's default does.
            location = os.environ.get("KUBECONFIG") or None
            try:
                self._client = config.new_client_from_config(config_file=location, context=self.context)
            except (ConfigException, OSError) as exc:
                where = location or "~/.kube/config"
                raise Refused(
                    f"no usable Kubernetes configuration in {where} ({exc})".replace("\n", " "),
                    "set KUBECONFIG, or run `aws eks update-kubeconfig`",
                ) from exc
        return self._client

    def _request(self, path: str, timeout: float | None = 15, stream: bool = False, **query: Any) -> Any:
        """GET one API path: the decoded JSON, a log's text, or (stream) the open response."""
        return self.call("GET", path, timeout=timeout, stream=stream, **query)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float | None = 15,
        stream: bool = False,
        **query: Any,
    ) -> Any:
        """One API request; raises the client's ApiException on an error status."""
        from kubernetes.client.exceptions import ApiException

        client = self._api()
        headers = {"Accept": "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        method, url, headers, body, _ = client.param_serialize(
            method,
            path,
            query_params=[(k, v) for k, v in query.items() if v is not None],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = client.call_api(method, url, headers, body, _request_timeout=timeout)
        if stream and 200 <= response.status < 300:
            return response.response
        data = response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(data) if "json" in (response.getheader("Content-Type") or "") else data.decode()

    def _list_function(self, path: str) -> Callable[..., Any]:
        """A list function of the shape ``kubernetes.watch.Watch.stream`` calls."""

        def list_objects(watch: bool, _preload_content: bool, timeout_seconds: int, **selectors: str) -> Any:
            del _preload_content  # always streamed
            query = {"watch": str(watch).lower(), "timeoutSeconds": timeout_seconds, **selectors}
            return self._request(path, timeout=timeout_seconds + 5, stream=True, **query)

        return list_objects

    def check_access(self, namespace: str) -> None:
        """Fail before any change when the cluster cannot be reached or read."""
        with translated_errors("cannot read Deployments in", namespace, Refused):
            self._request(DEPLOYMENTS.format(namespace=namespace), timeout=10, limit=1)

    def workload(self, namespace: str, name: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The Deployment (None when there is none) and the pods its selector matches."""
        from kubernetes.client.exceptions import ApiException

        with translated_errors("cannot read", namespace, Refused):
            try:
                deployment = self._request(f"{DEPLOYMENTS.format(namespace=namespace)}/{name}")
            except ApiException as exc:
                if exc.status == 404:
                    return None, []
                raise
            selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
            return deployment, self._request(PODS.format(namespace=namespace), labelSelector=selector)[
                "items"
            ]

    def wait_for_rollout(
        self, namespace: str, name: str, image: str, timeout: float, on_progress: Callable[[str], None]
    ) -> Verdict:
        deadline = time.monotonic() + timeout
        with translated_errors("cannot watch the rollout in", namespace, NeedsAttention):
            deployment = self._request(f"{DEPLOYMENTS.format(namespace=namespace)}/{name}")
            selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"]["matchLabels"].items())
            pods = self._request(PODS.format(namespace=namespace), labelSelector=selector)["items"]
            verdict = evaluate(deployment, pods, image)
            if verdict.state != "progressing":  # already settled: nothing to watch
                on_progress(verdict.summary)
                return verdict
            with self._watches(namespace, name, selector, timeout) as events:
                return _follow(events, deployment, image, deadline, on_progress)

    @contextmanager
    def _watches(
        self, namespace: str, name: str, selector: str, timeout: float
    ) -> Iterator[queue.Queue[Any]]:
        from kubernetes import watch

        events: queue.Queue[Any] = queue.Queue()
        streams = [
            ("deployment", DEPLOYMENTS, {"fieldSelector": f"metadata.name={name}"}),
            ("pod", PODS, {"labelSelector": selector}),
        ]
        watches = []
        for source, path, selectors in streams:
            stream = watch.Watch(return_type="object")  # no model classes: events stay JSON
            watches.append(stream)
            threading.Thread(
                target=_pump,
                args=(source, stream, self._list_function(path.format(namespace=namespace)), selectors),
                kwargs={"seconds": int(timeout) + 2, "out": events},
                daemon=True,  # a stream blocked in a read must not keep the process alive
            ).start()
        try:
            yield events
        finally:
            for stream in watches:
                stream.stop()

    def diagnose(self, namespace: str, verdict: Verdict, image: str) -> list[str]:
        """Events and log tails that explain a failed or stuck rollout (best effort)."""
        problems = list(verdict.problems) or self._unready_pods(namespace, image)
        lines: list[str] = []
        for problem in _one_per_pod(problems)[:3]:
            lines.append(f"pod {problem.pod}: {problem.reason}: {problem.message or problem.explanation}")
            lines += [f"  event: {e}" for e in self._warning_events(namespace, problem.pod)]
            lines += [f"  log: {line}" for line in self._log_tail(namespace, problem)]
        return lines

    def _unready_pods(self, namespace: str, image: str) -> list[PodProblem]:
        try:
            pods = self._request(PODS.format(namespace=namespace))["items"]
        except Exception:  # diagnosis is best effort: the failure itself is already known
            return []
        return [
            PodProblem(p["metadata"]["name"], "", "NotReady", "", "the pod never became Ready")
            for p in pods
            if any(c.get("image") == image for c in p["spec"]["containers"]) and not is_ready(p)
        ]

    def _warning_events(self, namespace: str, pod: str) -> list[str]:
        try:
            path = EVENTS.format(namespace=namespace)
            items = self._request(path, fieldSelector=f"involvedObject.name={pod}")["items"]
        except Exception:
            return []
        warnings = [e for e in items if e.get("type") == "Warning"]
        warnings.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        return [
            f"{e.get('reason')}: {e.get('message')} (x{e.get('count', 1)})"
            for e in warnings[-EVENTS_PER_POD:]
        ]

    def _log_tail(self, namespace: str, problem: PodProblem) -> list[str]:
        try:
            text = self._request(
                f"{PODS.format(namespace=namespace)}/{problem.pod}/log",
                container=problem.container or None,
                tailLines=LOG_LINES,
                previous="true" if problem.restarts > 0 else None,  # the crashed run's output
            )
        except Exception:  # no logs yet (the image was never pulled): nothing to show
            return []
        return str(text).splitlines()[-LOG_LINES:]


def _pump(
    source: str, stream: Any, list_fn: Any, selectors: dict[str, str], *, seconds: int, out: Any
) -> None:
    try:
        for event in stream.stream(list_fn, timeout_seconds=seconds, deserialize=False, **selectors):
            out.put((source, event["type"], event["object"]))
    except Exception as exc:  # surfaced to the follower, which decides what it means
        out.put((source, "ERROR", exc))


def _follow(
    events: queue.Queue[Any],
    deployment: dict[str, Any],
    image: str,
    deadline: float,
    on_progress: Callable[[str], None],
) -> Verdict:
    pods: dict[str, dict[str, Any]] = {}
    shown = ""
    verdict = evaluate(deployment, [], image)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return Verdict("failed", f"timed out: {verdict.summary}", verdict.ready, verdict.desired)
        try:
            source, kind, obj = events.get(timeout=min(remaining, HEARTBEAT_SECONDS))
        except queue.Empty:
            on_progress(f"still waiting: {verdict.summary}")
            continue
        if kind == "ERROR":
            raise obj
        if source == "deployment":
            deployment = obj
        elif kind == "DELETED":
            pods.pop(obj["metadata"]["name"], None)
        else:
            pods[obj["metadata"]["name"]] = obj
        verdict = evaluate(deployment, list(pods.values()), image)
        if verdict.summary != shown:
            shown = verdict.summary
            on_progress(shown)
        if verdict.state != "progressing":
            return verdict


def _one_per_pod(problems: list[PodProblem]) -> list[PodProblem]:
    seen: dict[str, PodProblem] = {}
    for problem in problems:
        seen.setdefault(problem.pod, problem)
    return list(seen.values())


@contextmanager
def translated_errors(
    action: str, namespace: str, error: type[Refused] | type[NeedsAttention]
) -> Iterator[None]:
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as exc:
        if exc.status in (401, 403):
            raise error(
                f"Kubernetes {action} namespace {namespace} ({exc.status} {exc.reason})",
                "check the kube-context's credentials and RBAC",
            ) from exc
        raise error(
            f"Kubernetes API error: {action} {namespace} ({exc.status} {exc.reason})", "check the cluster"
        ) from exc
    except HTTPError as exc:
        raise error(
            f"Kubernetes API unreachable ({exc.__class__.__name__})",
            "check KUBECONFIG and the cluster endpoint",
        ) from exc
