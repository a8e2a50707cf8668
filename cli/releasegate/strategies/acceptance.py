"""Whether the gateway has taken an HTTPRoute as written.

A Gateway API implementation reports on each route, per parent (Gateway or listener) the route
names, in ``status.parents``: ``Accepted`` (the listener admits it: its ``allowedRoutes``,
hostnames) and ``ResolvedRefs`` (every backend exists and may be referenced, a ReferenceGrant
for another namespace). A route the gateway did not accept, or whose refs do not resolve, sends
the canary nothing whatever its weights say: a canary "tested" that way would be promoted
untested. Each condition carries the ``observedGeneration`` it was computed for, where the
implementation reports one (not all do): an older one says nothing about the latest write.

Layer: strategies (above run and the adapters, below the commands).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

ACCEPT_SECONDS = 60.0  # how long a weight write may wait for the gateway to report on it
POLL_SECONDS = 0.25
QUIET_SECONDS = 1.0  # a report this quick needs no progress line
REPEAT_SECONDS = 5.0
NEEDED = ("Accepted", "ResolvedRefs")


def problem(route: dict[str, Any], needed: tuple[str, ...] = NEEDED) -> str | None:
    """What keeps ``route`` from being served as written, or None when every parent reports
    each ``needed`` condition True for its current generation."""
    namespace = route["metadata"].get("namespace", "")
    generation = int(route["metadata"].get("generation") or 0)
    reports = (route.get("status") or {}).get("parents") or []
    for parent in (route.get("spec") or {}).get("parentRefs") or []:
        about = [r for r in reports if _same_parent(r.get("parentRef") or {}, parent, namespace)]
        where = _parent_name(parent, namespace)
        if not about:
            return f"no gateway controller has reported on parent {where} yet"
        answers = [_parent_problem(report, needed, generation) for report in about]
        if None not in answers:
            return f"parent {where}: {answers[0]}"
    return None


def wait_until_accepted(
    read: Callable[[], dict[str, Any]], seconds: float, on_progress: Callable[[str], None]
) -> str | None:
    """Read the route until it has no ``problem``; the last problem when ``seconds`` ran out.
    A gateway usually reports within a second: only a longer wait gets a progress line."""
    started = time.monotonic()
    said = started + QUIET_SECONDS - REPEAT_SECONDS
    while (found := problem(read())) is not None:
        now = time.monotonic()
        left = started + seconds - now
        if left <= 0:
            return found
        if now - said >= REPEAT_SECONDS:
            on_progress(f"waiting for the gateway to accept the route ({left:.0f} s left): {found}")
            said = now
        time.sleep(min(POLL_SECONDS, left))
    return None


def _parent_problem(report: dict[str, Any], needed: tuple[str, ...], generation: int) -> str | None:
    conditions = {c.get("type"): c for c in report.get("conditions") or [] if isinstance(c, dict)}
    for kind in needed:
        condition = conditions.get(kind)
        if condition is None:
            return f"no {kind} condition yet"
        seen = condition.get("observedGeneration")
        if seen is not None and generation and int(seen) < generation:
            return f"{kind} is for generation {seen}, the route is at {generation}"
        if condition.get("status") != "True":
            reason, message = condition.get("reason", "?"), condition.get("message", "")
            return (
                f"{kind} is {condition.get('status')} ({reason}: {message})"
                if message
                else f"{kind} is {condition.get('status')} ({reason})"
            )
    return None


def _same_parent(reported: dict[str, Any], wanted: dict[str, Any], namespace: str) -> bool:
    """The parentRef a report is about is the one the route names (defaults filled in)."""
    keys = ("group", "kind", "name", "namespace", "sectionName", "port")
    defaults = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": namespace}
    return all(reported.get(k, defaults.get(k)) == wanted.get(k, defaults.get(k)) for k in keys)


def _parent_name(parent: dict[str, Any], namespace: str) -> str:
    name = f"{parent.get('namespace', namespace)}/{parent.get('name', '?')}"
    return f"{name}:{parent['sectionName']}" if parent.get("sectionName") else name
