"""Server-side apply of a release's objects: what ``deployer: apply`` does instead of running
``skaffold deploy`` (``run.py`` chooses between the two).

Every object is sent whole as an apply patch (``application/apply-patch+yaml``) with field
manager ``releasegate`` and ``force``: the deploy's objects are authoritative, so a field another
manager set is taken over rather than reported as a conflict. Objects go in dependency order,
a tier at a time (ServiceAccounts, Roles, ConfigMaps, Secrets and Services together; then
RoleBindings; then workloads; then autoscalers, disruption budgets and routes), through the
official client's API, one request each, the requests of one tier at once.

What server-side apply changes, and how it is handled:
- Objects last applied client-side (``skaffold deploy``'s kubectl, ``kubectl apply``) keep their
  fields under the client-side manager (an ``Update`` entry owning the
  ``last-applied-configuration`` annotation). Left there, a field removed from the templates
  would never leave the live object. So, as ``kubectl apply --server-side`` does
  (client-go's csaupgrade), that manager's fields are first moved into releasegate's ``Apply``
  entry, in one JSON patch guarded by the object's resourceVersion; from then on a field
  releasegate stops applying is removed.
- ``spec.replicas`` of a Deployment an autoscaler scales is never sent (the renderer leaves it
  out). But a field the ``releasegate`` manager owns alone and stops sending is removed, and a
  Deployment whose replicas were removed falls back to 1: when releasegate still owns them
  (the HPA is new, or never changed the count), the live count is first applied by a second
  manager (``releasegate-handover``), so ownership is shared and nothing is removed (the
  Kubernetes docs' "Transferring ownership"); the autoscaler's next change takes it over.
- A Deployment rendered with replicas while a live autoscaler still scales it (the HPA is being
  turned off) is applied at its live count: turning the autoscaler off changes no pod count; the
  template's count applies from the next deploy.
- Skaffold stamps ``skaffold.dev/run-id`` (fixed per environment by releasegate) into every
  ``metadata.labels`` of its workload kinds and Services, pod templates included; the same label
  is stamped here, so moving an environment between deployers leaves each pod template as it
  was, and restarts no pod.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from releasegate.core.errors import NeedsAttention
from releasegate.kube.api import at_once

if TYPE_CHECKING:
    from releasegate.kube.api import Cluster

MANAGER = "releasegate"
HANDOVER_MANAGER = "releasegate-handover"
APPLY_PATCH = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
RUN_ID_LABEL = "skaffold.dev/run-id"
# Where skaffold (v2.24, pkg/skaffold/kubernetes/manifest/visitor.go) stamps its labels.
LABELLED_KINDS = {"Pod", "Service", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"}
# Dependency order: what others refer to first; kinds not named go after the workloads.
ORDER = (
    "Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Secret",
    "PersistentVolumeClaim", "Service", "Deployment", "StatefulSet", "DaemonSet",
    "HorizontalPodAutoscaler", "PodDisruptionBudget",
)  # fmt: skip
# What may go at once: nothing in a tier refers to another of its tier (a RoleBinding needs its
# Role, as the API server checks the binder holds what it binds); kinds not named: the last.
TIERS = (
    ("Namespace",),
    ("ServiceAccount", "Role", "ConfigMap", "Secret", "PersistentVolumeClaim", "Service"),
    ("RoleBinding",),
    ("Deployment", "StatefulSet", "DaemonSet"),
)
SCALED = ("Deployment", "StatefulSet")
TAKE_OVER_TRIES = 5


@dataclass(frozen=True)
class Applied:
    """What one apply did: every object it sent, and those the API server changed."""

    objects: list[str] = field(default_factory=list)  # Kind/name, in the order sent
    changed: list[str] = field(default_factory=list)  # Kind/name whose content is new or changed
    taken_over: list[str] = field(default_factory=list)  # Kind/name moved from client-side apply


def apply_objects(
    cluster: Cluster,
    namespace: str,
    objects: Iterable[dict[str, Any]],
    *,
    run_id: str,
    dry_run: bool = False,
    on_line: Callable[[str], None] = lambda line: None,
) -> Applied:
    """Server-side apply of ``objects`` into ``namespace``, in dependency order: the objects of
    one tier (``TIERS``) at once, the next tier once they are all applied."""
    resources = Resources(cluster)
    ordered = sorted(objects, key=lambda o: (_tier(o), _rank(o)))
    resources.learn({o["apiVersion"] for o in ordered})
    paths = [resources.path(o["apiVersion"], o["kind"], namespace, o["metadata"]["name"]) for o in ordered]
    # One concurrent round of reads (every live object, the live autoscalers), not one before each apply.
    reads: list[Callable[[], Any]] = [partial(_read, cluster, path) for path in paths]
    reads.append(partial(_live_autoscaled, cluster, namespace, resources, ordered))
    *lives, autoscaled = at_once(lambda read: read(), reads)
    one = partial(_apply_one, cluster, run_id=run_id, dry_run=dry_run, autoscaled=autoscaled, on_line=on_line)
    applied = Applied()
    for tier in _tiers(list(zip(ordered, paths, lives, strict=True))):
        for outcome in at_once(lambda item: one(*item), tier):
            applied.objects.append(outcome.name)
            if outcome.changed:
                applied.changed.append(outcome.name)
            if outcome.taken_over:
                applied.taken_over.append(outcome.name)
            on_line(f"{outcome.name} {outcome.verb}{' (server dry run)' if dry_run else ''}")
    return applied


@dataclass(frozen=True)
class _Outcome:
    name: str  # Kind/name
    verb: str  # created, configured, unchanged
    changed: bool
    taken_over: bool


def _apply_one(
    cluster: Cluster,
    obj: dict[str, Any],
    path: str,
    live: dict[str, Any] | None,
    *,
    run_id: str,
    dry_run: bool,
    autoscaled: set[str],
    on_line: Callable[[str], None],
) -> _Outcome:
    obj = _stamped(obj, run_id)
    taken_over = False
    if live is not None and not dry_run:
        if take_over_client_side(cluster, path, live):
            taken_over = True
            live = _read(cluster, path) or live
        if obj["kind"] in SCALED:
            obj = _keep_live_count(cluster, path, obj, live, autoscaled, on_line)
    written = _apply(cluster, path, obj, dry_run)
    changed = live is None or _content(written) != _content(live)
    verb = "created" if live is None else "configured" if changed else "unchanged"
    return _Outcome(f"{obj['kind']}/{obj['metadata']['name']}", verb, changed, taken_over)


def _tiers(
    items: list[tuple[dict[str, Any], str, dict[str, Any] | None]],
) -> list[list[tuple[dict[str, Any], str, dict[str, Any] | None]]]:
    """``items`` (in dependency order) cut where the tier changes."""
    tiers: list[list[tuple[dict[str, Any], str, dict[str, Any] | None]]] = []
    for item in items:
        if tiers and _tier(tiers[-1][-1][0]) == _tier(item[0]):
            tiers[-1].append(item)
        else:
            tiers.append([item])
    return tiers


class Resources:
    """Where each kind lives: the API server's discovery, one request per group/version for
    the whole run (what the apply learned, the prune does not ask again)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self._known: dict[str, dict[str, tuple[str, bool]]] = cluster.discovered

    def preferred_version(self, group: str) -> str:
        """``group``'s preferred ``group/version`` (``v1`` for the core group)."""
        if not group:
            return "v1"
        found = self.cluster.get(f"/apis/{group}")
        return str(found["preferredVersion"]["groupVersion"])

    def learn(self, api_versions: Iterable[str]) -> None:
        """Discover the kinds of every one of ``api_versions`` not known yet, concurrently."""
        unknown = sorted(set(api_versions) - set(self._known))
        answers = at_once(lambda version: self.cluster.get(_base(version)), unknown)
        for api_version, found in zip(unknown, answers, strict=True):
            self._known[api_version] = {
                r["kind"]: (r["name"], bool(r.get("namespaced")))
                for r in found.get("resources") or []
                if "/" not in r["name"]  # subresources (deployments/scale) are not kinds
            }

    def path(self, api_version: str, kind: str, namespace: str, name: str) -> str:
        base = _base(api_version)
        self.learn([api_version])
        if kind not in self._known[api_version]:
            raise NeedsAttention(
                f"the cluster does not serve {kind} in {api_version}",
                "install what provides it (its CRDs), or remove it from the templates",
            )
        plural, namespaced = self._known[api_version][kind]
        where = f"{base}/namespaces/{namespace}/{plural}" if namespaced else f"{base}/{plural}"
        return f"{where}/{name}"


