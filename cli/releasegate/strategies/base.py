"""How a release is put in service: the interface every strategy implements, and what they share.

Layer: strategies (below the commands, above the adapters); imports no strategy.

The pipeline and recovery call a strategy the same way whichever it is, as Skaffold's runner
calls its deployers and Argo Rollouts its strategies; a strategy adds a file here, not a branch
in every function. What callers need:

- ``target``: where the next release goes (blue/green: the idle slot), known before rendering;
- ``put_in_service``: make this release the one serving, proven (Ready on the pinned image, and
  the smoke checks passed), or raise; it may stop on purpose (``InService.paused``);
- ``promote`` / ``abort``: go on with a paused release, or discard it;
- ``put_back``: make a known-good release serve again, proven the same way;
- ``serving`` and ``status_lines``: what serves now, for ``status`` and ``smoke``.

``rolling`` is the Kubernetes Deployment's own rolling update; ``bluegreen`` two slots behind a
Service whose selector is switched; ``canary`` a second Deployment given a growing share of the
traffic (``traffic.py``: route weights or the pods' ratio).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from releasegate.core.placement import Placement
    from releasegate.kube.ledger import Record
    from releasegate.run import Plan, Run


@dataclass(frozen=True)
class Serving:
    deployment: dict[str, Any] | None  # None: nothing deployed yet
    pods: list[dict[str, Any]] = field(default_factory=list)
    slot: str = ""  # blue/green: the live slot

    @property
    def image(self) -> str | None:
        if self.deployment is None:
            return None
        return str(self.deployment["spec"]["template"]["spec"]["containers"][0]["image"])


@dataclass(frozen=True)
class InService:
    """Where a release ended up."""

    pods_ready: str  # "ready/desired"
    slot: str = ""  # blue/green: the slot it runs in
    paused: str = ""  # set when it stopped on purpose: the step it waits before (or at)
    step: int | None = None  # canary: the step reached
    weight: int | None = None  # canary: the share of traffic the release has
    status: str = ""  # what the GitHub deployment says while it is paused (default: the step)


class Strategy(Protocol):
    name: str

    def target(self, run: Run) -> Placement: ...

    def describe(self, plan: Plan) -> str:
        """What a deploy of ``plan`` would do, for --dry-run."""
        ...

    def put_in_service(self, run: Run, plan: Plan, timeout: float) -> InService: ...

    def promote(self, run: Run, paused: Record, timeout: float) -> InService: ...

    def abort(self, run: Run, paused: Record) -> None: ...

    def compare(self, run: Run) -> None:
        """``compare:`` against what serves (a paused release's candidate, for `releasegate compare`)."""
        ...

    def put_back(self, run: Run, record: Record, timeout: float) -> InService: ...

    def serving(self, run: Run) -> Serving: ...

    def status_lines(self, run: Run) -> list[str]: ...
