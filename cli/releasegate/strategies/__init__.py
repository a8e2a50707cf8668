"""How a release is put in service: one small interface, one module per strategy.

The pipeline and recovery call a strategy the same way whichever it is, as Skaffold's runner
calls its deployers and Argo Rollouts its strategies; a strategy adds a file here, not a branch
in every function. Three questions cover what callers need:

- ``put_in_service``: make this release the one serving, proven (Ready on the pinned image, and
  the smoke checks passed), or raise;
- ``put_back``: make a known-good release serve again, proven the same way;
- ``serving``: what serves now (the Deployment and its pods), for ``status`` and ``smoke``.

``rolling`` (``strategies/rolling.py``) is the Kubernetes Deployment's own rolling update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..config import Environment
    from ..run import Plan, Run


@dataclass(frozen=True)
class Serving:
    deployment: dict[str, Any] | None  # None: nothing deployed yet
    pods: list[dict[str, Any]] = field(default_factory=list)

    @property
    def image(self) -> str | None:
        if self.deployment is None:
            return None
        return str(self.deployment["spec"]["template"]["spec"]["containers"][0]["image"])


class Strategy(Protocol):
    name: str

    def put_in_service(self, run: Run, plan: Plan, timeout: float) -> str:
        """The release serves, Ready and smoke-checked; returns "ready/desired" pods."""
        ...

    def put_back(self, run: Run, plan: Plan, timeout: float) -> str:
        """A known-good release serves again, Ready; returns "ready/desired" pods."""
        ...

    def serving(self, run: Run) -> Serving: ...


def for_environment(env: Environment) -> Strategy:
    from .rolling import Rolling

    strategies: dict[str, Strategy] = {"rolling": Rolling()}
    return strategies[env.strategy]
