"""Kubernetes API emulator: the subset releasegate and Skaffold use, over real HTTP.

Namespaced CRUD for the kinds in ``kinds.py``, list and watch (chunked JSON event streams)
with label and field selectors, pod logs, bearer-token auth, Status errors, and a small
deployment controller (``kube_controller.py``) that turns Deployments into pods that become
Ready or fail per scenario. Served objects validate against the Kubernetes schemas
(``tests/test_kube_emulator.py``).

What a real API server does that clients trip over, kept here on purpose:
- namespaces exist or not: creating an object in a missing one is 404 ``namespaces "x" not
  found`` (listing in one is an empty list);
- a watch resumes from a ``resourceVersion``; one older than the server's event history
  (compacted) gets an ``ERROR`` event with a 410 Status, and the client must list again;
- watches end whenever the server likes (``faults.watch_seconds``: timeouts, control-plane
  upgrades, load-balancer idle limits), not only at ``timeoutSeconds``;
- writes fail now and then with a 5xx (``fail_next``);
- DELETE honours ``preconditions`` (uid, resourceVersion): 409 Conflict when they do not hold;
- PATCH takes a JSON merge patch or a JSON patch (RFC 6902: add, remove, replace, test), whose
  failed ``test`` or missing path is 422;
- custom resources (HTTPRoute, VirtualService) exist only where their CRD is installed
  (``uninstalled``: the bare "404 page not found" a missing API group gets), and are admitted as
  their schema and istiod's webhook do (``routes.py``).
"""

from __future__ import annotations

import copy
import itertools
import json
import queue
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import fieldmanager
from .authorization import REVIEWS, Authorizer
from .autoscalers import Autoscalers
from .endpoints import EndpointSliceController
from .gateway import GatewayController
from .http import RESET, EmulatorServer, Request, Response
from .kinds import BY_PATH, KINDS, api_version
from .kube_controller import DeploymentController
from .proxy import PROXY, Proxy
from .routes import Invalid, admit

PATH = re.compile(
    r"(?P<prefix>/api/v1|/apis/[^/]+/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)"
    r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>log|status))?"
)
NAMESPACE_PATH = re.compile(r"/api/v1/namespaces(?:/(?P<name>[^/]+))?")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
HISTORY = 500  # events kept for watches that resume from a resourceVersion
DEFAULT_NAMESPACES = ("default", "kube-system", "model-api-nonprod", "model-api-prod")
Key = tuple[str, str, str]  # kind, namespace, name


@dataclass
class Injected:
    status: int
    method: str
    path_part: str
    times: int


