"""Header routing to the canary (``strategy.header``) through the real CLI: releasegate's rule
``releasegate-canary-header`` stands before the team's first rule for the canary's life, sends
requests with the header to the canary (the team's matches, each also requiring the header),
and is removed on promotion, on abort and on `recover` after a killed run; nothing else in the
route changes, and the weights go to the team's rule."""

from __future__ import annotations

import copy
import json
import signal
from typing import Any

import pytest

from tests.emulators.stack import Stack
from tests.test_canary import APP, MID_PAUSE, NS, canary, deploy, route
from tests.test_faults import interrupted_deploy

ROUTE_KINDS = {"gateway": ("HTTPRoute", "rules", "backendRefs"), "istio": ("VirtualService", "http", "route")}
HEADER = "{name: x-canary, value: always}"


def with_header(stack: Stack, traffic: str, steps: str) -> None:
    canary(stack, traffic, steps)
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text()
    path.write_text(text.replace("scale_down_delay: 0}", f"scale_down_delay: 0, header: {HEADER}}}"))
    assert f"header: {HEADER}" in path.read_text()


def stored_route(stack: Stack, traffic: str) -> dict[str, Any]:
    found = stack.kube.get(ROUTE_KINDS[traffic][0], NS, APP)
    assert found is not None
    return found


def rules(stack: Stack, traffic: str) -> list[dict[str, Any]]:
    return list(stored_route(stack, traffic)["spec"][ROUTE_KINDS[traffic][1]])


def without_backends(route_obj: dict[str, Any], traffic: str) -> dict[str, Any]:
    """The route's spec with the team rule's backends left out: what releasegate must not touch."""
    _, rules_key, backends_key = ROUTE_KINDS[traffic]
    spec = copy.deepcopy(route_obj["spec"])
    for rule in spec[rules_key]:
        rule.pop(backends_key, None)
    return spec


def header_rule_expected(traffic: str, team_rule: dict[str, Any]) -> dict[str, Any]:
    if traffic == "gateway":
        return {
            "name": "releasegate-canary-header",
            "matches": [{**m, "headers": [{"type": "Exact", "name": "x-canary", "value": "always"}]}
                        for m in team_rule["matches"]],
            "backendRefs": [{"group": "", "kind": "Service", "name": f"{APP}-canary", "port": 80,
                             "weight": 1}],
        }  # fmt: skip
    return {
        "name": "releasegate-canary-header",
        "match": [{**m, "headers": {"x-canary": {"exact": "always"}}} for m in team_rule["match"]],
        "route": [{"destination": {"host": f"{APP}-canary", "port": {"number": 80}}}],
    }


@pytest.mark.e2e
@pytest.mark.parametrize("traffic", ["gateway", "istio"])
def test_the_header_rule_stands_before_the_teams_rule_while_the_canary_runs(
    stack: Stack, traffic: str
) -> None:
    with_header(stack, traffic, "[{weight: 10, pause: approval}]")
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    assert len(rules(stack, traffic)) == 1  # straight to stable: no canary, no header rule
    before = without_backends(stored_route(stack, traffic), traffic)
    paused = deploy(stack, "v1.1.0")
    assert json.loads(paused.stdout)["outcome"] == "paused", paused.stderr
    header_rule, team_rule = rules(stack, traffic)
    assert header_rule == header_rule_expected(traffic, team_rule)
    status = stack.releasegate("status", "--env", "nonprod").stdout
    assert "header routing: x-canary: always → canary; releasegate-canary-header in place" in status
    weights = {
        b.get("name") or b["destination"]["host"]: b["weight"] for b in team_rule[ROUTE_KINDS[traffic][2]]
    }
    assert weights == {f"{APP}-stable": 90, f"{APP}-canary": 10}  # the weights went to the team's rule
    promoted = stack.releasegate("promote", "--env", "nonprod")
    assert promoted.exit_code == 0, promoted.stderr
    assert "removed releasegate-canary-header" in promoted.stderr
    assert without_backends(stored_route(stack, traffic), traffic) == before  # nothing else changed


