"""Where a canary's share of the traffic is set: a route's weights, or the pods' ratio.

``gateway`` and ``istio``: the team creates the route once (parents, hostnames, matches) and
releasegate changes only the backends of its first rule, written as two, ``<app>-stable``
(100 - w) and ``<app>-canary`` (w), with one JSON patch of that one field, so nothing else in
the route (nor a controller's status) is ever overwritten. With ``header``, one rule of
releasegate's own, ``releasegate-canary-header``, stands before the team's first rule while a
canary runs: the team rule's matches, each also requiring the header, sent to the canary (the
same matches plus a header match outrank the team's in Gateway API's precedence; Istio takes
the first match in order). The weights then go to the rule after it. ``replicas``: no route; Service
``<app>`` selects the stable track only at weight 0, and both tracks otherwise, the canary
strategy having scaled the canary to ``ceil(replicas x w / 100)`` pods beside the stable ones.

Layer: strategies (above run and the adapters, below the commands).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from releasegate.core.errors import NeedsAttention, Refused
from releasegate.core.strategy_config import Header
from releasegate.kube.api import DEPLOYMENTS, SERVICES, translated_errors
from releasegate.strategies import acceptance

if TYPE_CHECKING:
    from releasegate.run import Run

JSON_PATCH = "application/json-patch+json"
# Gateway API v1.4's standard HTTPRoute CRD: at most 16 rules, 128 matches across them (a CEL
# rule), and 16 header matches per match, kept as a list-map keyed by the header's name.
MAX_HTTPROUTE_RULES = 16
MAX_HTTPROUTE_MATCHES = 128
MAX_HEADER_MATCHES = 16
MERGE_PATCH = "application/merge-patch+json"
HEADER_RULE = "releasegate-canary-header"  # the one rule releasegate adds, by name
APP_NAME_LABEL = "app.kubernetes.io/name"


class Traffic(Protocol):
    def require_route(self, run: Run) -> None:
        """Before any change: what the weights are written to exists (exit 3 otherwise)."""
        ...

    def set_weight(self, run: Run, weight: int) -> None: ...

    def route_header(self, run: Run, header: Header | None) -> None:
        """With ``header``, the rule sending it to the canary is in place; without, it is gone."""
        ...

    def header_rule_present(self, run: Run) -> bool: ...

    def confirm(self, run: Run, seconds: float) -> None:
        """Raise NeedsAttention unless what was written is served as written (a gateway's
        route status), waiting up to ``seconds`` for it to say so."""
        ...

    def weight(self, run: Run) -> int | None:
        """The canary's share now (None: not known, e.g. the route lacks releasegate's backends)."""
        ...


@dataclass(frozen=True)
class RouteKind:
    """What differs between an HTTPRoute and a VirtualService."""

    kind: str
    api: str  # group/version
    plural: str
    rules_key: str  # spec.rules | spec.http
    backends_key: str  # a rule's backends: backendRefs | route
    matches_key: str  # a rule's matches: matches | match

    def path(self, namespace: str, name: str) -> str:
        return f"/apis/{self.api}/namespaces/{namespace}/{self.plural}/{name}"

    def rules(self, route: dict[str, Any]) -> list[Any]:
        return list((route.get("spec") or {}).get(self.rules_key) or [])

    def team_index(self, route: dict[str, Any]) -> int:
        """Where the team's first rule is: after releasegate's header rule, when it is there."""
        rules = self.rules(route)
        return 1 if rules and isinstance(rules[0], dict) and rules[0].get("name") == HEADER_RULE else 0

    def first_rule(self, route: dict[str, Any]) -> dict[str, Any] | None:
        rules, index = self.rules(route), self.team_index(route)
        return rules[index] if len(rules) > index and isinstance(rules[index], dict) else None

    def backends_pointer(self, index: int) -> str:
        return f"/spec/{self.rules_key}/{index}/{self.backends_key}"

    def header_rule(
        self, team_rule: dict[str, Any], header: Header, backend: dict[str, Any]
    ) -> dict[str, Any]:
        """The team's rule in every respect (filters, rewrites, timeouts, retries, header
        changes…) but its name and backends, each of its matches (or one match-all) also
        requiring the header exactly."""
        wanted = [self._with_header(m, header) for m in self._matches(team_rule)]
        kept = {k: v for k, v in team_rule.items() if k not in ("name", self.backends_key, self.matches_key)}
        return {"name": HEADER_RULE, **kept, self.matches_key: wanted, self.backends_key: [backend]}

    def _matches(self, rule: dict[str, Any]) -> list[dict[str, Any]]:
        return [m for m in rule.get(self.matches_key) or [{}] if isinstance(m, dict)] or [{}]

    def _with_header(self, match: dict[str, Any], header: Header) -> dict[str, Any]:
        if self.kind == "HTTPRoute":
            exact = {"type": "Exact", "name": header.name, "value": header.value}
            return {**match, "headers": [*(match.get("headers") or []), exact]}
        # Istio wants header names in lower case
        return {
            **match,
            "headers": {**(match.get("headers") or {}), header.name.lower(): {"exact": header.value}},
        }

    def no_room(self, route: dict[str, Any], header: Header) -> str:
        """Why the route cannot take the header rule ('' when it can, or has it already)."""
        if self.team_index(route) == 1:
            return ""
        team_rule = self.first_rule(route) or {}
        for match in self._matches(team_rule):
            headers = match.get("headers") or []
            names = list(headers) if isinstance(headers, dict) else [h.get("name", "") for h in headers]
            if same := [n for n in names if str(n).lower() == header.name.lower()]:
                return f"its first rule already matches on header {same[0]}"
            if self.kind == "HTTPRoute" and len(names) >= MAX_HEADER_MATCHES:
                return f"a match of its first rule tests {len(names)} headers, the most a match may"
        if self.kind != "HTTPRoute":
            return ""
        rules = self.rules(route)
        if len(rules) >= MAX_HTTPROUTE_RULES:
            return f"it has {len(rules)} rules, the most an HTTPRoute may have"
        matches = sum(len(self._matches(r)) for r in rules if isinstance(r, dict))
        total = matches + len(self._matches(team_rule))
        if total > MAX_HTTPROUTE_MATCHES:
            return f"with it the route would have {total} matches in all, more than the {MAX_HTTPROUTE_MATCHES} an HTTPRoute may have"  # noqa: E501
        return ""

    def backend(self, service: str, port: int, weight: int) -> dict[str, Any]:
        if self.kind == "HTTPRoute":
            return {"group": "", "kind": "Service", "name": service, "port": port, "weight": weight}
        return {"destination": {"host": service, "port": {"number": port}}, "weight": weight}

    def service_of(self, backend: dict[str, Any]) -> str:
        if self.kind == "HTTPRoute":
            return str(backend.get("name", ""))
        return str((backend.get("destination") or {}).get("host", ""))


HTTP_ROUTE = RouteKind(
    "HTTPRoute", "gateway.networking.k8s.io/v1", "httproutes", "rules", "backendRefs", "matches"
)
VIRTUAL_SERVICE = RouteKind(
    "VirtualService", "networking.istio.io/v1", "virtualservices", "http", "route", "match"
)


class RouteWeights:
    def __init__(self, kind: RouteKind, route: str, header: Header | None = None) -> None:
        self.kind, self.route, self.header = kind, route, header

    def require_route(self, run: Run) -> None:
        route = self._read(run)
        if self.kind.first_rule(route) is None:
            raise Refused(
                f"{self.kind.kind} {self.route} in {run.env.namespace} has no rule whose backends "
                "releasegate could weigh",
                "give it one rule (its parents and matches); releasegate writes that rule's backends",
            )
        # Its backends may not exist yet (the deploy creates them), but a listener must admit it.
        if self.kind is HTTP_ROUTE and (problem := acceptance.problem(route, ("Accepted",))):
            raise Refused(
                f"HTTPRoute {self.route} in {run.env.namespace} is not accepted by its gateway: {problem}",
                f"fix what the gateway reports (`kubectl describe httproute {self.route}`): the listener's "
                "allowedRoutes, the parentRefs, a ReferenceGrant; then deploy again",
            )
        if self.header is not None and (problem := self.kind.no_room(route, self.header)):
            raise Refused(
                f"{self.kind.kind} {self.route} in {run.env.namespace} cannot take releasegate's "
                f"{HEADER_RULE} rule for strategy.header {self.header.name}: {problem}",
                "make room in the route (fewer rules or matches, no match on that header), "
                "or remove strategy.header",
            )

    def set_weight(self, run: Run, weight: int) -> None:
        app = run.project.app
        port = _service_port(run, f"{app}-stable")
        backends = [
            self.kind.backend(f"{app}-stable", port, 100 - weight),
            self.kind.backend(f"{app}-canary", port, weight),
        ]
        index = self.kind.team_index(self._read(run))
        replace = {"op": "replace", "path": self.kind.backends_pointer(index), "value": backends}
        self._patch(run, [*self._still_there(index), replace])

    def route_header(self, run: Run, header: Header | None) -> None:
        route = self._read(run)
        present = self.kind.team_index(route) == 1
        pointer = f"/spec/{self.kind.rules_key}/0"
        if header is not None and not present:
            team_rule = self.kind.first_rule(route) or {}
            canary = self.kind.backend(
                f"{run.project.app}-canary", _service_port(run, f"{run.project.app}-canary"), 1
            )
            if self.kind is VIRTUAL_SERVICE:
                canary.pop("weight")  # one destination: Istio takes it whole
            rule = self.kind.header_rule(team_rule, header, canary)
            self._patch(run, [{"op": "add", "path": pointer, "value": rule}])
            if not self.header_rule_present(run):
                self._take_back_unnamed(run, pointer)
            run.progress.detail(
                "route", f"requests with {header.name}: {header.value} go to the canary ({HEADER_RULE})"
            )
        elif header is None and present:
            self._patch(run, [*self._still_there(1), {"op": "remove", "path": pointer}])
            run.progress.detail("route", f"removed {HEADER_RULE}: every request follows the weights")

    def header_rule_present(self, run: Run) -> bool:
        return self.kind.team_index(self._read(run)) == 1

    def _take_back_unnamed(self, run: Run, pointer: str) -> None:
        """The API server dropped the rule's name (a Gateway API CRD from before rule names
        prunes it): without it the rule cannot be told from the team's, so it goes again (the
        canary is then put back like after any failure)."""
        backends = f"{pointer}/{self.kind.backends_key}"
        written = self.kind.rules(self._read(run))[0].get(self.kind.backends_key)
        self._patch(
            run, [{"op": "test", "path": backends, "value": written}, {"op": "remove", "path": pointer}]
        )
        raise NeedsAttention(
            f"{self.kind.kind} {self.route}: the cluster's schema dropped the rule name {HEADER_RULE} "
            "(its Gateway API CRDs predate named rules), so the header rule cannot be told from the team's",
            "install the Gateway API standard CRDs of v1.4 or later, or remove strategy.header",
        )

    def _still_there(self, index: int) -> list[dict[str, Any]]:
        """A JSON patch test: rule 0 is still releasegate's own (one patch, nothing else moved)."""
        if index == 0:
            return []
        return [{"op": "test", "path": f"/spec/{self.kind.rules_key}/0/name", "value": HEADER_RULE}]

    def _patch(self, run: Run, patch: list[dict[str, Any]]) -> None:
        namespace = run.env.namespace
        run.ensure_lock()
        with translated_errors(f"cannot write {self.kind.kind} {self.route} in", namespace, NeedsAttention):
            run.clients.cluster.call(
                "PATCH",
                self.kind.path(namespace, self.route),
                body=patch,
                content_type=JSON_PATCH,
                retry=True,
            )

    def confirm(self, run: Run, seconds: float) -> None:
        if self.kind is not HTTP_ROUTE:
            return  # istiod reports no per-route status by default: nothing to wait for
        problem = acceptance.wait_until_accepted(
            lambda: self._read(run), seconds, lambda text: run.progress.detail("route", text)
        )
        if problem is not None:
            waited = f" within {seconds:g} s of the weight write" if seconds else ""
            raise NeedsAttention(
                f"HTTPRoute {self.route} is not served as written{waited}: {problem}",
                f"look at what its gateway reports (`kubectl describe httproute {self.route}`): the "
                "listener's allowedRoutes, a ReferenceGrant, a missing backend",
            )

    def weight(self, run: Run) -> int | None:
        rule = self.kind.first_rule(self._read(run)) or {}
        backends = rule.get(self.kind.backends_key) or []
        weights = {self.kind.service_of(b): int(b.get("weight", 0)) for b in backends if isinstance(b, dict)}
        app = run.project.app
        if set(weights) != {f"{app}-stable", f"{app}-canary"}:
            return None
        return weights[f"{app}-canary"]

    def _read(self, run: Run) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        namespace = run.env.namespace
        where = f"{self.kind.kind} {self.route} ({self.kind.api}) in {namespace}"
        with translated_errors(f"cannot read {self.kind.kind} {self.route} in", namespace, Refused):
            try:
                return dict(run.clients.cluster.get(self.kind.path(namespace, self.route)))
            except ApiException as exc:
                if exc.status != 404:
                    raise
                if not _is_status(exc.body):  # a bare 404 page: the API group itself is missing
                    raise Refused(
                        f"the cluster does not serve {self.kind.api}: {self.kind.kind} is not installed",
                        "install its CRDs (Gateway API, or Istio), or use traffic: replicas",
                    ) from exc
                raise Refused(
                    f"{where} does not exist: a canary needs the route it weighs",
                    "create it once (see the example in docs/strategies.md), then deploy again",
                ) from exc


