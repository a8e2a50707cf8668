"""Leaving blue/green (for rolling or canary) with ``<app>`` serving throughout.

Layer: used by the rolling and canary strategies; reads and writes the cluster through ``Run``.

kubectl apply would rewrite ``<app>``'s selector (dropping the slot label) in the same apply
that creates the new Deployment, so for as long as its pods take to start ``<app>`` would
select no Ready pod. So while ``<app>`` still selects a slot, the apply leaves ``<app>`` out;
once the new Deployment is verified Ready, ``<app>`` gets the rendered selector in one PATCH
and its EndpointSlices are awaited. The slots' objects (their Deployments, autoscalers and
disruption budgets, and ``<app>-preview``) are deleted only after the new release passed its
checks, so a failed move still has them, and ``scale_down_delay`` after ``<app>`` left them.

A chart environment renders its Services inside skaffold, out of releasegate's hands: there
the move is what kubectl apply does.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from releasegate.core.errors import NeedsAttention
from releasegate.core.placement import SLOT_LABEL, SLOTS
from releasegate.kube.api import DEPLOYMENTS, SERVICES, translated_errors
from releasegate.kube.drains import DELETE, Leave
from releasegate.kube.verify import wait_for_endpoints
from releasegate.strategies import draining

if TYPE_CHECKING:
    from releasegate.run import Plan, Run

MERGE_PATCH = "application/merge-patch+json"
SLOT_OBJECTS = (
    DEPLOYMENTS,
    "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers",
    "/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets",
)


def serving_slot(run: Run) -> str | None:
    """The slot ``<app>`` selects now, when the environment is leaving blue/green."""
    service = _service(run, run.project.app)
    slot = ((service or {}).get("spec", {}).get("selector") or {}).get(SLOT_LABEL)
    return slot if slot in SLOTS else None


def without_service(run: Run, plan: Plan) -> Plan:
    """``plan`` without Service ``<app>``: the apply must not move it (templates only)."""
    if run.env.renderer != "templates":
        return plan
    kept = [m for m in plan.manifests if not (m.kind == "Service" and m.name == run.project.app)]
    return dataclasses.replace(plan, manifests=kept)


def move_service(run: Run, plan: Plan, image: str, timeout: float) -> None:
    """Point ``<app>`` at the rendered selector (the new Deployment's Ready pods), then wait
    for its endpoints to list only them."""
    rendered = next(
        (m.obj for m in plan.manifests if m.kind == "Service" and m.name == run.project.app), None
    )
    if rendered is None or run.env.renderer != "templates":
        return
    selector: dict[str, str] = dict(rendered["spec"]["selector"])
    app, namespace = run.project.app, run.env.namespace
    with run.stages.run("switch") as done:
        current = _service(run, app) or {}
        old = current.get("spec", {}).get("selector") or {}
        run.ensure_lock()
        patch = {"spec": {"selector": {**{k: None for k in old if k not in selector}, **selector}}}
        with translated_errors("cannot switch the Service in", namespace, NeedsAttention):
            path = f"{SERVICES.format(namespace=namespace)}/{app}"
            run.clients.cluster.call("PATCH", path, body=patch, content_type=MERGE_PATCH, retry=True)
        count = wait_for_endpoints(
            run.clients.cluster, namespace, app, selector, image, timeout,
            lambda text: run.progress.detail("traffic", text),
        )  # fmt: skip
        done.append(f"Service {app} left slot {old.get(SLOT_LABEL)}: its endpoints list the {count} new pods")


def slot_still_serving(run: Run, image: str) -> tuple[str, str] | None:
    """The slot ``<app>`` still selects, and its pods Ready (``n/n``), when it runs ``image``
    with every pod Ready: a move that failed before the switch, whose put-back is only to drop
    what it created."""
    from releasegate.core.rollout import is_ready
    from releasegate.kube.verify import workload

    slot = serving_slot(run)
    if slot is None:
        return None
    deployment, pods = workload(run.clients.cluster, run.env.namespace, f"{run.project.app}-{slot}")
    if deployment is None or not pods:
        return None
    serves = all(is_ready(p) and p["spec"]["containers"][0]["image"] == image for p in pods)
    return (slot, f"{len(pods)}/{len(pods)}") if serves else None


def drop_unswitched(run: Run) -> None:
    """Delete the Deployment (and its autoscaler and budget) a failed move created: ``<app>``
    never selected it, so nothing is drained."""
    draining.carry_out(run, [Leave(DELETE, path) for _, path in _plain_paths(run)])


def retire_slots(run: Run, delay: float) -> None:
    """Delete what blue/green left, once ``<app>`` selects no slot, ``delay`` seconds after it
    moved off them (an ALB in IP mode still sends requests to the old targets for seconds).
    Best effort: the release is live and good either way, and the next deploy tries again."""
    if serving_slot(run) is not None:
        return
    try:
        present = _slot_objects(run)
        if not present:
            return
        leaves = [Leave(DELETE, path) for _, path in present]
        if draining.leave(run, delay, "the blue/green slots", leaves):
            run.progress.warning(f"left blue/green: deleted {', '.join(what for what, _ in present)}")
    except Exception as error:  # reported: the release stays live either way
        run.progress.warning(f"could not delete what blue/green left: {error}")


def _slot_objects(run: Run) -> list[tuple[str, str]]:
    """(what, path) of each object blue/green left that is still there: read first, since most
    deploys have nothing to retire, and a DELETE of nothing would still need the verb."""
    found = [(f"{kind} {run.project.app}-{slot}", path) for slot in SLOTS
             for kind, path in _slot_paths(run, f"{run.project.app}-{slot}")]  # fmt: skip
    preview = f"{run.project.app}-preview"
    found.append((f"Service {preview}", f"{SERVICES.format(namespace=run.env.namespace)}/{preview}"))
    return [(what, path) for what, path in found if run.clients.cluster.get_or_none(path) is not None]


def _plain_paths(run: Run) -> list[tuple[str, str]]:
    return _slot_paths(run, run.project.app)


def _slot_paths(run: Run, name: str) -> list[tuple[str, str]]:
    kinds = ("Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget")
    return [
        (kind, f"{base.format(namespace=run.env.namespace)}/{name}")
        for kind, base in zip(kinds, SLOT_OBJECTS, strict=True)
    ]


def _service(run: Run, name: str) -> dict[str, Any] | None:
    path = f"{SERVICES.format(namespace=run.env.namespace)}/{name}"
    with translated_errors("cannot read the Services in", run.env.namespace, NeedsAttention):
        return run.clients.cluster.get_or_none(path)
