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

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from releasegate.core.errors import NeedsAttention, Refused
from releasegate.core.placement import SLOT_LABEL, SLOTS, Slots
from releasegate.core.rollout import is_ready
from releasegate.kube.api import DEPLOYMENTS, SERVICES, translated_errors
from releasegate.kube.lock import LockLost
from releasegate.kube.verify import wait_for_endpoints, workload
from releasegate.strategies.base import InService, Serving, after_traffic_left
from releasegate.strategies.comparing import compare_with_serving

if TYPE_CHECKING:
    from releasegate.core.strategy_config import StrategySettings
    from releasegate.kube.ledger import Record
    from releasegate.run import Plan, Run

AUTOSCALERS = "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"
DISRUPTION_BUDGETS = "/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets"
MERGE_PATCH = "application/merge-patch+json"
BEFORE_SWITCH = "before-switch"  # the one step a blue/green release pauses at
TAG_ANNOTATION = "releasegate.dev/tag"


@dataclass(frozen=True)
class Home:
    """A Deployment a release can serve from, and the selector that sends ``<app>`` to it."""

    name: str
    slot: str  # "" for the plain Deployment of an environment that was rolling
    deployment: dict[str, Any]
    pods: list[dict[str, Any]]
    selector: dict[str, str]

    @property
    def image(self) -> str:
        return str(self.deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    @property
    def tag(self) -> str:
        return str((self.deployment["metadata"].get("annotations") or {}).get(TAG_ANNOTATION, "?"))

    @property
    def desired(self) -> int:
        return int(self.deployment["spec"].get("replicas", 1))

    @property
    def ready(self) -> int:
        return sum(1 for p in self.pods if is_ready(p) and p["spec"]["containers"][0]["image"] == self.image)

    def serves(self, image: str) -> bool:
        """Runs ``image`` with every desired pod Ready: traffic can be sent here at once."""
        return self.image == image and self.desired > 0 and self.ready >= self.desired


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
        home = _home(run, paused.slot)
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
        if not _selector(run):  # a first deploy; a rolling <app> moving to blue/green still serves
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
        home = next((h for h in _homes(run) if h.serves(record.image)), None)
        if home is None:
            plan = run.plan_from_record(record, Slots.after(live_slot(run)))
            pods_ready = run.apply(plan, timeout, stage="restore")
            home = _home(run, plan.slots.target if isinstance(plan.slots, Slots) else SLOTS[0])
            assert home is not None, "verified just now"
        else:
            pods_ready = f"{home.ready}/{home.desired}"
        switched = _selector(run) != home.selector
        if switched:
            self._switch(run, home, timeout)
        others = [o for o in _homes(run) if o.slot and o.name != home.name and o.desired > 0]
        if switched and others:  # traffic just left them: the data plane follows late
            after_traffic_left(run, self.settings.scale_down_delay, ", ".join(o.name for o in others))
        for other in others:
            _scale(run, other.name, 0)
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
        homes = {h.slot: h for h in _homes(run)}
        if "" in homes and not live:
            lines.append(f"live: the rolling Deployment {homes[''].name} (not moved to a slot yet)")
        for slot in SLOTS:
            role = "live slot" if slot == live else "preview slot"
            home = homes.get(slot)
            if home is None:
                lines.append(f"{role}: {slot}, nothing deployed")
            elif home.desired == 0:
                lines.append(f"{role}: {slot}, {home.tag}, scaled to 0")
            else:
                lines.append(f"{role}: {slot}, {home.tag}, pods Ready {home.ready}/{home.desired}")
        return lines

    def _switch_to(self, run: Run, slot: str, image: str, pods_ready: str, timeout: float) -> InService:
        home = _home(run, slot)
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
            before = _selector(run)
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
        scale the old slot to 0 unless it is kept for rollback. Best effort: the release is
        live and good either way."""
        try:
            left = [
                o
                for o in _homes(run)
                if o.name != home.name and (not o.slot or not self.settings.keep_previous)
            ]
            if any(not o.slot or o.desired > 0 for o in left):
                after_traffic_left(run, self.settings.scale_down_delay, ", ".join(o.name for o in left))
            for other in _homes(run):
                if other.name == home.name:
                    continue
                if not other.slot:
                    _delete_rolling(run, other.name)
                    run.progress.warning(f"moved to blue/green: deleted the rolling Deployment {other.name}")
                elif not self.settings.keep_previous and other.desired > 0:
                    _scale(run, other.name, 0)
        except LockLost:
            raise
        except Exception as error:  # reported: the release stays live either way
            run.progress.warning(f"could not tidy up after the switch: {error}")


def _size_like_live(run: Run, home: Home, timeout: float) -> None:
    """Before ``home`` takes all the traffic: at least as many Ready pods as serve it now. An
    idle slot's autoscaler sized it for no load, and a slot kept for rollback was shrunk to
    its minimum while idle; switching to it as it is would meet the whole load with those."""
    from releasegate.kube.verify import wait_for_rollout

    serving = _selector(run)  # read once: each home's check would read the Service again
    live = next((h for h in _homes(run) if h.selector == serving), None)
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


def preview_service(run: Run) -> str:
    return f"{run.project.app}-preview"


def live_slot(run: Run) -> str | None:
    """The slot Service ``<app>`` selects now (None: no Service, or a rolling one)."""
    slot = (_selector(run) or {}).get(SLOT_LABEL)
    return slot if slot in SLOTS else None


def _service(run: Run, name: str) -> dict[str, Any] | None:
    path = f"{SERVICES.format(namespace=run.env.namespace)}/{name}"
    with translated_errors("cannot read the Services in", run.env.namespace, Refused):
        return run.clients.cluster.get_or_none(path)


def _selector(run: Run) -> dict[str, str] | None:
    service = _service(run, run.project.app)
    return dict(service["spec"].get("selector") or {}) if service else None


def _homes(run: Run) -> list[Home]:
    """Every Deployment a release of this app can serve from: the two slots, and the plain
    Deployment of an environment that was rolling."""
    homes = (_home(run, slot) for slot in ("", *SLOTS))
    return [home for home in homes if home is not None]


def _home(run: Run, slot: str) -> Home | None:
    name = f"{run.project.app}-{slot}" if slot else run.project.app
    deployment, pods = workload(run.clients.cluster, run.env.namespace, name)
    if deployment is None:
        return None
    return Home(name, slot, deployment, pods, _selector_for(run, slot, deployment))


def _selector_for(run: Run, slot: str, deployment: dict[str, Any]) -> dict[str, str]:
    """What ``<app>`` selects to send traffic to this Deployment: a slot's every pod (the
    preview Service's selector, for that slot), or the rolling Deployment's own selector."""
    if not slot:
        return dict(deployment["spec"]["selector"]["matchLabels"])
    preview = _service(run, preview_service(run))
    base = dict(preview["spec"].get("selector") or {}) if preview else {}
    base = base or {"app.kubernetes.io/name": run.project.app}
    return {**base, SLOT_LABEL: slot}


def _set_selector(run: Run, selector: dict[str, str]) -> None:
    """Point Service ``<app>`` at ``selector``: one merge patch (keys it no longer has are
    removed), or, on a first deploy, the Service created like the preview one."""
    run.ensure_lock()
    namespace, app = run.env.namespace, run.project.app
    current = _service(run, app)
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
    """``<app>-preview`` selects ``slot`` (the one traffic just left), as the README's table
    says: the preview Service always shows the slot that is not live."""
    preview = _service(run, preview_service(run))
    if preview is None or (preview["spec"].get("selector") or {}).get(SLOT_LABEL) == slot:
        return
    run.ensure_lock()
    path = f"{SERVICES.format(namespace=run.env.namespace)}/{preview_service(run)}"
    with translated_errors("cannot point the preview Service in", run.env.namespace, NeedsAttention):
        patch = {"spec": {"selector": {SLOT_LABEL: slot}}}
        run.clients.cluster.call("PATCH", path, body=patch, content_type=MERGE_PATCH, retry=True)


def _like_preview(run: Run, selector: dict[str, str]) -> dict[str, Any]:
    preview = _service(run, preview_service(run))
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


def _delete_rolling(run: Run, name: str) -> None:
    """The rolling Deployment and the autoscaler and disruption budget that went with it."""
    from kubernetes.client.exceptions import ApiException

    namespace = run.env.namespace
    for collection in (DEPLOYMENTS, AUTOSCALERS, DISRUPTION_BUDGETS):
        run.ensure_lock()
        try:
            run.clients.cluster.call("DELETE", f"{collection.format(namespace=namespace)}/{name}", retry=True)
        except ApiException as exc:
            if exc.status != 404:
                raise


def _describe(selector: dict[str, str] | None) -> str:
    if selector is None:
        return "nothing (it did not exist)"
    slot = selector.get(SLOT_LABEL)
    return f"slot {slot}" if slot else "the rolling Deployment"