class PodRatio:
    """traffic: replicas. Service ``<app>`` selects the stable Deployment's pods (its own
    selector) at weight 0, and every pod of the app otherwise."""

    def require_route(self, run: Run) -> None:
        return None

    def confirm(self, run: Run, seconds: float) -> None:
        return None  # the Service's selector and the pods are the traffic: nothing in between

    def route_header(self, run: Run, header: Header | None) -> None:
        return None  # no route: the configuration refuses a header with traffic: replicas

    def header_rule_present(self, run: Run) -> bool:
        return False

    def set_weight(self, run: Run, weight: int) -> None:
        app = run.project.app
        stable = _deployment(run, app)
        if stable is None:
            raise NeedsAttention(f"the stable Deployment {app} is missing", "deploy again")
        if weight == 0:
            _set_selector(run, dict(stable["spec"]["selector"]["matchLabels"]))
            return
        # The canary strategy has scaled the canary to its share, and its pods are Ready.
        _set_selector(run, {APP_NAME_LABEL: app})

    def weight(self, run: Run) -> int | None:
        app = run.project.app
        service = _read_service(run, app)
        stable, canary = _deployment(run, app), _deployment(run, f"{app}-canary")
        if service is None or stable is None:
            return None
        if canary is None or set(service["spec"].get("selector") or {}) != {APP_NAME_LABEL}:
            return 0
        pods_canary = int(canary["spec"].get("replicas", 0))
        pods_stable = int(stable["spec"].get("replicas", 0))
        return round(100 * pods_canary / max(pods_stable + pods_canary, 1))


