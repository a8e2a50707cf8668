"""Canary: the release runs as ``<app>-canary`` beside the stable ``<app>`` and takes a growing
share of the traffic, step by step, checked all along; after the last step it is promoted.

1. The canary Deployment is applied (the stable one is not in the manifests, so nothing can
   touch it), verified Ready on the pinned image, and smoke-checked through ``<app>-canary``
   while its weight is 0.
2. Each step scales the canary to its share, ``ceil(S x w / 100)`` pods (S: the stable count
   when the deploy started), waits for them, writes its weight (``traffic.py``: a route's two
   backends, or the pods' ratio) and holds it for its pause, running the smoke checks against
   ``<app>-canary`` (each with its configured tries) and the Prometheus analysis every
   ``interval``. A step whose pause is ``approval`` holds one interval of checks like that,
   then stops: the release is recorded ``paused`` at that step, and ``promote`` goes on from
   there. While a canary runs the stable autoscaler's minReplicas is held at S, so the stable
   Deployment cannot shrink as traffic leaves it.
3. Promotion: the stable Deployment takes the new image and is verified, the weights go back
   to stable 100 / canary 0, the canary Deployment is deleted and the autoscaler let go.

Any failure, a timeout or an interrupt ends in ``put_back``: weights to stable 100 first (the
fast part, so users leave the canary at once), then the canary deleted; the stable Deployment
is only redeployed when it no longer runs the release to put back (a failed promotion).
The first deploy of an environment without a stable track goes straight to stable.

Layer: strategies (above run and the adapters, below the commands).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from releasegate.core.errors import NeedsAttention, Refused
from releasegate.core.placement import Track
from releasegate.deploy import render as renderer
from releasegate.kube.api import DEPLOYMENTS
from releasegate.kube.drains import DELETE, Leave
from releasegate.kube.verify import workload
from releasegate.strategies import draining, leaving
from releasegate.strategies.acceptance import ACCEPT_SECONDS
from releasegate.strategies.analysis import ERROR, Evaluations, evaluate
from releasegate.strategies.base import InService, Serving
from releasegate.strategies.comparing import compare_with_serving
from releasegate.strategies.rolling import put_in_service_leaving_bluegreen
from releasegate.strategies.sizing import CanarySizing, let_go_of_stable
from releasegate.strategies.tracks import (
    canary_name,
    canary_service,
    canary_track,
    desired,
    has_stable_track,
    ready_pods,
    serves,
    stable_track,
    tag_of,
)
from releasegate.strategies.traffic import HEADER_RULE, for_settings

if TYPE_CHECKING:
    from releasegate.core.strategy_config import CanaryStep, StrategySettings
    from releasegate.kube.ledger import Record
    from releasegate.run import Plan, Run

DISRUPTION_BUDGETS = "/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets"
CHECK_INTERVAL = 10.0  # seconds between check rounds during a pause when there is no analysis
MERGE_PATCH = "application/merge-patch+json"
ANALYSIS_ADVICE = "look at the canary's metrics, fix the release, deploy again"


class Canary:
    name = "canary"

    def __init__(self, settings: StrategySettings) -> None:
        self.settings = settings
        self.traffic = for_settings(settings.traffic, settings.route, settings.header)
        self.evaluations: Evaluations | None = None  # this run's analysis verdicts, once it has any
        self.sizing = CanarySizing()  # S, the canary's pods per step, the stable autoscaler's hold

    @property
    def steps(self) -> tuple[CanaryStep, ...]:
        return self.settings.steps

    def target(self, run: Run) -> Track:
        self.traffic.require_route(run)  # before any change: exit 3 when it is missing
        track = "canary" if has_stable_track(run) else "stable"
        return Track(track, self.settings.traffic)

    def describe(self, plan: Plan) -> str:
        assert isinstance(plan.slots, Track)
        if plan.slots.name == "stable":
            return (
                f"would deploy {plan.tag} straight to stable (there is no stable release to compare it with)"
            )
        steps = ", ".join(
            f"{s.weight} % until approved" if s.approval else f"{s.weight} % for {s.pause:g} s"
            for s in self.steps
        )
        return (
            f"would deploy {plan.tag} as the canary beside the stable release, test it at 0 %, "
            f"then {steps} ({self.settings.traffic}), then promote it to stable"
        )

    def put_in_service(self, run: Run, plan: Plan, timeout: float) -> InService:
        run.pod_timeout = timeout
        assert isinstance(plan.slots, Track), "a canary plan names its track"
        if plan.slots.name == "stable":  # nothing to compare with: straight to stable
            leaving_now = leaving.serving_slot(run) is not None  # the slots drain from the switch on
            pods_ready = put_in_service_leaving_bluegreen(run, plan, timeout)
            self._weigh(run, 0)
            self.traffic.route_header(run, None)  # none left from an earlier canary
            run.smoke_check(plan.image)
            leaving.retire_slots(run, self.settings.scale_down_delay if leaving_now else 0)
            return InService(pods_ready)
        self.sizing.hold_stable(run)
        # Applied at the size of its first share (one pod at 0 %), never at the stable's size.
        track = dataclasses.replace(plan.slots, pods=self.sizing.pods_for(run, 0))
        sized = dataclasses.replace(
            plan, slots=track, manifests=renderer.render(run.project, run.env, plan.tag, plan.image, track)
        )
        run.apply(sized, timeout)
        self._weigh(run, 0)
        self.traffic.route_header(run, self.settings.header)  # testers reach it from now on
        run.milestone("canary 0 %, testing")
        run.smoke_check(plan.image, service=canary_service(run), stage="canary")
        self.compare(run)  # at 0 %: before the canary takes any traffic
        return self._steps(run, plan.tag.text, plan.image, 0)

    def compare(self, run: Run) -> None:
        """The canary against the stable track (``compare:``)."""
        compare_with_serving(run, serving=f"{run.project.app}-stable", candidate=canary_service(run))

    def promote(self, run: Run, paused: Record, timeout: float) -> InService:
        run.pod_timeout = timeout
        done = step_number(paused.step)
        canary = canary_track(run)
        if canary is None or not serves(canary, paused.image):
            raise NeedsAttention(
                f"{canary_name(run)} no longer runs {paused.tag} with every pod Ready",
                "abort it (`releasegate abort`) and deploy again",
            )
        self.sizing.hold_stable(run)
        self.traffic.route_header(run, self.settings.header)  # still there, unless removed by hand
        with run.stages.run(f"step {done}") as stage:  # it has waited: check it once more
            self._evaluations(run).begin(done)
            stage.append(f"canary {self.steps[done - 1].weight} % approved; {self._check(run, paused.image)}")
        return self._steps(run, paused.tag, paused.image, done)

    def abort(self, run: Run, paused: Record) -> None:
        del paused
        self._weigh(run, 0, confirm=False)
        self.traffic.route_header(run, None)
        _delete_canary(run, self.settings.scale_down_delay)
        let_go_of_stable(run)

    def put_back(self, run: Run, record: Record, timeout: float) -> InService:
        """Traffic to stable first, then the stable Deployment redeployed only if it no longer
        runs ``record`` Ready, then the canary deleted and the stable autoscaler let go."""
        stable = stable_track(run)
        if stable is not None and ready_pods(stable):
            self._weigh(run, 0, confirm=False)
        if stable is not None and serves(stable, record.image):
            pods_ready = f"{ready_pods(stable)}/{desired(stable)}"
        else:
            plan = run.plan_from_record(record, Track("stable", self.settings.traffic))
            pods_ready = run.apply(plan, timeout, stage="restore")
            self._weigh(run, 0, confirm=False)
        self.traffic.route_header(run, None)
        _delete_canary(run, self.settings.scale_down_delay)
        let_go_of_stable(run)
        return InService(pods_ready, weight=0)

    def serving(self, run: Run) -> Serving:
        deployment, pods = workload(run.clients.cluster, run.env.namespace, run.project.app)
        return Serving(deployment, pods)

    def status_lines(self, run: Run) -> list[str]:
        route = f", route {self.settings.route}" if self.settings.route else ""
        lines = [f"strategy: canary ({self.settings.traffic}{route}; steps {_steps_text(self.steps)})"]
        for name, deployment in (("stable", stable_track(run)), ("canary", canary_track(run))):
            if deployment is None:
                lines.append(f"{name}: nothing deployed")
            else:
                lines.append(
                    f"{name}: {tag_of(deployment)}, pods Ready {ready_pods(deployment)}/{desired(deployment)}"
                )
        weight = self.traffic.weight(run)
        lines.append(f"canary weight: {'unknown' if weight is None else f'{weight} %'}")
        if (header := self.settings.header) is not None:
            state = "in place" if self.traffic.header_rule_present(run) else "not in place (no canary)"
            lines.append(f"header routing: {header.name}: {header.value} → canary; {HEADER_RULE} {state}")
        return lines

    def _steps(self, run: Run, tag: str, image: str, start: int) -> InService:
        """Steps ``start`` onwards, then the promotion; or a stop at an approval step, once it
        has held its weight through one interval of checks."""
        for index in range(start, len(self.steps)):
            step = self.steps[index]
            number = index + 1
            run.result.step, run.result.weight = number, step.weight  # where a failure would stop it
            run.result.weights.append(step.weight)
            self.sizing.resize(run, step.weight, before_weight=True)
            self._weigh(run, step.weight)
            self.sizing.resize(run, step.weight, before_weight=False)
            run.milestone(f"canary {step.weight} %")
            with run.stages.run(f"step {number}") as stage:
                stage.append(self._hold(run, image, number, step))
            if step.approval:
                run.progress.warning(
                    f"{tag} takes {step.weight} % (step {number}/{len(self.steps)}) and waits for approval: "
                    f"`releasegate promote --env {run.env.name}` goes on, `releasegate abort` reverts it"
                )
                pods = canary_track(run)
                ready = f"{ready_pods(pods)}/{desired(pods)}" if pods else "0/0"
                waiting = f"canary {step.weight} %, waiting for approval"
                return InService(
                    ready, paused=f"step {number}", step=number, weight=step.weight, status=waiting
                )
        return self._promote(run, tag, image)

    def _hold(self, run: Run, image: str, number: int, step: CanaryStep) -> str:
        """Keep ``step``'s weight for its pause, checking all through it; raise on a failed check.

        A round every ``interval`` from the weight write: the smoke checks in each, the analysis
        from the second on, so its first evaluation comes one interval after the write (metrics
        need that long to show the new weight). With analysis a pause lasts at least one
        interval: every step is evaluated, and one evaluation must pass. An approval step holds
        one interval before it stops: nobody approves a share of the traffic nothing checked.
        """
        analysis = self.settings.analysis
        interval = analysis.interval if analysis else CHECK_INTERVAL
        pause = interval if step.pause is None else max(step.pause, interval) if analysis else step.pause
        where = f"step {number} ({step.weight} %): "
        evaluations = self._evaluations(run)
        evaluations.begin(number)
        ends = time.monotonic() + pause
        rounds = 0
        while True:
            last = self._check(run, image, where, analyse=rounds > 0)
            rounds += 1
            left = ends - time.monotonic()
            run.progress.detail(
                "canary",
                f"step {number}/{len(self.steps)} · canary {step.weight} % · {max(left, 0):.0f} s left · "
                f"last check: {last}",
            )
            if left <= 0:
                break
            time.sleep(min(interval, left))
        if analysis is not None and (problem := evaluations.unproven()):
            raise NeedsAttention(f"canary {where}{problem}", ANALYSIS_ADVICE)
        return f"canary {step.weight} % for {pause:g} s: {rounds} check rounds passed ({last})"

    def _evaluations(self, run: Run) -> Evaluations:
        """This run's analysis verdicts, shared with its JSON result."""
        if self.evaluations is None:
            analysis = self.settings.analysis
            limits = (analysis.failure_limit, analysis.error_limit) if analysis else (0, 0)
            self.evaluations = Evaluations(*limits, maximum=analysis.prometheus.max if analysis else None)
            run.result.analysis = self.evaluations.entries
        return self.evaluations

    def _check(self, run: Run, image: str, where: str = "", analyse: bool = True) -> str:
        """One round: an abort someone asked for, every smoke check once against the canary,
        then (with ``analyse``) the analysis query; raise when any says abort."""
        if (asker := run.abort_requested()) is not None:  # `releasegate abort` while this runs
            next_step = "deploy again when the incident is over"
            raise NeedsAttention(
                f"canary {where}aborted at the request of {asker}", next_step, after_restore=next_step
            )
        self._route_still_served(run, where)
        said = [self._smoke_round(run, image, where)] if run.env.smoke is not None else []
        if self.settings.analysis is not None and analyse:
            said.append(self._evaluate(run, where))
        return ", ".join(said) or "no checks configured"

    def _route_still_served(self, run: Run, where: str) -> None:
        """A route the gateway stops accepting mid-step sends the canary nothing: abort."""
        try:
            self.traffic.confirm(run, 0)
        except NeedsAttention as broken:
            raise NeedsAttention(f"canary {where}{broken.cause}", broken.hint) from broken

    def _smoke_round(self, run: Run, image: str, where: str) -> str:
        from releasegate.kube.smoke import SmokeFailed, run_checks

        assert run.env.smoke is not None
        try:  # each check gets its configured tries: one 429 or evicted pod is not a failed canary
            results = run_checks(
                run.clients.cluster,
                run.env.namespace,
                canary_service(run),
                run.env.smoke,
                image,
                lambda text: None,  # the round's own progress line says how it went
            )
        except SmokeFailed as failed:
            run.result.smoke = [r.as_dict() for r in failed.results]
            raise NeedsAttention(f"canary {where}{failed.cause}", failed.hint) from failed
        return f"{len(results)} smoke checks passed"

    def _evaluate(self, run: Run, where: str) -> str:
        assert self.settings.analysis is not None
        prometheus = self.settings.analysis.prometheus
        verdict = evaluate(prometheus, run.clients.cluster, run.env.aws_region)
        evaluations = self._evaluations(run)
        if problem := evaluations.record(verdict):
            raise NeedsAttention(f"canary {where}{problem}", ANALYSIS_ADVICE)
        if verdict.passed:
            return f"analysis {verdict.value:g} ≤ {prometheus.max:g}"
        if verdict.kind == ERROR:
            return f"{verdict.problem} (tolerated: {evaluations.errors_in_a_row} in a row)"
        return f"{verdict.problem} (tolerated: {evaluations.failed_in_step} in this step)"

    def _promote(self, run: Run, tag: str, image: str) -> InService:
        plan = run.plan_for(tag, image, Track("stable", self.settings.traffic))
        pods_ready = run.apply(plan, run.pod_timeout or 1.0, stage="promote")
        self.sizing.hold_stable(run)  # the apply put the autoscaler's own minimum back
        self._weigh(run, 0)
        self.traffic.route_header(run, None)
        _delete_canary(run, self.settings.scale_down_delay)
        let_go_of_stable(run)
        run.milestone("promoted")
        return InService(pods_ready, step=len(self.steps), weight=100)

    def _weigh(self, run: Run, weight: int, confirm: bool = True) -> None:
        """Write the weights; with ``confirm``, wait until the gateway serves them as written
        (putting traffic back does not wait: it is the way out of a broken route too)."""
        with run.stages.run("weight") as done:
            self.traffic.set_weight(run, weight)
            if confirm:
                self.traffic.confirm(run, ACCEPT_SECONDS)
            done.append(f"stable {100 - weight} % / canary {weight} %")


def step_number(step: str) -> int:
    """The 1-based step a paused canary waits at, from the ledger's "step N"."""
    try:
        return int(step.split()[-1])
    except (ValueError, IndexError) as exc:
        raise Refused(f"the paused release's step {step!r} is not a canary step", "abort it") from exc


def _steps_text(steps: tuple[CanaryStep, ...]) -> str:
    return " → ".join(f"{s.weight} %" + (" (approval)" if s.approval else "") for s in steps)


def _delete_canary(run: Run, delay: float) -> None:
    """The canary Deployment and its disruption budget (its Service stays: the route's
    weight-0 backend), ``delay`` seconds after traffic left it, or by the next run when this
    one must end now."""
    namespace, name = run.env.namespace, canary_name(run)
    leaves = [
        Leave(DELETE, f"{c.format(namespace=namespace)}/{name}") for c in (DEPLOYMENTS, DISRUPTION_BUDGETS)
    ]
    if canary_track(run) is None:  # nothing serves there: only leftovers to delete, at once
        delay = 0
    draining.leave(
        run, delay, f"Deployment {name}", leaves, f"Deployment {name} and its disruption budget deleted"
    )
