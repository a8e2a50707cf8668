"""Blue/green: two slot Deployments, ``<app>-blue`` and ``<app>-green``; the Service ``<app>``
selects the live one and ``<app>-preview`` the other.

A release goes to the idle slot, is verified there and smoke-checked through ``<app>-preview``
while the live slot keeps serving; then ``<app>``'s selector is switched (one PATCH: the API
server moves every endpoint at once) and the checks run again through ``<app>``. Putting a
release back is a switch when a slot still runs it Ready, else a deploy into the idle slot.

An environment that was rolling has a plain ``<app>`` Deployment that ``<app>`` selects. The
slots' pods carry an instance label of their own (``<instance>-<slot>``), so neither that
Deployment nor that Service ever selects them: the rolling release serves until the switch,
and the plain Deployment is deleted only once ``<app>`` selects a slot and the checks passed.

Layer: strategies (above run and the adapters, below the commands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from releasegate.core.errors import NeedsAttention, Refused
from releasegate.core.placement import SLOT_LABEL, SLOTS, Slots
from releasegate.kube.api import DEPLOYMENTS, SERVICES, translated_errors
from releasegate.kube.drains import DELETE, SCALE_TO_ZERO, Leave
from releasegate.kube.lock import LockLost
from releasegate.kube.verify import wait_for_endpoints, workload
from releasegate.strategies import draining, slots
from releasegate.strategies.base import InService, Serving
from releasegate.strategies.comparing import compare_with_serving
from releasegate.strategies.slots import Home, live_slot, preview_service

if TYPE_CHECKING:
    from releasegate.core.strategy_config import StrategySettings
    from releasegate.kube.ledger import Record
    from releasegate.run import Plan, Run

AUTOSCALERS = "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
DISRUPTION_BUDGETS = "/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets"
MERGE_PATCH = "application/merge-patch+json"
BEFORE_SWITCH = "before-switch"  # the one step a blue/green release pauses at


class BlueGreen:
    name = "bluegreen"

    def __init__(self, settings: StrategySettings) -> None:
        self.settings = settings

    def target(self, run: Run) -> Slots:
        return Slots.after(live_slot(run))

    def describe(self, plan: Plan) -> str:
        assert isinstance(plan.slots, Slots)
        slot, live = plan.slots.target, plan.slots.live
        serving = f"{live} keeps serving" if live else "no slot is live yet"
        then = (
            "then pause before the switch (releasegate promote)"
            if self.settings.pause_before_switch
            else f"switch the Service to {slot}"
        )
        return (
            f"would deploy {plan.tag} to slot {slot} ({serving}), test it through the preview Service, {then}"
        )

    def put_in_service(self, run: Run, plan: Plan, timeout: float) -> InService:
        assert isinstance(plan.slots, Slots), "a blue/green plan names its slot"
        slot = plan.slots.target
        pods_ready = run.apply(plan, timeout)
        run.milestone(f"testing in {slot}")
        run.smoke_check(plan.image, service=preview_service(run), stage="preview")
        self._compare_with_live(run)
        if self.settings.pause_before_switch:
            run.progress.warning(
                f"{plan.tag} passed its checks in {slot}, and waits before the switch: "
                f"`releasegate promote --env {run.env.name}` switches, `releasegate abort` discards it"
            )
            return InService(pods_ready, slot, paused=BEFORE_SWITCH)
        return self._switch_to(run, slot, plan.image, pods_ready, timeout)

    def promote(self, run: Run, paused: Record, timeout: float) -> InService:
        home = slots.home(run, paused.slot)
        if home is None or not home.serves(paused.image):
            raise NeedsAttention(
                f"slot {paused.slot} no longer runs {paused.tag} with every pod Ready",
                "abort it (`releasegate abort`) and deploy again",
            )
        run.smoke_check(paused.image, service=preview_service(run), stage="preview")  # it has waited
        self._compare_with_live(run)
        return self._switch_to(run, paused.slot, paused.image, f"{home.ready}/{home.desired}", timeout)

    def compare(self, run: Run) -> None:
        """The release in the preview slot against the live one (``compare:``)."""
        compare_with_serving(run, serving=run.project.app, candidate=preview_service(run))

    def _compare_with_live(self, run: Run) -> None:
        if run.env.compare is None:
            return
        if not slots.selector(run):  # a first deploy; a rolling <app> moving to blue/green still serves
            run.progress.warning("compare: nothing is live yet to compare the release with; it goes on")
            return
        self.compare(run)

    def abort(self, run: Run, paused: Record) -> None:
        if live_slot(run) == paused.slot:
            raise Refused(
                f"slot {paused.slot} is live: there is nothing to abort", "use `releasegate rollback`"
            )
        _scale(run, f"{run.project.app}-{paused.slot}", 0)

    def put_back(self, run: Run, record: Record, timeout: float) -> InService:
        """Switch to a slot (or the rolling Deployment) still running ``record`` Ready, or
        deploy it into the idle slot first; then stop whatever else runs."""
        home = next((h for h in slots.homes(run) if h.serves(record.image)), None)
        if home is None:
            plan = run.plan_from_record(record, Slots.after(live_slot(run)))
            pods_ready = run.apply(plan, timeout, stage="restore")
            home = slots.home(run, plan.slots.target if isinstance(plan.slots, Slots) else SLOTS[0])
            assert home is not None, "verified just now"
        else:
            pods_ready = f"{home.ready}/{home.desired}"
        switched = slots.selector(run) != home.selector
        if switched:
            self._switch(run, home, timeout)
        others = [o for o in slots.homes(run) if o.slot and o.name != home.name and o.desired > 0]
        if run.result.command == "rollback" and self.settings.keep_previous:
            return InService(pods_ready, home.slot)  # the slot it left is kept, as a deploy keeps it
        delay = self.settings.scale_down_delay if switched else 0  # the data plane follows late
        leaves = [Leave(SCALE_TO_ZERO, _path(run, o.name), o.slot) for o in others]
        if others and draining.leave(run, delay, ", ".join(o.name for o in others), leaves):
            for other in others:
                run.progress.warning(f"scaled slot {other.slot} ({other.tag}) to 0")
        return InService(pods_ready, home.slot)

    def serving(self, run: Run) -> Serving:
        live = live_slot(run)
        name = f"{run.project.app}-{live}" if live else run.project.app
        deployment, pods = workload(run.clients.cluster, run.env.namespace, name)
        return Serving(deployment, pods, live or "")

    def status_lines(self, run: Run) -> list[str]:
        kept = "the old slot keeps running" if self.settings.keep_previous else "the old slot is scaled to 0"
        lines = [f"strategy: bluegreen ({kept})"]
        live = live_slot(run)
        by_slot = {h.slot: h for h in slots.homes(run)}
        if "" in by_slot and not live:
            lines.append(f"live: the rolling Deployment {by_slot[''].name} (not moved to a slot yet)")
        for slot in SLOTS:
            role = "live slot" if slot == live else "preview slot"
            home = by_slot.get(slot)
            if home is None:
                lines.append(f"{role}: {slot}, nothing deployed")
            elif home.desired == 0:
                lines.append(f"{role}: {slot}, {home.tag}, scaled to 0")
            else:
                lines.append(f"{role}: {slot}, {home.tag}, pods Ready {home.ready}/{home.desired}")
        return lines

    def _switch_to(self, run: Run, slot: str, image: str, pods_ready: str, timeout: float) -> InService:
        home = slots.home(run, slot)
        assert home is not None, "verified just now"
        self._switch(run, home, timeout)
        run.milestone(f"switched to {slot}")
        run.smoke_check(image)  # through <app>, now the new slot's
        self._retire(run, home)
        return InService(pods_ready, slot)

    def _switch(self, run: Run, home: Home, timeout: float) -> None:
        """Point ``<app>`` at ``home``, sized first to the live count, then wait until its
        endpoints list only ``home``'s Ready pods: checks made before that could reach the old
        slot (or nothing)."""
        app = run.project.app
        _size_like_live(run, home, timeout)
        with run.stages.run("switch") as done:
            before = slots.selector(run)
            _set_selector(run, home.selector)
            where = f"slot {home.slot}" if home.slot else f"the rolling Deployment {home.name}"
            done.append(f"Service {app} selects {where} ({home.tag}) instead of {_describe(before)}")
        left = (before or {}).get(SLOT_LABEL)
        if home.slot and left in SLOTS and left != home.slot:
            _point_preview_at(run, left)  # the other slot again: where the next release is tested
        with run.stages.run("traffic") as done:
            count = wait_for_endpoints(
                run.clients.cluster, run.env.namespace, app, home.selector, home.image, timeout,
                lambda text: run.progress.detail("traffic", text),
            )  # fmt: skip
            done.append(f"Service {app}'s endpoints list only the {count} Ready pods of {where}")

    def _retire(self, run: Run, home: Home) -> None:
        """After a good switch: delete a rolling Deployment left from before blue/green, and
        scale the old slot to 0 unless it is kept for rollback, ``scale_down_delay`` after
        traffic left them. Best effort: the release is live and good either way."""
        try:
            left = [
                o
                for o in slots.homes(run)
                if o.name != home.name and (not o.slot or (not self.settings.keep_previous and o.desired > 0))
            ]
            leaves = [
                leave
                for o in left
                for leave in (
                    [Leave(SCALE_TO_ZERO, _path(run, o.name), o.slot)]
                    if o.slot
                    else _rolling_leaves(run, o.name)
                )
            ]
            if not left or not draining.leave(
                run, self.settings.scale_down_delay, ", ".join(o.name for o in left), leaves
            ):
                return
            for other in left:
                if not other.slot:
                    run.progress.warning(f"moved to blue/green: deleted the rolling Deployment {other.name}")
        except LockLost:
            raise
        except Exception as error:  # reported: the release stays live either way
            run.progress.warning(f"could not tidy up after the switch: {error}")


def _size_like_live(run: Run, home: Home, timeout: float) -> None:
    """Before ``home`` takes all the traffic: at least as many Ready pods as serve it now. An
    idle slot's autoscaler sized it for no load, and a slot kept for rollback was shrunk to
    its minimum while idle; switching to it as it is would meet the whole load with those."""
    from releasegate.kube.verify import wait_for_rollout

    serving = slots.selector(run)  # read once: each home's check would read the Service again
    live = next((h for h in slots.homes(run) if h.selector == serving), None)
    if live is None or live.name == home.name or live.desired <= home.desired:
        return
    with run.stages.run("size") as done:
        _scale(run, home.name, live.desired)
        verdict = wait_for_rollout(
            run.clients.cluster, run.env.namespace, home.name, home.image, timeout,
            on_progress=lambda text: run.progress.detail("size", text),
            unschedulable_timeout=run.env.unschedulable_timeout,
        )  # fmt: skip
        if verdict.state != "complete":
            raise NeedsAttention(
                f"{home.name} did not become Ready at the live count of {live.desired} pods: "
                f"{verdict.summary}",
                "look at its pods (a quota, the cluster's capacity), then deploy again",
            )
        done.append(f"{home.name} at {live.desired} pods Ready, as many as {live.name} serves with")


def _set_selector(run: Run, selector: dict[str, str]) -> None:
    """Point Service ``<app>`` at ``selector``: one merge patch (keys it no longer has are
    removed), or, on a first deploy, the Service created like the preview one."""
    run.ensure_lock()
    namespace, app = run.env.namespace, run.project.app
    current = slots.service(run, app)
    with translated_errors("cannot switch the Service in", namespace, NeedsAttention):
        if current is None:
            run.clients.cluster.call(
                "POST", SERVICES.format(namespace=namespace), body=_like_preview(run, selector), retry=True
            )
            return
        old = current["spec"].get("selector") or {}
        patch = {"spec": {"selector": {**{k: None for k in old if k not in selector}, **selector}}}
        path = f"{SERVICES.format(namespace=namespace)}/{app}"
        run.clients.cluster.call("PATCH", path, body=patch, content_type=MERGE_PATCH, retry=True)


def _point_preview_at(run: Run, slot: str) -> None:
    """``<app>-preview`` selects ``slot`` (the one traffic just left), as the table of docs/strategies.md
    says: the preview Service always shows the slot that is not live."""
    preview = slots.service(run, preview_service(run))
    if preview is None or (preview["spec"].get("selector") or {}).get(SLOT_LABEL) == slot:
        return
    run.ensure_lock()
    path = f"{SERVICES.format(namespace=run.env.namespace)}/{preview_service(run)}"
    with translated_errors("cannot point the preview Service in", run.env.namespace, NeedsAttention):
        patch = {"spec": {"selector": {SLOT_LABEL: slot}}}
        run.clients.cluster.call("PATCH", path, body=patch, content_type=MERGE_PATCH, retry=True)


def _like_preview(run: Run, selector: dict[str, str]) -> dict[str, Any]:
    preview = slots.service(run, preview_service(run))
    if preview is None:
        raise NeedsAttention(f"Service {preview_service(run)} is missing", "deploy again")
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": run.project.app,
            "namespace": run.env.namespace,
            "labels": preview["metadata"].get("labels") or {},
        },
        "spec": {
            "type": preview["spec"].get("type", "ClusterIP"),
            "ports": preview["spec"]["ports"],
            "selector": selector,
        },
    }


def _scale(run: Run, name: str, replicas: int) -> None:
    from kubernetes.client.exceptions import ApiException

    run.ensure_lock()
    path = f"{DEPLOYMENTS.format(namespace=run.env.namespace)}/{name}"
    with translated_errors(f"cannot scale {name} in", run.env.namespace, NeedsAttention):
        try:
            run.clients.cluster.call(
                "PATCH", path, body={"spec": {"replicas": replicas}}, content_type=MERGE_PATCH, retry=True
            )
        except ApiException as exc:
            if exc.status != 404:
                raise


def _rolling_leaves(run: Run, name: str) -> list[Leave]:
    """The rolling Deployment and the autoscaler and disruption budget that went with it."""
    namespace = run.env.namespace
    return [
        Leave(DELETE, f"{c.format(namespace=namespace)}/{name}")
        for c in (DEPLOYMENTS, AUTOSCALERS, DISRUPTION_BUDGETS)
    ]


def _path(run: Run, deployment: str) -> str:
    return f"{DEPLOYMENTS.format(namespace=run.env.namespace)}/{deployment}"


def _describe(selector: dict[str, str] | None) -> str:
    if selector is None:
        return "nothing (it did not exist)"
    slot = selector.get(SLOT_LABEL)
    return f"slot {slot}" if slot else "the rolling Deployment"