def stable_with_header(stack: Stack, steps: str) -> dict[str, Any]:
    """A gateway canary with the header, v1.0.0 straight to stable; the route's spec then."""
    with_header(stack, "gateway", steps)
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    return without_backends(stored_route(stack, "gateway"), "gateway")


@pytest.mark.e2e
def test_the_header_rule_is_removed_on_abort(stack: Stack) -> None:
    before = stable_with_header(stack, "[{weight: 10, pause: approval}]")
    assert deploy(stack, "v1.1.0").exit_code == 0
    assert rules(stack, "gateway")[0]["name"] == "releasegate-canary-header"
    aborted = stack.releasegate("abort", "--env", "nonprod")
    assert aborted.exit_code == 4, aborted.stderr
    assert without_backends(stored_route(stack, "gateway"), "gateway") == before


@pytest.mark.e2e
def test_the_header_rule_is_removed_by_recover_after_a_killed_run(stack: Stack) -> None:
    before = stable_with_header(stack, "[{weight: 50, pause: 60}]")
    stack.publish("v1.1.0")
    same_run = {"GITHUB_RUN_ID": "4343", "GITHUB_RUN_ATTEMPT": "1"}
    killed = interrupted_deploy(stack, "v1.1.0", lambda line: MID_PAUSE in line, signal.SIGKILL, **same_run)
    assert killed.exit_code == -signal.SIGKILL
    assert rules(stack, "gateway")[0]["name"] == "releasegate-canary-header"  # left behind by the kill
    recovered = stack.releasegate("recover", "--env", "nonprod", **same_run)
    assert recovered.exit_code == 0, recovered.stderr
    assert without_backends(stored_route(stack, "gateway"), "gateway") == before


@pytest.mark.e2e
def test_the_header_rule_copies_each_team_match(stack: Stack) -> None:
    """A path match of the team's outranks a bare header match in Gateway API's precedence: the
    header rule repeats each of the team's matches with the header added."""
    with_header(stack, "gateway", "[{weight: 10, pause: approval}]")
    team = route("gateway")
    team["spec"]["rules"][0]["matches"] = [
        {"path": {"type": "PathPrefix", "value": "/predict"}},
        {"path": {"type": "Exact", "value": "/health/ready"}, "method": "GET"},
    ]
    stack.kube.put(team)
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    assert deploy(stack, "v1.1.0").exit_code == 0
    header_rule = rules(stack, "gateway")[0]
    assert [m["path"]["value"] for m in header_rule["matches"]] == ["/predict", "/health/ready"]
    assert header_rule["matches"][1]["method"] == "GET"
    assert all(
        m["headers"] == [{"type": "Exact", "name": "x-canary", "value": "always"}]
        for m in header_rule["matches"]
    )


def test_a_header_with_traffic_replicas_is_exit_2(stack: Stack) -> None:
    with_header(stack, "replicas", "[{weight: 10, pause: 1}]")
    run = stack.releasegate("check", "--env", "nonprod", "--tag", "v1.0.0")
    assert run.exit_code == 2 and "strategy.header needs a route to carry it" in run.last_line, run.stderr


@pytest.mark.e2e
def test_a_crd_that_drops_rule_names_gets_no_header_rule_and_the_canary_is_put_back(stack: Stack) -> None:
    before = stable_with_header(stack, "[{weight: 10, pause: approval}]")
    stack.kube.route_rule_names = False  # Gateway API CRDs from before named rules
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "dropped the rule name releasegate-canary-header" in run.last_line
    assert without_backends(stored_route(stack, "gateway"), "gateway") == before  # taken back out
    assert stack.kube.get("Deployment", NS, f"{APP}-canary") is None


