"""The strategies, by the name an environment's ``strategy.type`` gives (``base.py`` is the
interface they share; one module each: ``rolling``, ``bluegreen``, ``canary``).

Layer: strategies. Commands ask here for an environment's strategy; no strategy imports this.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from releasegate.core.config import Environment
    from releasegate.run import Run
    from releasegate.strategies.base import Strategy


def for_environment(env: Environment) -> Strategy:
    from releasegate.strategies.bluegreen import BlueGreen
    from releasegate.strategies.canary import Canary
    from releasegate.strategies.rolling import Rolling

    if env.strategy.type == "bluegreen":
        return BlueGreen(env.strategy)
    if env.strategy.type == "canary":
        return Canary(env.strategy)
    return Rolling()


def strategy_of(run: Run) -> Strategy:
    """The strategy of the environment ``run`` works on."""
    return for_environment(run.env)
