"""The two route kinds a canary's weights are written to, validated as their API servers do.

``HTTPRoute`` (``gateway.networking.k8s.io/v1``) is a CRD: the API server prunes fields its
schema does not know (a typo is dropped, not refused) and answers 422 Invalid for values
outside it: at most 16 rules and 16 backendRefs per rule, a backend's ``name`` set, a
``port`` for a Service backend (the CRD's CEL rule), ``weight`` a whole number from 0 to
1000000 (default 1), rule ``name``s unique and DNS-like (v1.4's standard channel); a rule's
``matches`` default to a ``PathPrefix /`` path match and a header match's ``type`` to Exact;
at most 64 matches per rule and 128 across the rules (a CEL rule), at most 16 header matches
per match, kept as a list-map keyed by ``name`` (a second entry of one name is a duplicate);
a ``URLRewrite`` with ``ReplacePrefixMatch`` needs exactly one ``PathPrefix`` match; the rule
fields the standard channel lacks (``retry``, ``sessionPersistence``) are pruned.
``VirtualService`` (``networking.istio.io/v1``) is checked by istiod's
validating webhook: each destination needs a ``host``, each weight is 0-100, and when a route
has more than one destination the weights must add up to 100 ("total destination weight").
"""

from __future__ import annotations

import re
from typing import Any

BACKEND_FIELDS = {"group", "kind", "name", "namespace", "port", "weight", "filters"}
MAX_RULES = MAX_BACKENDS = MAX_HEADERS = 16
MAX_MATCHES_PER_RULE, MAX_MATCHES = 64, 128
RULE_FIELDS = {"name", "matches", "filters", "backendRefs", "timeouts"}  # v1.4.1, standard channel
MAX_GATEWAY_WEIGHT = 1_000_000
SECTION_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class Invalid(Exception):
    """What the API server (or the webhook) answers: status code, reason, message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


def admit(kind: str, obj: dict[str, Any], rule_names: bool = True) -> dict[str, Any]:
    """The object as stored (pruned, defaulted), or ``Invalid``. ``rule_names`` False: the
    HTTPRoute CRD of a Gateway API release without rule names, which prunes the field."""
    if kind == "HTTPRoute":
        if not rule_names:
            for rule in (obj.get("spec") or {}).get("rules") or []:
                rule.pop("name", None)
        return _http_route(obj)
    if kind == "VirtualService":
        _virtual_service(obj)
    return obj


def _http_route(obj: dict[str, Any]) -> dict[str, Any]:
    name = obj["metadata"]["name"]
    problems: list[str] = []
    rules = (obj.get("spec") or {}).get("rules") or []
    if len(rules) > MAX_RULES:
        problems.append(f"spec.rules: Too many: {len(rules)}: must have at most {MAX_RULES} items")
    names = [rule["name"] for rule in rules if "name" in rule]
    if len(names) != len(set(names)):
        problems.append('spec.rules: Invalid value: "array": Rule name must be unique within the route')
    for r, rule in enumerate(rules):
        if "name" in rule and not (isinstance(rule["name"], str) and SECTION_NAME.fullmatch(rule["name"])):
            problems.append(
                f"spec.rules[{r}].name: Invalid value: {rule['name']!r}: should match the SectionName pattern"
            )
        for unknown in set(rule) - RULE_FIELDS:  # structural schema: pruned silently
            del rule[unknown]
        rule.setdefault("matches", [{"path": {"type": "PathPrefix", "value": "/"}}])  # the CRD's defaults
        problems += _match_problems(f"spec.rules[{r}]", rule)
        backends = rule.get("backendRefs") or []
        if len(backends) > MAX_BACKENDS:
            problems.append(f"spec.rules[{r}].backendRefs: Too many: {len(backends)}: must have at most 16")
        for b, backend in enumerate(backends):
            for unknown in set(backend) - BACKEND_FIELDS:  # structural schema: pruned silently
                del backend[unknown]
            backend.setdefault("group", "")
            backend.setdefault("kind", "Service")
            backend.setdefault("weight", 1)
            problems += _backend_problems(f"spec.rules[{r}].backendRefs[{b}]", backend)
    if sum(len(rule["matches"]) for rule in rules) > MAX_MATCHES:
        problems.append(
            'spec.rules: Invalid value: "array": While 16 rules and 64 matches per rule are allowed, the '
            "total number of matches across all rules in a route must be less than 128"
        )
    if problems:
        message = f'HTTPRoute.gateway.networking.k8s.io "{name}" is invalid: ' + ", ".join(problems)
        raise Invalid(422, "Invalid", message)
    return obj


def _match_problems(where: str, rule: dict[str, Any]) -> list[str]:
    """A rule's matches, defaulted as the CRD does, against its limits and CEL rules."""
    problems = []
    matches = rule["matches"]
    if len(matches) > MAX_MATCHES_PER_RULE:
        problems.append(f"{where}.matches: Too many: {len(matches)}: must have at most 64 items")
    for m, match in enumerate(matches):
        match.setdefault("path", {"type": "PathPrefix", "value": "/"})
        headers = match.get("headers") or []
        if len(headers) > MAX_HEADERS:
            problems.append(
                f"{where}.matches[{m}].headers: Too many: {len(headers)}: must have at most 16 items"
            )
        seen: set[str] = set()
        for h, header in enumerate(headers):
            header.setdefault("type", "Exact")
            if header.get("name") in seen:  # a list-map: one entry per key
                problems.append(
                    f"{where}.matches[{m}].headers[{h}]: Duplicate value: "
                    f'map[string]interface {{}}{{"name":"{header.get("name")}"}}'
                )
            seen.add(header.get("name"))
    rewrites = [
        f
        for f in rule.get("filters") or []
        if ((f.get("urlRewrite") or {}).get("path") or {}).get("type") == "ReplacePrefixMatch"
    ]
    if len(rewrites) == 1 and not (len(matches) == 1 and matches[0]["path"].get("type") == "PathPrefix"):
        problems.append(
            f'{where}: Invalid value: "object": When using URLRewrite filter with path.replacePrefixMatch, '
            "exactly one PathPrefix match must be specified"
        )
    return problems


