"""The rolling strategy: the Deployment's own RollingUpdate (maxUnavailable 0), so the old pods
serve until the new ones are Ready; a put-back is the same update towards the previous image."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import Refused
from ..verify import workload
from . import InService, Serving

if TYPE_CHECKING:
    from ..ledger import Record
    from ..render import Placement
    from ..run import Plan, Run


class Rolling:
    name = "rolling"

    def target(self, run: Run) -> Placement:
        return None

    def describe(self, plan: Plan) -> str:
        return f"would roll {plan.tag} out"

    def put_in_service(self, run: Run, plan: Plan, timeout: float) -> InService:
        pods_ready = run.apply(plan, timeout)
        run.smoke_check(plan.image)
        return InService(pods_ready)

    def promote(self, run: Run, paused: Record, timeout: float) -> InService:
        raise Refused(f"a rolling release never pauses ({paused.tag})", "deploy again")

    def abort(self, run: Run, paused: Record) -> None:
        raise Refused(f"a rolling release never pauses ({paused.tag})", "deploy again")

    def put_back(self, run: Run, record: Record, timeout: float) -> InService:
        # Smoke checks are not repeated: this release passed them when it went live.
        return InService(run.apply(run.plan_from_record(record), timeout, stage="restore"))

    def serving(self, run: Run) -> Serving:
        deployment, pods = workload(run.clients.cluster, run.env.namespace, run.project.app)
        return Serving(deployment, pods)

    def status_lines(self, run: Run) -> list[str]:
        return ["strategy: rolling"]