def canary_pods(stable_replicas: int, weight: int) -> int:
    """The canary's pod count for a weight: ceil(replicas x w / 100), at least one (its
    share of the traffic, in every traffic mode: at 50 % it carries half the stable's load)."""
    return max(1, math.ceil(stable_replicas * weight / 100))


def for_settings(traffic: str, route: str, header: Header | None = None) -> Traffic:
    if traffic == "gateway":
        return RouteWeights(HTTP_ROUTE, route, header)
    if traffic == "istio":
        return RouteWeights(VIRTUAL_SERVICE, route, header)
    return PodRatio()


def _is_status(body: Any) -> bool:
    try:
        answer = json.loads(body or b"")
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("kind") == "Status"


def _read_service(run: Run, name: str) -> dict[str, Any] | None:
    path = f"{SERVICES.format(namespace=run.env.namespace)}/{name}"
    with translated_errors("cannot read the Services in", run.env.namespace, NeedsAttention):
        return run.clients.cluster.get_or_none(path)


def _service_port(run: Run, name: str) -> int:
    service = _read_service(run, name)
    ports = (service or {}).get("spec", {}).get("ports") or []
    if not ports:
        raise NeedsAttention(f"Service {name} is missing or has no port", "deploy again")
    return int(ports[0]["port"])


def _deployment(run: Run, name: str) -> dict[str, Any] | None:
    path = f"{DEPLOYMENTS.format(namespace=run.env.namespace)}/{name}"
    with translated_errors("cannot read the Deployments in", run.env.namespace, NeedsAttention):
        return run.clients.cluster.get_or_none(path)


def _set_selector(run: Run, selector: dict[str, str]) -> None:
    """Service ``<app>`` selects exactly ``selector`` (one merge patch; keys it drops are nulled)."""
    app, namespace = run.project.app, run.env.namespace
    service = _read_service(run, app)
    if service is None:
        raise NeedsAttention(f"Service {app} is missing", "deploy again")
    old = service["spec"].get("selector") or {}
    if old == selector:
        return
    run.ensure_lock()
    patch = {"spec": {"selector": {**{k: None for k in old if k not in selector}, **selector}}}
    with translated_errors("cannot change the Service selector in", namespace, NeedsAttention):
        run.clients.cluster.call(
            "PATCH", f"{SERVICES.format(namespace=namespace)}/{app}", body=patch, content_type=MERGE_PATCH,
            retry=True,
        )  # fmt: skip
