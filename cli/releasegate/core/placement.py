"""Where a release's objects go and what a rendered object is: the types the renderers
(``render.py``, ``chart.py``), the ledger and the strategies share.

Layer: core (pure data, no I/O); below everything that renders or places a release.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The replica count an autoscaled Deployment is created with (autoscaling.py sets it).
INITIAL_REPLICAS = "releasegate.dev/initial-replicas"


SLOTS = ("blue", "green")
SLOT_LABEL = "releasegate.dev/slot"


@dataclass(frozen=True)
class Slots:
    """Blue/green: the slot a release goes to, and the one Service ``<app>`` selects now (None
    before any slot has gone live: a first deploy, or a move from rolling)."""

    target: str
    live: str | None

    @classmethod
    def after(cls, live: str | None) -> Slots:
        """Where the next release goes: the idle slot, blue when none is live."""
        return cls(target=other_slot(live) if live else SLOTS[0], live=live)


def other_slot(slot: str) -> str:
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


TRACKS = ("stable", "canary")
TRACK_LABEL = "releasegate.dev/track"


@dataclass(frozen=True)
class Track:
    """Canary: which track a release's objects are for (``stable``: ``<app>``, promoted or the
    first release; ``canary``: ``<app>-canary`` beside it), and how traffic reaches them."""

    name: str  # one of TRACKS
    traffic: str  # gateway | istio | replicas
    # The canary's pod count when it is applied (releasegate sizes it to its share of the
    # traffic); not part of which track it is.
    pods: int | None = field(default=None, compare=False)


# Where a release's objects go: rolling None, a blue/green slot, or a canary track.
Placement = Slots | Track | None


def every_placement(strategy: str, traffic: str = "") -> list[Placement]:
    """Every place a strategy puts objects (both slots, with the other one live; both tracks):
    together, everything an environment renders, which pruning must leave alone."""
    if strategy == "bluegreen":
        return [Slots(target=slot, live=other_slot(slot)) for slot in SLOTS]
    if strategy == "canary":
        return [Track(name, traffic) for name in TRACKS]
    return [None]


def workload_name(app: str, placement: Placement) -> str:
    """The Deployment a release is verified in: ``<app>``, ``<app>-<slot>`` for blue/green,
    ``<app>-canary`` for a canary."""
    if isinstance(placement, Slots):
        return f"{app}-{placement.target}"
    if isinstance(placement, Track) and placement.name == "canary":
        return f"{app}-canary"
    return app


@dataclass(frozen=True)
class Manifest:
    filename: str
    text: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj["kind"])

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])