def take_over_client_side(cluster: Cluster, path: str, live: dict[str, Any]) -> bool:
    """Move the fields of the managers that applied ``live`` client-side into releasegate's
    Apply entry (kubectl's own migration rule); False when there is nothing to move. A
    controller writing the object meanwhile (its status) is a conflict: read again, retry."""
    from kubernetes.client.exceptions import ApiException

    for _ in range(TAKE_OVER_TRIES):
        patch = _take_over_patch(live)
        if patch is None:
            return False
        try:
            cluster.call("PATCH", path, body=patch, content_type=JSON_PATCH, retry=True)
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise
        live = cluster.get(path)
    raise NeedsAttention(
        f"could not take {path.rsplit('/', 1)[-1]} over from client-side apply: it changed at every try",
        "deploy again",
    )


def _take_over_patch(live: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The JSON patch that rewrites ``live``'s managedFields (None: nothing applied client-side),
    guarded by its resourceVersion, as client-go's csaupgrade writes it."""
    entries = list(live["metadata"].get("managedFields") or [])
    client_side = [
        e for e in entries if e.get("operation") == "Update" and _owns_last_applied(e.get("fieldsV1") or {})
    ]
    if not client_side:
        return None
    ours = next((e for e in entries if e.get("manager") == MANAGER and e.get("operation") == "Apply"), None)
    target = copy.deepcopy(ours or client_side[0])
    target.update({"manager": MANAGER, "operation": "Apply"})
    fields = target.get("fieldsV1") or {}
    for entry in client_side:
        if entry.get("apiVersion") == target.get("apiVersion"):
            fields = union(fields, entry.get("fieldsV1") or {})
    # The annotation itself stays where it is, owned by nobody, as kubectl's migration leaves
    # it: removing it would change the object (a Deployment's generation follows its
    # annotations), and skaffold's kubectl reads it again if the environment moves back.
    # Nor does it take the annotations map itself (``.``, which the client-side manager owns for
    # having created it) when no other annotation comes with it: the sole owner of a map that
    # stops applying it has the whole map removed, kubectl's annotation in it included (so the
    # real API server does, as soon as no controller owns an annotation of its own there).
    metadata = fields.get("f:metadata") or {}
    annotations = metadata.get("f:annotations") or {}
    annotations.pop(f"f:{LAST_APPLIED}", None)
    if "f:annotations" in metadata and set(annotations) <= {"."}:
        del metadata["f:annotations"]
    target["fieldsV1"] = fields
    rest = [e for e in entries if e not in client_side and e is not ours]
    return [
        {"op": "replace", "path": "/metadata/managedFields", "value": [*rest, target]},
        {"op": "replace", "path": "/metadata/resourceVersion", "value": live["metadata"]["resourceVersion"]},
    ]


def union(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Two ``fieldsV1`` sets as one (a nested set: keys are fields, values their children)."""
    merged = copy.deepcopy(left)
    for key, children in right.items():
        merged[key] = (
            union(merged.get(key) or {}, children or {}) if key in merged else copy.deepcopy(children)
        )
    return merged


def owners(live: dict[str, Any], *fieldpath: str) -> list[str]:
    """The managers (``manager/Operation``) whose field set holds ``fieldpath`` (e.g. spec, replicas)."""
    found = []
    for entry in live["metadata"].get("managedFields") or []:
        node: Any = entry.get("fieldsV1") or {}
        for part in fieldpath:
            node = node.get(f"f:{part}") if isinstance(node, dict) else None
        if node is not None:
            found.append(f"{entry.get('manager')}/{entry.get('operation')}")
    return found


def _owns_last_applied(fields: dict[str, Any]) -> bool:
    annotations = (fields.get("f:metadata") or {}).get("f:annotations") or {}
    return f"f:{LAST_APPLIED}" in annotations


def _keep_live_count(
    cluster: Cluster,
    path: str,
    obj: dict[str, Any],
    live: dict[str, Any],
    autoscaled: set[str],
    on_line: Callable[[str], None],
) -> dict[str, Any]:
    """The workload as it may be applied without changing its running pod count."""
    name, count = obj["metadata"]["name"], live.get("spec", {}).get("replicas")
    if "replicas" in obj.get("spec", {}):
        if name in autoscaled and count is not None and count != obj["spec"]["replicas"]:
            on_line(f"{obj['kind']}/{name}: its autoscaler is going; kept at its {count} pods this deploy")
            return {**obj, "spec": {**obj["spec"], "replicas": count}}
        return obj
    if count is not None and owners(live, "spec", "replicas") == [f"{MANAGER}/Apply"]:
        # releasegate alone owns the count and is about to stop sending it: share it first.
        handover = {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                    "metadata": {"name": name}, "spec": {"replicas": count}}  # fmt: skip
        cluster.call("PATCH", path, body=handover, content_type=APPLY_PATCH, retry=True,
                     fieldManager=HANDOVER_MANAGER, force="true")  # fmt: skip
        on_line(f"{obj['kind']}/{name}: its {count} pods handed over to the autoscaler")
    return obj


def _live_autoscaled(
    cluster: Cluster, namespace: str, resources: Resources, objects: list[dict[str, Any]]
) -> set[str]:
    """Workloads a live HorizontalPodAutoscaler scales that these objects no longer include one for."""
    rendered = {
        o["spec"]["scaleTargetRef"]["name"] for o in objects if o["kind"] == "HorizontalPodAutoscaler"
    }
    if not any(o["kind"] in SCALED and "replicas" in o.get("spec", {}) for o in objects):
        return set()
    collection = resources.path("autoscaling/v2", "HorizontalPodAutoscaler", namespace, "").rstrip("/")
    live = cluster.get(collection).get("items") or []
    return {h["spec"]["scaleTargetRef"]["name"] for h in live} - rendered


def _apply(cluster: Cluster, path: str, obj: dict[str, Any], dry_run: bool) -> dict[str, Any]:
    written: dict[str, Any] = cluster.call(
        "PATCH", path, body=obj, content_type=APPLY_PATCH, retry=True,
        fieldManager=MANAGER, force="true", dryRun="All" if dry_run else None,
    )  # fmt: skip
    return written


BOOKKEEPING = ("resourceVersion", "managedFields", "generation", "creationTimestamp", "uid")


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    """What an object says, without what the API server keeps about it (a dry run's answer
    keeps the old resourceVersion: the content tells whether it would change)."""
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in BOOKKEEPING}
    return {**{k: v for k, v in obj.items() if k != "status"}, "metadata": meta}


def _read(cluster: Cluster, path: str) -> dict[str, Any] | None:
    return cluster.get_or_none(path)


def _stamped(obj: dict[str, Any], run_id: str) -> dict[str, Any]:
    """``obj`` with skaffold's run-id label where skaffold stamps it: in every ``metadata``
    map (pod templates included) of the kinds of its TransformAllowlist."""
    if not run_id or obj.get("kind") not in LABELLED_KINDS:
        return obj
    stamped = copy.deepcopy(obj)
    _stamp(stamped, run_id)
    return stamped


def _stamp(node: Any, run_id: str) -> None:
    if isinstance(node, list):
        for item in node:
            _stamp(item, run_id)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "metadata" and isinstance(value, dict):
                value["labels"] = {**(value.get("labels") or {}), RUN_ID_LABEL: run_id}
            else:
                _stamp(value, run_id)


def _rank(obj: dict[str, Any]) -> int:
    kind = obj.get("kind", "")
    return ORDER.index(kind) if kind in ORDER else len(ORDER)


def _tier(obj: dict[str, Any]) -> int:
    kind = obj.get("kind", "")
    return next((n for n, kinds in enumerate(TIERS) if kind in kinds), len(TIERS))


def _base(api_version: str) -> str:
    return f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