def _backend_problems(where: str, backend: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(backend.get("name"), str) or not backend["name"]:
        problems.append(f"{where}.name: Required value")
    weight = backend["weight"]
    if isinstance(weight, bool) or not isinstance(weight, int):
        problems.append(f'{where}.weight: Invalid value: "{weight}": must be of type integer')
    elif not 0 <= weight <= MAX_GATEWAY_WEIGHT:
        problems.append(
            f"{where}.weight: Invalid value: {weight}: {where}.weight in body should be "
            + ("greater than or equal to 0" if weight < 0 else f"less than or equal to {MAX_GATEWAY_WEIGHT}")
        )
    if backend["kind"] == "Service" and backend["group"] == "" and "port" not in backend:
        problems.append(f'{where}: Invalid value: "object": Must have port for Service reference')
    port = backend.get("port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535):
        problems.append(f"{where}.port: Invalid value: {port}: must be a port number from 1 to 65535")
    return problems


def _virtual_service(obj: dict[str, Any]) -> None:
    problems: list[str] = []
    for route in (obj.get("spec") or {}).get("http") or []:
        destinations = route.get("route") or []
        total = 0
        for destination in destinations:
            if not (destination.get("destination") or {}).get("host"):
                problems.append("destination is required")
            weight = destination.get("weight", 0)
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
                problems.append(f"percentage {weight} is not in range 0..100")
            else:
                total += weight
        if len(destinations) > 1 and total != 100:
            problems.append(f"total destination weight {total} != 100")
    if problems:
        raise Invalid(
            400,
            "BadRequest",
            'admission webhook "validation.istio.io" denied the request: configuration is invalid: '
            + ", ".join(problems),
        )


# What a Gateway API implementation writes into an HTTPRoute's status, per parent it serves:
# Accepted (the listener admits the route: allowedRoutes, hostnames) and ResolvedRefs (every
# backend exists and may be referenced), each at the generation it read. The emulator's
# controller and the real tier's stand-in (tests/real/gateway.py) both write this.
GATEWAY_CONTROLLER = "gateway.releasegate.dev/test-controller"
ROUTE_BEHAVIOURS = ("accepted", "not_allowed", "no_generation", "silent")


def parents_status(
    route: dict[str, Any], services: set[str], behaviour: str, at: str
) -> list[dict[str, Any]]:
    """``status.parents`` for ``route`` whose namespace holds ``services``; ``behaviour``:
    accepted; not_allowed (the listener's allowedRoutes refuses the namespace); no_generation
    (conditions without observedGeneration, as some implementations write them); silent (no
    controller: no status at all)."""
    if behaviour == "silent":
        return []
    generation = int(route["metadata"].get("generation", 1))
    missing = sorted(
        backend["name"]
        for rule in (route.get("spec") or {}).get("rules") or []
        for backend in rule.get("backendRefs") or []
        if backend.get("kind", "Service") == "Service"
        and backend.get("group", "") == ""
        and backend["name"] not in services
    )

    def condition(kind: str, ok: bool, reason: str, message: str) -> dict[str, Any]:
        found = {"type": kind, "status": "True" if ok else "False", "reason": reason, "message": message,
                 "lastTransitionTime": at}  # fmt: skip
        if behaviour != "no_generation":
            found["observedGeneration"] = generation
        return found

    allowed = behaviour != "not_allowed"
    accepted = condition(
        "Accepted", allowed, "Accepted" if allowed else "NotAllowedByListeners",
        "Route is accepted" if allowed else "no listener of the Gateway allows routes from this namespace",
    )  # fmt: skip
    resolved = condition(
        "ResolvedRefs", not missing, "ResolvedRefs" if not missing else "BackendNotFound",
        "All references resolved" if not missing else f"Service {missing[0]} not found",
    )  # fmt: skip
    return [
        {"parentRef": parent, "controllerName": GATEWAY_CONTROLLER, "conditions": [accepted, resolved]}
        for parent in (route.get("spec") or {}).get("parentRefs") or []
    ]


def without_times(parents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``parents`` to compare: a controller rewrites status only when something but the time changed."""
    return [
        {
            **p,
            "conditions": [
                {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in p["conditions"]
            ],
        }
        for p in parents
    ]
