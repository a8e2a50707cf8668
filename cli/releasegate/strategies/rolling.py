"""The rolling strategy: the Deployment's own RollingUpdate (maxUnavailable 0), so the old pods
serve until the new ones are Ready; a put-back is the same update towards the previous image."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..verify import workload
from . import Serving

if TYPE_CHECKING:
    from ..run import Plan, Run


class Rolling:
    name = "rolling"

    def put_in_service(self, run: Run, plan: Plan, timeout: float) -> str:
        pods_ready = run.apply(plan, timeout)
        run.smoke_check(plan.image)
        return pods_ready

    def put_back(self, run: Run, plan: Plan, timeout: float) -> str:
        # Smoke checks are not repeated: this release passed them when it went live.
        return run.apply(plan, timeout, stage="restore")

    def serving(self, run: Run) -> Serving:
        deployment, pods = workload(run.clients.cluster, run.env.namespace, run.project.app)
        return Serving(deployment, pods)