@dataclass
class Faults:
    # Every watch is closed by the server after this many seconds (None: at timeoutSeconds).
    watch_seconds: float | None = None
    # The next N watches that name a resourceVersion are answered with ERROR 410 Gone.
    gone: int = 0
    # Watches closed by watch_seconds end with a reset connection instead of a clean end.
    reset: bool = False
    errors: list[Injected] = field(default_factory=list)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class KubeEmulator(EmulatorServer):
    def __init__(
        self, token: str = "kube-emulator-token", registry_has: Callable[[str], bool] | None = None
    ) -> None:
        super().__init__()
        self.token = token
        self.lock = threading.RLock()
        self.objects: dict[Key, dict[str, Any]] = {}
        self.logs: dict[str, str] = {}
        self._watchers: list[tuple[str, str, Callable[[dict[str, Any]], bool], queue.Queue[Any]]] = []
        self._versions = itertools.count(1000)
        self.namespaces: set[str] = set(DEFAULT_NAMESPACES)
        self.history: deque[tuple[int, str, dict[str, Any]]] = deque(maxlen=HISTORY)
        self.faults = Faults()
        self.controller = DeploymentController(self, registry_has or (lambda image: True))
        self.proxy = Proxy(self)  # services/NAME:PORT/proxy and pods/NAME:PORT/proxy
        # Called with (event, object) after every change, under the lock: tests check an
        # invariant at every step instead of sampling it.
        self.observers: list[Callable[[str, dict[str, Any]], None]] = []
        # The endpointslice controller: the proxy picks from its slices, a moment after a change.
        self.endpoints = EndpointSliceController(self)
        self.observers.append(self.endpoints.observe)
        # The autoscaler controller: a HorizontalPodAutoscaler sets its target's count.
        self.autoscalers = Autoscalers(self)
        self.observers.append(self.autoscalers.observe)
        # A Gateway API implementation: it reports on each HTTPRoute (Accepted, ResolvedRefs).
        self.gateway = GatewayController(self)
        self.route_rule_names = True  # False: an HTTPRoute CRD that prunes rules' `name` (pre-GEP-995)
        self.observers.append(self.gateway.observe)
        self.uninstalled: set[str] = set()  # custom resource kinds whose CRD is not installed
        self.authorizer = Authorizer()  # what the identity may not do (authorization.py)

    # What tests look at.
    def writes(self) -> list[Request]:
        # A SelfSubjectAccessReview is a POST, but a question: it is stored nowhere.
        return [r for r in self.requests if r.method in WRITE_METHODS and r.path != REVIEWS]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.objects.get((kind, namespace, name))
            return copy.deepcopy(found) if found else None

    def list(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        with self.lock:
            return [
                copy.deepcopy(o)
                for (k, ns, _), o in sorted(self.objects.items())
                if k == kind and ns == namespace
            ]

    def fail_next(self, status: int, method: str, path_part: str, times: int = 1) -> None:
        """The next ``times`` requests with ``method`` whose path contains ``path_part`` fail."""
        self.faults.errors.append(Injected(status, method, path_part, times))

    def compact(self) -> None:
        """Forget the event history, as etcd compaction does: old resourceVersions are gone."""
        with self.lock:
            self.history.clear()
            next(self._versions)

    def write_kubeconfig(self, path: Path, context: str = "emulator") -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": self.token}}],
            "contexts": [{"name": context, "context": {"cluster": "emulator", "user": "emulator"}}],
            "current-context": context,
        }
        path.write_text(json.dumps(config, indent=2))
        return path

    # The store, used by the HTTP handlers and by the controller.
    def put(self, obj: dict[str, Any], event: str | None = None) -> dict[str, Any]:
        """Store an object (creating or replacing it) and notify watchers."""
        with self.lock:
            meta = obj["metadata"]
            key = (obj["kind"], meta["namespace"], meta["name"])
            old = self.objects.get(key)
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now())
            meta["resourceVersion"] = str(next(self._versions))
            self.objects[key] = obj
            self._notify(event or ("MODIFIED" if old else "ADDED"), obj)
            return copy.deepcopy(obj)

    def latest_version(self) -> int:
        with self.lock:
            return max((int(o["metadata"]["resourceVersion"]) for o in self.objects.values()), default=999)

    def delete(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.pop((kind, namespace, name), None)
            if obj:
                obj["metadata"]["resourceVersion"] = str(next(self._versions))
                self._notify("DELETED", obj)
            return obj

    def _notify(self, event: str, obj: dict[str, Any]) -> None:
        self.history.append((int(obj["metadata"]["resourceVersion"]), event, copy.deepcopy(obj)))
        for observer in self.observers:
            observer(event, obj)
        for kind, namespace, matches, events in list(self._watchers):
            if obj["kind"] == kind and obj["metadata"]["namespace"] == namespace and matches(obj):
                events.put({"type": event, "object": copy.deepcopy(obj)})

    # HTTP.
    def handle(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return _status(401, "Unauthorized", "Unauthorized")
        if request.path == REVIEWS and request.method == "POST":
            return self.authorizer.review(request.json())
        if refused := self.authorizer.refusal(request):
            return refused
        if injected := self._injected(request):
            return injected
        if namespace_match := NAMESPACE_PATH.fullmatch(request.path):
            return self._namespace(namespace_match["name"], request)
        if proxied := PROXY.fullmatch(request.path):
            return self.proxy.handle(proxied, request)
        if request.method == "GET" and (found := self._discovery(request.path)):
            return found
        match = PATH.fullmatch(request.path)
        if not match or (match["prefix"], match["plural"]) not in BY_PATH:
            return _status(
                404, "NotFound", f"the server could not find the requested resource {request.path}"
            )
        kind = BY_PATH[(match["prefix"], match["plural"])]
        if kind in self.uninstalled:  # no such API group: not even a Status object
            return Response(404, b"404 page not found\n")
        namespace, name = match["ns"], match["name"]
        if match["sub"] == "log":
            return self._log(namespace, name, request)
        if name is None:
            if request.method == "POST":
                return self._create(kind, namespace, request.json(), _manager(request))
            if request.method == "GET":
                return self._list_or_watch(kind, namespace, request)
            return _status(405, "MethodNotAllowed", f"{request.method} is not allowed on a collection")
        return self._one(kind, namespace, name, request)

    def _discovery(self, path: str) -> Response | None:
        """``/api/v1``, ``/apis/GROUP/VERSION``: the APIResourceList of what is served there;
        ``/apis/GROUP``: the APIGroup, with its preferred version."""
        served = [(kind, plural) for kind, (prefix, plural) in KINDS.items()
                  if prefix == path and kind not in self.uninstalled]  # fmt: skip
        installed = [prefix for kind, (prefix, _) in KINDS.items() if kind not in self.uninstalled]
        versions = sorted({prefix for prefix in installed if prefix.rpartition("/")[0] == path})
        if versions and path.startswith("/apis/"):
            group = path.removeprefix("/apis/")
            listed = [
                {"groupVersion": v.removeprefix("/apis/"), "version": v.rpartition("/")[2]} for v in versions
            ]
            return Response(200, {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": listed,
                                  "preferredVersion": listed[0]})  # fmt: skip
        if not served:
            return None
        resources = [{"name": plural, "singularName": kind.lower(), "namespaced": True, "kind": kind,
                      "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}
                     for kind, plural in served]  # fmt: skip
        group_version = path.removeprefix("/apis/").removeprefix("/api/")
        return Response(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                              "resources": resources})  # fmt: skip

    def _injected(self, request: Request) -> Response | None:
        for fault in self.faults.errors:
            if fault.times > 0 and fault.method == request.method and fault.path_part in request.path:
                fault.times -= 1
                return _status(fault.status, "InternalError", "etcdserver: request timed out (injected)")
        return None

    def _namespace(self, name: str | None, request: Request) -> Response:
        if name is None and request.method == "POST":
            name = str(request.json()["metadata"]["name"])
            if name in self.namespaces:
                return _status(409, "AlreadyExists", f'namespaces "{name}" already exists')
            self.namespaces.add(name)
            return Response(201, _namespace_object(name))
        if name is not None and request.method == "GET":
            if name not in self.namespaces:
                return _status(404, "NotFound", f'namespaces "{name}" not found')
            return Response(200, _namespace_object(name))
        return _status(405, "MethodNotAllowed", f"{request.method} {request.path} is not emulated")

    def _one(self, kind: str, namespace: str, name: str, request: Request) -> Response:
        current = self.get(kind, namespace, name)
        if current is None and request.method != "PATCH":
            return _not_found(kind, name)
        if request.method == "GET":
            return Response(200, current)
        if request.method == "DELETE":
            preconditions = (request.json() or {}).get("preconditions") or {}
            meta = current["metadata"]
            for field_name in ("uid", "resourceVersion"):
                if field_name in preconditions and preconditions[field_name] != meta[field_name]:
                    message = (f"Precondition failed: {field_name}: {preconditions[field_name]}, "
                               f"{field_name} in object meta: {meta[field_name]}")  # fmt: skip
                    return _status(409, "Conflict", message)
            self.delete(kind, namespace, name)
            if kind == "Deployment":  # apps/v1 deletes in the background: its pods go too
                self.controller.deleted(namespace, name)
            return Response(200, _status_body(200, "", f"{name} deleted", "Success"))
        if request.method == "PUT":
            return self._replace(kind, namespace, name, request.json(), current, _manager(request))
        if request.method == "PATCH":
            return self._patch(kind, namespace, name, request, current)
        return _status(405, "MethodNotAllowed", f"{request.method} is not allowed")

    def _create(
        self, kind: str, namespace: str, body: dict[str, Any], manager: str, dry_run: bool = False
    ) -> Response:
        if namespace not in self.namespaces:
            return _status(404, "NotFound", f'namespaces "{namespace}" not found')
        if "managedFields" not in (body.get("metadata") or {}):  # an apply has recorded its own already
            # What the request set is its manager's; what defaulting adds next is nobody's.
            fieldmanager.update(None, body, manager, api_version(kind))
        body = _normalise(kind, namespace, body)
        try:
            body = admit(kind, body, self.route_rule_names)
        except Invalid as refused:
            return _status(refused.code, refused.reason, refused.message)
        if self.get(kind, namespace, body["metadata"]["name"]):
            return _status(
                409, "AlreadyExists", f'{KINDS[kind][1]} "{body["metadata"]["name"]}" already exists'
            )
        body["metadata"]["generation"] = 1
        if dry_run:
            return Response(201, body)
        stored = self.put(body)
        self.controller.changed(stored)
        return Response(201, stored)

    def _replace(
        self,
        kind: str,
        namespace: str,
        name: str,
        body: dict[str, Any],
        current: dict[str, Any] | None,
        manager: str | None,
        dry_run: bool = False,
    ) -> Response:
        """``manager`` None: the body's managedFields are already what they should be (an apply)."""
        assert current is not None
        body = _normalise(kind, namespace, body)
        written = body["metadata"].get("managedFields")
        if manager is not None and (written is None or written == current["metadata"].get("managedFields")):
            fieldmanager.update(current, body, manager, api_version(kind))  # else: as the request set them
        try:
            body = admit(kind, body, self.route_rule_names)
        except Invalid as refused:
            return _status(refused.code, refused.reason, refused.message)
        given = body["metadata"].get("resourceVersion")
        if given and given != current["metadata"]["resourceVersion"]:
            return _status(
                409, "Conflict", f'the object "{name}" has been modified; please apply your changes'
            )
        spec_changed = body.get("spec") != current.get("spec")
        if kind == "Deployment":  # apps/v1's update strategy: annotations count as a change too
            spec_changed = spec_changed or body["metadata"].get("annotations") != current["metadata"].get(
                "annotations"
            )
        body["metadata"]["uid"] = current["metadata"]["uid"]
        body["metadata"]["creationTimestamp"] = current["metadata"]["creationTimestamp"]
        body["metadata"]["generation"] = current["metadata"].get("generation", 1) + (1 if spec_changed else 0)
        if "status" in current and kind != "Lease":
            body["status"] = current["status"]
        if dry_run:
            return Response(200, body)
        stored = self.put(body)
        self.controller.changed(stored)
        return Response(200, stored)

    def _patch(
        self, kind: str, namespace: str, name: str, request: Request, current: dict[str, Any] | None
    ) -> Response:
        patch = request.json()
        manager, dry_run = _manager(request), request.query.get("dryRun") == "All"
        if "apply-patch" in request.headers.get("content-type", ""):
            return self._apply(kind, namespace, name, patch, current, manager, request, dry_run)
        if current is None:
            return _not_found(kind, name)
        if "json-patch" in request.headers.get("content-type", ""):
            try:
                merged = _json_patch(copy.deepcopy(current), patch)
            except (KeyError, IndexError, ValueError, TypeError) as failed:
                message = f"the server rejected our request due to an error in our request: {failed}"
                return _status(422, "Invalid", message)
        else:
            merged = _merge(copy.deepcopy(current), patch)
        given = (
            patch[-1].get("value")
            if isinstance(patch, list) and patch and patch[-1].get("path") == "/metadata/resourceVersion"
            else None
        )
        if given is not None and given != current["metadata"]["resourceVersion"]:  # csaupgrade's guard
            return _status(
                409, "Conflict", f'the object "{name}" has been modified; please apply your changes'
            )
        merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self._replace(kind, namespace, name, merged, current, manager, dry_run)

    def _apply(
        self,
        kind: str,
        namespace: str,
        name: str,
        config: dict[str, Any],
        current: dict[str, Any] | None,
        manager: str,
        request: Request,
        dry_run: bool,
    ) -> Response:
        """Server-side apply (fieldmanager.py): create, or merge with conflicts and removals."""
        if request.query.get("fieldManager") is None:
            return _status(
                422,
                "Invalid",
                "metadata.managedFields.fieldManager: Required value: is required for apply patch",
            )
        try:
            merged = fieldmanager.apply(
                current, config, manager, request.query.get("force") == "true", api_version(kind)
            )
        except fieldmanager.Conflict as conflict:
            return _status(409, "Conflict", conflict.message())
        merged.setdefault("apiVersion", api_version(kind))
        merged.setdefault("kind", kind)
        merged["metadata"].setdefault("name", name)
        if current is None:
            return self._create(kind, namespace, merged, manager, dry_run)
        merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self._replace(kind, namespace, name, merged, current, None, dry_run)

    def _list_or_watch(self, kind: str, namespace: str, request: Request) -> Response:
        matches = _selector(request.query)
        items = [o for o in self.list(kind, namespace) if matches(o)]
        if request.query.get("watch") in ("true", "1"):
            return Response(200, stream=self._watch(kind, namespace, matches, items, request.query))
        limit = int(request.query.get("limit") or 0)
        return Response(
            200,
            {
                "kind": f"{kind}List",
                "apiVersion": api_version(kind),
                "metadata": {"resourceVersion": str(next(self._versions))},
                "items": items[:limit] if limit else items,
            },
        )

    def _watch(
        self,
        kind: str,
        namespace: str,
        matches: Callable[[dict[str, Any]], bool],
        existing: list[dict[str, Any]],
        query: dict[str, str],
    ) -> Iterator[dict[str, Any]]:
        events: queue.Queue[Any] = queue.Queue()
        watcher = (kind, namespace, matches, events)
        since = query.get("resourceVersion")
        with self.lock:
            if since and (self.faults.gone > 0 or self._compacted_past(int(since))):
                self.faults.gone = max(self.faults.gone - 1, 0)
                yield _gone(since, self.latest_version())
                return
            self._watchers.append(watcher)
            if since:  # resume: every change after that version, from the history
                for version, event, obj in self.history:
                    same_collection = obj["kind"] == kind and obj["metadata"]["namespace"] == namespace
                    if version > int(since) and same_collection and matches(obj):
                        events.put({"type": event, "object": copy.deepcopy(obj)})
            else:  # without a resourceVersion a watch starts with the current objects as ADDED
                current = [o for o in self.list(kind, namespace) if matches(o)]
                for obj in current or existing:
                    events.put({"type": "ADDED", "object": obj})
        seconds = float(query.get("timeoutSeconds") or 1800)
        if self.faults.watch_seconds is not None:
            seconds = min(seconds, self.faults.watch_seconds)
        deadline = time.monotonic() + seconds
        try:
            while (remaining := deadline - time.monotonic()) > 0:
                try:
                    yield events.get(timeout=min(remaining, 0.2))
                except queue.Empty:
                    continue
            if self.faults.reset and self.faults.watch_seconds is not None:
                yield RESET
        finally:
            with self.lock:
                self._watchers.remove(watcher)

    def _compacted_past(self, version: int) -> bool:
        """Whether events after ``version`` may be missing from the history."""
        oldest = self.history[0][0] if self.history else self.latest_version() + 1
        return version < oldest - 1

    def _log(self, namespace: str, name: str, request: Request) -> Response:
        pod = self.get("Pod", namespace, name)
        if pod is None:
            return _not_found("Pod", name)
        key = f"{namespace}/{name}/{'previous' if request.query.get('previous') == 'true' else 'current'}"
        if key not in self.logs:
            return _status(
                400,
                "BadRequest",
                f'container in pod "{name}" is waiting to start: trying and failing to pull image',
            )
        lines = self.logs[key].splitlines()
        tail = int(request.query.get("tailLines") or len(lines))
        return Response(200, ("\n".join(lines[-tail:]) + "\n").encode())


def _manager(request: Request) -> str:
    return fieldmanager.manager_of(request.query, request.headers.get("user-agent", ""))


def _normalise(kind: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["kind"], body["apiVersion"] = kind, api_version(kind)
    body.setdefault("metadata", {})["namespace"] = namespace
    if kind == "Deployment":  # the API server's defaulting: a Deployment without replicas runs 1
        body.setdefault("spec", {}).setdefault("replicas", 1)
    return body


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7386): maps merge, anything else replaces, null deletes."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
    return target


def _json_patch(target: dict[str, Any], operations: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON patch (RFC 6902) with the operations clients use; any failure leaves nothing applied."""
    for operation in operations:
        parts = operation["path"].split("/")[1:]
        *parents, last = [part.replace("~1", "/").replace("~0", "~") for part in parts]
        container: Any = target
        for part in parents:
            container = container[int(part)] if isinstance(container, list) else container[part]
        key: Any = int(last) if isinstance(container, list) and last != "-" else last
        op = operation["op"]
        if op == "test":
            if container[key] != operation["value"]:
                raise ValueError(f"testing value {operation['path']} failed")
        elif op == "remove":
            del container[key]
        elif op == "replace":
            if key not in (range(len(container)) if isinstance(container, list) else container):
                raise KeyError(f"replace operation does not apply: doc is missing path: {operation['path']}")
            container[key] = copy.deepcopy(operation["value"])
        elif op == "add" and isinstance(container, list):
            container.insert(len(container) if key == "-" else key, copy.deepcopy(operation["value"]))
        elif op == "add":
            container[key] = copy.deepcopy(operation["value"])
        else:
            raise ValueError(f"Unexpected kind: {op}")
    return target


def _selector(query: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    labels = dict(p.split("=", 1) for p in query.get("labelSelector", "").split(",") if "=" in p)
    fields = dict(p.split("=", 1) for p in query.get("fieldSelector", "").split(",") if "=" in p)

    def field(obj: dict[str, Any], path: str) -> Any:
        for part in path.split("."):
            obj = obj.get(part, {}) if isinstance(obj, dict) else {}
        return obj

    def matches(obj: dict[str, Any]) -> bool:
        have = obj["metadata"].get("labels") or {}
        return all(have.get(k) == v for k, v in labels.items()) and all(
            field(obj, k) == v for k, v in fields.items()
        )

    return matches


def _gone(since: str, latest: int) -> dict[str, Any]:
    message = f"too old resource version: {since} ({latest})"
    return {"type": "ERROR", "object": _status_body(410, "Expired", message)}


def _namespace_object(name: str) -> dict[str, Any]:
    return {
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {"name": name, "labels": {"kubernetes.io/metadata.name": name}},
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def _status_body(code: int, reason: str, message: str, status: str = "Failure") -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": status,
        "message": message,
        "reason": reason,
        "code": code,
    }


def _status(code: int, reason: str, message: str) -> Response:
    return Response(code, _status_body(code, reason, message))


def _not_found(kind: str, name: str) -> Response:
    return _status(404, "NotFound", f'{KINDS[kind][1]} "{name}" not found')
