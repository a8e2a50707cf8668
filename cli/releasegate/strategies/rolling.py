"""The rolling strategy: the Deployment's own RollingUpdate (maxUnavailable 0), so the old pods
serve until the new ones are Ready; a put-back is the same update towards the previous image.

Layer: strategies (above run and the adapters, below the commands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from releasegate.core.errors import Refused
from releasegate.kube.verify import workload
from releasegate.strategies import leaving
from releasegate.strategies.base import InService, Serving

if TYPE_CHECKING:
    from releasegate.core.placement import Placement
    from releasegate.kube.ledger import Record
    from releasegate.run import Plan, Run


class Rolling:
    name = "rolling"

    def target(self, run: Run) -> Placement:
        return None

    def describe(self, plan: Plan) -> str:
        return f"would roll {plan.tag} out"

    def put_in_service(self, run: Run, plan: Plan, timeout: float) -> InService:
        leaving_now = leaving.serving_slot(run) is not None  # the slots drain from the switch on
        pods_ready = put_in_service_leaving_bluegreen(run, plan, timeout)
        run.smoke_check(plan.image)
        leaving.retire_slots(run, run.env.strategy.scale_down_delay if leaving_now else 0)
        return InService(pods_ready)

    def promote(self, run: Run, paused: Record, timeout: float) -> InService:
        raise Refused(f"a rolling release never pauses ({paused.tag})", "deploy again")

    def abort(self, run: Run, paused: Record) -> None:
        raise Refused(f"a rolling release never pauses ({paused.tag})", "deploy again")

    def compare(self, run: Run) -> None:
        raise Refused("a rolling release has no second Service to compare with", "use bluegreen or canary")

    def put_back(self, run: Run, record: Record, timeout: float) -> InService:
        # Smoke checks are not repeated: this release passed them when it went live.
        if still := leaving.slot_still_serving(run, record.image):  # a move that never switched
            slot, pods_ready = still
            with run.stages.run("restore") as done:
                leaving.drop_unswitched(run)
                done.append(f"slot {slot} still serves {record.tag}: deleted the Deployment the move created")
            return InService(pods_ready, slot)
        plan = run.plan_from_record(record)
        return InService(put_in_service_leaving_bluegreen(run, plan, timeout, stage="restore"))

    def serving(self, run: Run) -> Serving:
        deployment, pods = workload(run.clients.cluster, run.env.namespace, run.project.app)
        return Serving(deployment, pods)

    def status_lines(self, run: Run) -> list[str]:
        return ["strategy: rolling"]


def put_in_service_leaving_bluegreen(run: Run, plan: Plan, timeout: float, stage: str = "deploy") -> str:
    """Apply and verify ``plan``; when ``<app>`` still selects a blue/green slot, without
    moving ``<app>`` until the new pods are Ready (``leaving.py``)."""
    if leaving.serving_slot(run) is None:
        return run.apply(plan, timeout, stage=stage)
    pods_ready = run.apply(leaving.without_service(run, plan), timeout, stage=stage)
    leaving.move_service(run, plan, plan.image, timeout)
    return pods_ready
