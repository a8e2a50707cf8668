"""Reading a gateway's report on an HTTPRoute (strategies/acceptance.py), on the status shapes
the Gateway API defines (RouteParentStatus: parentRef, controllerName, conditions)."""

from __future__ import annotations

from typing import Any

from releasegate.strategies.acceptance import problem
from tests.emulators.routes import parents_status
from tests.test_canary import route

AT = "2026-12-02T00:00:00Z"


def reported(
    behaviour: str = "accepted", services: frozenset[str] = frozenset({"model-api"})
) -> dict[str, Any]:
    found = route("gateway")
    found["metadata"]["generation"] = 3
    found["status"] = {"parents": parents_status(found, set(services), behaviour, AT)}
    return found


def test_a_route_every_parent_accepted_with_its_refs_resolved_has_no_problem() -> None:
    assert problem(reported()) is None


def test_each_condition_false_is_named_with_its_reason_and_message() -> None:
    assert problem(reported("not_allowed")) == (
        "parent gateways/public: Accepted is False (NotAllowedByListeners: no listener of the "
        "Gateway allows routes from this namespace)"
    )
    assert "ResolvedRefs is False (BackendNotFound: Service model-api not found)" in str(
        problem(reported(services=frozenset()))
    )
    assert problem(reported(services=frozenset()), ("Accepted",)) is None  # pre-flight asks only this


def test_a_report_for_an_older_generation_or_none_at_all_is_not_yet_an_answer() -> None:
    stale = reported()
    stale["metadata"]["generation"] = 4
    assert problem(stale) == "parent gateways/public: Accepted is for generation 3, the route is at 4"
    assert problem(reported("silent")) == "no gateway controller has reported on parent gateways/public yet"
    undated = reported("no_generation")
    undated["metadata"]["generation"] = 9
    assert problem(undated) is None  # an implementation that reports no generation is taken at its word


def test_every_parent_needs_its_own_report() -> None:
    two = reported()
    two["spec"]["parentRefs"].append({"name": "internal", "namespace": "gateways", "sectionName": "https"})
    assert problem(two) == "no gateway controller has reported on parent gateways/internal:https yet"
    two["status"]["parents"].append(
        {**two["status"]["parents"][0], "parentRef": two["spec"]["parentRefs"][1]}
    )
    assert problem(two) is None
