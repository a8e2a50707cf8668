"""The Kubernetes API of one kube-context, through the official client's ``ApiClient``.

``Cluster`` is the small API object the ledger, the lock and the rollout follower share:
one request (``call``), a watch that keeps going (``watch``), and the pre-flight checks.
Requests go through the client's ``ApiClient`` (kubeconfig, auth, TLS) but not through the
generated ``CoreV1Api``/``AppsV1Api`` classes: importing those costs over half a second, for
the handful of paths used here. Objects stay the API's JSON.

What the real API server does, and how it is handled here:
- transient failures (5xx, 429, a reset connection) happen; a request is retried a few
  times with a short backoff when the caller says it is safe (``retry=True``);
- a watch ends whenever the server or a load balancer closes it, cleanly or not: ``watch``
  resumes from the last resourceVersion it saw; when that version is too old (410 Gone) it
  lists again and carries on from the list, so the caller never misses a change.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from releasegate.core.errors import NeedsAttention, Refused

DEPLOYMENTS = "/apis/apps/v1/namespaces/{namespace}/deployments"
PODS = "/api/v1/namespaces/{namespace}/pods"
SERVICES = "/api/v1/namespaces/{namespace}/services"
EVENTS = "/api/v1/namespaces/{namespace}/events"
NAMESPACES = "/api/v1/namespaces"
RETRY_DELAYS = (0.2, 0.5, 1.0)  # seconds before each retry of a transient failure
WATCH_SECONDS = 240  # the server-side timeout asked for one watch request
REQUESTS_AT_ONCE = 8  # below the Kubernetes client's pool of 10 connections
Item = TypeVar("Item")
Answer = TypeVar("Answer")


def at_once(request: Callable[[Item], Answer], items: Iterable[Item]) -> list[Answer]:
    """``request`` for every item concurrently (a few at a time), the answers in the items'
    order: independent requests cost one round trip, not one each. The first failure is
    raised once all have ended."""
    from concurrent.futures import ThreadPoolExecutor

    listed = list(items)
    if len(listed) <= 1:
        return [request(item) for item in listed]
    with ThreadPoolExecutor(max_workers=min(len(listed), REQUESTS_AT_ONCE)) as pool:
        return list(pool.map(request, listed))


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, or SYNC: ``items`` is the whole list again
    obj: dict[str, Any]
    items: tuple[dict[str, Any], ...] = ()


class Cluster:
    """One kube-context (None: the current one in KUBECONFIG). The client is created lazily."""

    def __init__(self, context: str | None) -> None:
        self.context = context
        self._client: Any = None
        self._creating = threading.Lock()  # checks run in a thread beside the pre-flight
        # Each group/version's kinds, as discovery listed them (serverside.Resources fills it).
        self.discovered: dict[str, dict[str, tuple[str, bool]]] = {}

    def _api(self) -> Any:
        with self._creating:
            return self._created()

    def prepare(self) -> None:
        """Create the client (and import what every request needs) now, in this thread."""
        import concurrent.futures  # noqa: F401 (permissions.missing's pool)

        from kubernetes.client.exceptions import ApiException  # noqa: F401 (every call's errors)

        try:
            self._api()
        except Refused:
            return  # no configuration: the checks that need it say so themselves

    def _created(self) -> Any:
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

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        timeout: float | tuple[float, float] | None = 15,
        stream: bool = False,
        retry: bool = False,
        content_type: str = "application/json",
        **query: Any,
    ) -> Any:
        """One API request: the decoded JSON, a log's text, or (stream) the open response.
        Raises the client's ApiException on an error status. ``retry``: the request is safe to
        repeat, so a transient failure is retried a few times before it is raised."""
        for delay in (*RETRY_DELAYS, None) if retry else (None,):
            try:
                return self._call_once(method, path, body, timeout, stream, content_type, query)
            except Exception as exc:
                if delay is None or not is_transient(exc):
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _call_once(
        self,
        method: str,
        path: str,
        body: Any,
        timeout: float | tuple[float, float] | None,
        stream: bool,
        content_type: str,
        query: dict[str, Any],
    ) -> Any:
        from kubernetes.client.exceptions import ApiException

        response = self._send(method, path, body, timeout, content_type, query)
        if stream and 200 <= response.status < 300:
            return response.response
        data = response.read()
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return json.loads(data) if "json" in (response.getheader("Content-Type") or "") else data.decode()

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        timeout: float | tuple[float, float] | None,
        content_type: str,
        query: dict[str, Any],
    ) -> Any:
        client = self._api()
        headers = {"Accept": "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = client.param_serialize(
            method,
            path,
            query_params=[(k, v) for k, v in query.items() if v is not None],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return client.call_api(method, url, headers, body, _request_timeout=timeout)

    def raw(
        self, method: str, path: str, body: Any = None, timeout: float = 30, **query: Any
    ) -> tuple[int, bytes]:
        """One request whatever its answer: the status and the body (the service proxy's answers
        are the application's, not the API's)."""
        response = self._send(method, path, body, timeout, "application/json", query)
        return response.status, response.read()

    def get(self, path: str, **query: Any) -> Any:
        """A read, retried on transient failures (reads are always safe to repeat)."""
        return self.call("GET", path, retry=True, **query)

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        """One object, or None when it does not exist (404)."""
        from kubernetes.client.exceptions import ApiException

        try:
            return dict(self.get(path))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def watch(
        self,
        path: str,
        resource_version: str,
        deadline: float,
        stop: WatchStop | None = None,
        **selectors: str,
    ) -> Iterator[WatchEvent]:
        """Every change to the collection at ``path`` after ``resource_version``, until the
        monotonic ``deadline`` or ``stop``, across as many watch requests as it takes."""
        stop = stop or WatchStop()
        failures = 0
        while not stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            seconds = max(1, min(int(remaining) + 1, WATCH_SECONDS))
            try:
                for event in self._watch_once(path, resource_version, seconds, stop, **selectors):
                    failures = 0
                    resource_version = event.obj["metadata"].get("resourceVersion") or resource_version
                    if event.type == "BOOKMARK":  # only a newer resourceVersion to resume from
                        continue
                    yield event
                    if stop.is_set():
                        return
            except _Gone:
                listing = self.get(path, **selectors)  # too old to resume: start again from a list
                yield WatchEvent("SYNC", listing, tuple(listing.get("items") or ()))
                resource_version = listing["metadata"]["resourceVersion"]
            except Exception as exc:
                if stop.is_set():  # the read was cut on purpose
                    return
                failures += 1
                if not is_transient(exc) or failures > len(RETRY_DELAYS):
                    raise
                time.sleep(RETRY_DELAYS[failures - 1])
            # Otherwise the server ended the watch (its timeout, an upgrade, a proxy): resume.

    def _watch_once(
        self, path: str, resource_version: str, seconds: int, stop: WatchStop, **selectors: str
    ) -> Iterator[WatchEvent]:
        from kubernetes.client.exceptions import ApiException

        query: dict[str, Any] = dict(selectors)
        try:
            response = self.call(
                "GET",
                path,
                # Connect quickly; a read that stays silent past the server's own timeout means
                # the connection is dead without anyone having said so.
                timeout=(10, seconds + 10),
                stream=True,
                watch="true",
                resourceVersion=resource_version,
                timeoutSeconds=seconds,
                allowWatchBookmarks="true",
                **query,
            )
        except ApiException as exc:
            if exc.status == 410:
                raise _Gone from exc
            raise
        try:
            with stop.reading(response):
                for line in _lines(response):
                    event = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        if status.get("code") == 410:
                            raise _Gone
                        raise ApiException(status=status.get("code"), reason=status.get("message"))
                    yield WatchEvent(event["type"], event["object"])
        finally:
            response.release_conn()

    def check_access(self, namespace: str) -> None:
        """Fail before any change when the cluster cannot be reached or read."""
        with translated_errors("cannot read Deployments in", namespace, Refused):
            self.call("GET", DEPLOYMENTS.format(namespace=namespace), timeout=10, retry=True, limit=1)

    def namespace_exists(self, namespace: str) -> bool | None:
        """Whether the namespace exists; None when this identity may not read namespaces
        (a deploy role scoped to its namespace usually may not)."""
        from kubernetes.client.exceptions import ApiException

        with translated_errors("cannot read the namespace", namespace, Refused):
            try:
                self.get(f"{NAMESPACES}/{namespace}")
            except ApiException as exc:
                if exc.status == 404:
                    return False
                if exc.status == 403:
                    return None
                raise
        return True

    def create_namespace(self, namespace: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        with translated_errors("cannot create the namespace", namespace, Refused):
            self.call("POST", NAMESPACES, body=body, retry=True)


class WatchStop:
    """Ends watches: seen between events, and cutting a read that is blocked waiting for the
    next one (else a watch thread would outlive its rollout until the server's timeout)."""

    def __init__(self) -> None:
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._reading: set[Any] = set()

    def is_set(self) -> bool:
        return self._stopped.is_set()

    def set(self) -> None:
        with self._lock:
            self._stopped.set()
            for response in self._reading:
                _cut(response)

    @contextmanager
    def reading(self, response: Any) -> Iterator[None]:
        with self._lock:
            if self._stopped.is_set():
                _cut(response)
            self._reading.add(response)
        try:
            yield
        finally:
            with self._lock:
                self._reading.discard(response)


def _cut(response: Any) -> None:
    """Unblock a read in progress on ``response`` from another thread: urllib3 2.3's
    shutdown() does exactly that; close() is the best older versions offer."""
    with contextlib.suppress(Exception):
        (getattr(response, "shutdown", None) or response.close)()


class _Gone(Exception):
    """The resourceVersion a watch resumed from is older than the server keeps (410)."""


def _lines(response: Any) -> Iterator[bytes]:
    """Newline-delimited JSON from a chunked response, as each chunk arrives."""
    pending = b""
    for chunk in response.stream(amt=None, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from (line for line in complete if line.strip())
    if pending.strip():
        yield pending


def is_transient(exc: BaseException) -> bool:
    """An error worth one more try: the server was busy or the connection broke."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    if isinstance(exc, ApiException):
        return exc.status is not None and (exc.status >= 500 or exc.status == 429)
    return isinstance(exc, HTTPError | ConnectionError | json.JSONDecodeError)


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