def team_rule_with_extras(traffic: str) -> dict[str, Any]:
    """A team rule that rewrites, times out, retries and sets headers: all of it must reach the
    canary's header traffic too (argo-rollouts#3088: the header route lost the rewrite: 404)."""
    if traffic == "gateway":
        return {
            "matches": [{"path": {"type": "PathPrefix", "value": "/model-api"}}],
            "filters": [{"type": "URLRewrite",
                         "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}],
            "timeouts": {"request": "10s", "backendRequest": "8s"},
            "backendRefs": [{"name": APP, "port": 80}],
        }  # fmt: skip
    return {
        "match": [{"uri": {"prefix": "/model-api"}}],
        "rewrite": {"uri": "/"},
        "timeout": "10s",
        "retries": {"attempts": 3, "perTryTimeout": "2s"},
        "headers": {"request": {"set": {"x-served-by": "mesh"}}},
        "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}]},
        "route": [{"destination": {"host": APP}}],
    }


@pytest.mark.e2e
@pytest.mark.parametrize("traffic", ["gateway", "istio"])
def test_the_header_rule_is_the_teams_rule_in_every_respect_but_its_backends(
    stack: Stack, traffic: str
) -> None:
    with_header(stack, traffic, "[{weight: 10, pause: approval}]")
    team = route(traffic)
    _, rules_key, backends_key = ROUTE_KINDS[traffic]
    team["spec"][rules_key] = [team_rule_with_extras(traffic)]
    stack.kube.put(team)
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    paused = deploy(stack, "v1.1.0")
    assert json.loads(paused.stdout)["outcome"] == "paused", paused.stderr
    header_rule, team_rule = rules(stack, traffic)
    matches_key = "matches" if traffic == "gateway" else "match"
    expected = {k: v for k, v in team_rule.items() if k not in (backends_key, matches_key)}
    got = {k: v for k, v in header_rule.items() if k not in (backends_key, matches_key, "name")}
    assert got == expected and len(expected) >= 2, (got, expected)  # filters/timeouts; rewrite/timeout/…


def crowded(traffic: str, how: str) -> dict[str, Any]:
    """A route that cannot take releasegate's header rule."""
    team = route(traffic)
    if how == "16 rules":
        rule = team["spec"]["rules"][0]
        team["spec"]["rules"] = [rule] + [
            {
                "matches": [{"path": {"type": "PathPrefix", "value": f"/r{n}"}}],
                "backendRefs": [{"name": APP, "port": 80}],
            }
            for n in range(15)
        ]
    elif how == "128 matches":
        many = [{"path": {"type": "PathPrefix", "value": f"/m{n}"}} for n in range(64)]
        team["spec"]["rules"] = [
            {"matches": many, "backendRefs": [{"name": APP, "port": 80}]},
            {"matches": many[:40], "backendRefs": [{"name": APP, "port": 80}]},
        ]  # 104 now; the header rule would add 64 more
    elif traffic == "gateway":  # the team's rule already tests the header (by another case)
        team["spec"]["rules"][0]["matches"][0]["headers"] = [
            {"type": "Exact", "name": "X-Canary", "value": "no"}
        ]
    else:
        team["spec"]["http"][0]["match"][0]["headers"] = {"x-canary": {"exact": "no"}}
    return team


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("traffic", "how", "named"),
    [
        ("gateway", "16 rules", "it has 16 rules, the most an HTTPRoute may have"),
        ("gateway", "128 matches", "168 matches in all, more than the 128 an HTTPRoute may have"),
        ("gateway", "same header", "its first rule already matches on header X-Canary"),
        ("istio", "same header", "its first rule already matches on header x-canary"),
    ],
)
def test_a_route_without_room_for_the_header_rule_is_refused_before_any_change(
    stack: Stack, traffic: str, how: str, named: str
) -> None:
    with_header(stack, traffic, "[{weight: 10, pause: approval}]")
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    stack.kube.put(crowded(traffic, how))
    before = stored_route(stack, traffic)
    run = deploy(stack, "v1.1.0")
    assert run.exit_code == 3, run.stderr
    assert named in run.last_line and "releasegate-canary-header" in run.last_line, run.last_line
    assert stack.kube.get("Deployment", NS, f"{APP}-canary") is None  # nothing changed
    assert stored_route(stack, traffic)["spec"] == before["spec"]
