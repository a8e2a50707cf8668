"""Blue/green and canary on the real tier: the real endpoint controllers fill the EndpointSlices
the API server's proxy picks from, route weights are written to the real Gateway API and Istio
CRDs (their schemas and CEL rules), and `traffic: replicas` is real pods behind a real Service.
Mirrors tests/test_bluegreen.py and tests/test_canary.py."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

import pytest
import yaml

from tests.test_canary import TWO_STEPS, backend_weights, route
from tests.test_kube_emulator import wait_for
from tests.test_smoke import quick_checks

from .stack import RealStack

pytestmark = pytest.mark.real
APP = "model-api"
SLOT = "releasegate.dev/slot"


def strategy(real: RealStack, text: str) -> None:
    """``text`` as nonprod's strategy, with no drain time (scale_down_delay) unless it says one."""
    quick_checks(real)
    if "scale_down_delay" not in text and "type: rolling" not in text:
        text = text[:-1] + ", scale_down_delay: 0}"
    path = real.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + f"strategy: {text}\n")


def deploy(real: RealStack, tag: str, *args: str) -> Any:
    real.publish(tag)
    return real.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag, *args)


def service(real: RealStack, name: str = APP) -> dict[str, Any]:
    found = real.plane.get(f"/api/v1/namespaces/{real.namespaces['nonprod']}/services/{name}")
    assert found is not None, f"no Service {name}"
    return found


def endpoint_ips(real: RealStack, name: str = APP) -> set[str]:
    """The Ready addresses the endpoint-slice controller lists for Service ``name``."""
    slices = real.plane.get(
        f"/apis/discovery.k8s.io/v1/namespaces/{real.namespaces['nonprod']}/endpointslices"
        f"?labelSelector=kubernetes.io/service-name={name}"
    )
    return {
        address
        for piece in slices["items"]
        for endpoint in piece.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint["addresses"]
    }


def pod_ips(real: RealStack, **labels: str) -> set[str]:
    return {
        p["status"]["podIP"]
        for p in real.pods("nonprod")
        if all(p["metadata"]["labels"].get(k) == v for k, v in labels.items()) and p["status"].get("podIP")
    }


def test_bluegreen_switches_users_to_the_new_slot_and_back_on_failure(real: RealStack) -> None:
    strategy(real, "{type: bluegreen}")
    first = deploy(real, "v1.0.0")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["slot"] == "blue"
    second = deploy(real, "v1.1.0")
    assert second.exit_code == 0, second.stderr
    assert service(real)["spec"]["selector"][SLOT] == "green"
    assert service(real, f"{APP}-preview")["spec"]["selector"][SLOT] == "blue"  # the slot left
    # Where users arrive: the real endpoint controllers list only green's pods behind <app>.
    assert endpoint_ips(real) == pod_ips(real, **{SLOT: "green"}) != set()
    proxied = {c.pod.rsplit("-", 2)[0] for c in real.network.apps.calls}
    assert f"{APP}-green" in proxied, proxied
    # A release that never becomes Ready in the idle slot: traffic never moves.
    real.behave(real.publish("v1.2.0"), "never_ready")
    third = real.releasegate("deploy", "--env", "nonprod", "--tag", "v1.2.0", "--timeout", "20")
    assert third.exit_code == 4, third.stderr
    assert service(real)["spec"]["selector"][SLOT] == "green"
    assert endpoint_ips(real) == pod_ips(real, **{SLOT: "green"})
    # Rollback is a switch to the kept slot.
    back = real.releasegate("rollback", "--env", "nonprod")
    assert back.exit_code == 0, back.stderr
    assert service(real)["spec"]["selector"][SLOT] == "blue"


def real_route(real: RealStack, traffic: str, team_rule: dict[str, Any] | None = None) -> dict[str, Any]:
    document = route(traffic)
    if team_rule is not None:
        document["spec"]["rules" if traffic == "gateway" else "http"] = [team_rule]
    document["metadata"]["namespace"] = real.namespaces["nonprod"]
    real.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(document))
    return document


def read_route(real: RealStack, traffic: str) -> dict[str, Any]:
    kind = (
        "httproute.gateway.networking.k8s.io"
        if traffic == "gateway"
        else "virtualservice.networking.istio.io"
    )
    found = real.plane.kubectl("get", kind, APP, "-n", real.namespaces["nonprod"], "-o", "json")
    loaded: dict[str, Any] = json.loads(found)
    return loaded


@pytest.mark.parametrize("traffic", ["gateway", "istio"])
def test_canary_weights_are_written_to_the_real_route_kinds_and_promoted(
    real: RealStack, traffic: str
) -> None:
    strategy(real, f"{{type: canary, traffic: {traffic}, route: model-api, steps: {TWO_STEPS}}}")
    real_route(real, traffic)
    assert deploy(real, "v1.0.0").exit_code == 0  # no stable release yet: straight to stable
    run = deploy(real, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert "50 %" in run.stderr or "50%" in run.stderr, run.stderr
    written = read_route(real, traffic)
    assert backend_weights(written) == {f"{APP}-stable": 100, f"{APP}-canary": 0}
    assert written["metadata"]["generation"] >= 4  # the route was rewritten at each step
    assert real.deployment("nonprod", f"{APP}-canary") is None
    stable = real.deployment("nonprod")
    assert stable is not None and stable["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.1.0"


def test_canary_by_replicas_puts_real_pods_of_both_tracks_behind_the_service(real: RealStack) -> None:
    strategy(real, "{type: canary, traffic: replicas, steps: [{weight: 50, pause: approval}]}")
    assert deploy(real, "v1.0.0").exit_code == 0
    paused = deploy(real, "v1.1.0")
    assert paused.exit_code == 0 and json.loads(paused.stdout)["outcome"] == "paused", paused.stderr
    behind = endpoint_ips(real)
    canary, stable = (
        pod_ips(real, **{"releasegate.dev/track": "canary"}),
        pod_ips(real, **{"releasegate.dev/track": "stable"}),
    )
    assert canary and stable and behind == canary | stable, (behind, canary, stable)
    aborted = real.releasegate("abort", "--env", "nonprod")
    assert aborted.exit_code == 4, aborted.stderr
    assert endpoint_ips(real) == pod_ips(real, **{"releasegate.dev/track": "stable"}) != set()


def test_a_rolling_environment_moves_to_bluegreen_and_retires_its_objects(real: RealStack) -> None:
    quick_checks(real)
    assert deploy(real, "v1.0.0").exit_code == 0  # rolling
    strategy(real, "{type: bluegreen}")
    moved = deploy(real, "v1.1.0")
    assert moved.exit_code == 0, moved.stderr
    assert service(real)["spec"]["selector"][SLOT] == "blue"
    assert endpoint_ips(real) == pod_ips(real, **{SLOT: "blue"}) != set()
    namespace = real.namespaces["nonprod"]
    assert real.deployment("nonprod") is None  # the plain Deployment, its HPA and PDB are gone
    assert (
        real.plane.get(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{APP}") is None
    )
    assert real.plane.get(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{APP}") is None


def test_a_canary_paused_for_approval_is_promoted(real: RealStack) -> None:
    steps = "[{weight: 20, pause: approval}, {weight: 60, pause: 1}]"
    strategy(real, f"{{type: canary, traffic: gateway, route: model-api, steps: {steps}}}")
    real_route(real, "gateway")
    assert deploy(real, "v1.0.0").exit_code == 0
    paused = deploy(real, "v1.1.0")
    assert paused.exit_code == 0 and json.loads(paused.stdout)["outcome"] == "paused", paused.stderr
    assert backend_weights(read_route(real, "gateway")) == {f"{APP}-stable": 80, f"{APP}-canary": 20}
    promoted = real.releasegate("--json", "promote", "--env", "nonprod")
    assert promoted.exit_code == 0, promoted.stderr
    assert json.loads(promoted.stdout)["outcome"] == "promoted", promoted.stdout
    assert backend_weights(read_route(real, "gateway")) == {f"{APP}-stable": 100, f"{APP}-canary": 0}
    assert real.deployment("nonprod", f"{APP}-canary") is None
    stable = real.deployment("nonprod")
    assert stable is not None and stable["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.1.0"


def test_leaving_bluegreen_for_rolling_retires_the_slots_once_app_selects_the_new_pods(
    real: RealStack,
) -> None:
    strategy(real, "{type: bluegreen}")
    assert deploy(real, "v1.0.0").exit_code == 0
    assert deploy(real, "v1.1.0").exit_code == 0  # green live
    path = real.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(
        re.sub(r"(?m)^strategy: .*\n", "strategy: {type: rolling, scale_down_delay: 3}\n", path.read_text())
    )
    run = deploy(real, "v1.2.0")
    assert run.exit_code == 0, run.stderr
    assert SLOT not in service(real)["spec"]["selector"]
    # The slots leave scale_down_delay after <app> left them (an ALB in IP mode still sends to the
    # old targets for seconds): read from the real API server's audit log.
    namespace = real.namespaces["nonprod"]
    done = [
        e
        for e in real.plane.deployer_requests()
        if (e.get("objectRef") or {}).get("namespace") == namespace and e.get("stage") == "ResponseComplete"
    ]

    def times(verb: str, resource: str, name: str) -> list[datetime]:
        return [
            datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00"))
            for e in done
            if e["verb"] == verb
            and e["objectRef"].get("resource") == resource
            and e["objectRef"].get("name") == name
        ]

    deleted = min(times("delete", "deployments", f"{APP}-blue"))
    moved = max(t for t in times("patch", "services", APP) if t < deleted)  # the move off the slots
    assert (deleted - moved).total_seconds() >= 3, (moved, deleted)
    plain = real.deployment("nonprod")
    assert plain is not None and plain["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.2.0"
    assert endpoint_ips(real) == pod_ips(real, **{"app.kubernetes.io/version": "v1.2.0"}) != set()
    for slot in ("blue", "green"):
        assert real.deployment("nonprod", f"{APP}-{slot}") is None
    namespace = real.namespaces["nonprod"]
    assert real.plane.get(f"/api/v1/namespaces/{namespace}/services/{APP}-preview") is None
    assert "left blue/green: deleted" in run.stderr


def test_a_route_the_gateway_does_not_accept_is_refused_and_an_accepted_one_confirmed(
    real: RealStack,
) -> None:
    """The gateway stand-in writes its report through the real /status subresource, and the
    real API server moves the route's generation at each weight write."""
    strategy(real, f"{{type: canary, traffic: gateway, route: model-api, steps: {TWO_STEPS}}}")
    real_route(real, "gateway")
    assert deploy(real, "v1.0.0").exit_code == 0
    assert real.gateway is not None
    real.gateway.behaviour = "not_allowed"
    refused = real.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.0.0")
    assert refused.exit_code == 3, refused.stderr
    assert "is not accepted by its gateway" in refused.stderr and "NotAllowedByListeners" in refused.stderr
    real.gateway.behaviour = "accepted"
    run = deploy(real, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    written = read_route(real, "gateway")
    conditions = {c["type"]: c for p in written["status"]["parents"] for c in p["conditions"]}
    assert {c["status"] for c in conditions.values()} == {"True"}
    assert conditions["Accepted"]["observedGeneration"] == written["metadata"]["generation"]


def test_a_canary_is_sized_from_the_stable_count_and_the_real_autoscaler_held(real: RealStack) -> None:
    """The real podautoscaler controller (no metrics here: it only keeps the count within its
    bounds) keeps the stable at the held minimum; the canary is sized ceil(S x w / 100)."""
    steps = "[{weight: 50, pause: approval}, {weight: 100, pause: 1}]"
    strategy(real, f"{{type: canary, traffic: gateway, route: model-api, steps: {steps}}}")
    real_route(real, "gateway")
    assert deploy(real, "v1.0.0").exit_code == 0
    namespace = real.namespaces["nonprod"]
    real.plane.kubectl("scale", "deployment", APP, "-n", namespace, "--replicas=3")  # the load's count
    paused = deploy(real, "v1.1.0")
    assert paused.exit_code == 0, paused.stderr
    canary = real.deployment("nonprod", f"{APP}-canary")
    assert canary is not None and canary["spec"]["replicas"] == 2  # ceil(3 x 50 / 100)
    hpa = real.plane.get(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{APP}")
    assert hpa["spec"]["minReplicas"] == 3
    assert hpa["metadata"]["annotations"]["releasegate.dev/held-min-replicas"] == "2"
    aborted = real.releasegate("abort", "--env", "nonprod")
    assert aborted.exit_code == 4, aborted.stderr
    hpa = real.plane.get(f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{APP}")
    assert hpa["spec"]["minReplicas"] == 2
    assert "releasegate.dev/held-min-replicas" not in (hpa["metadata"].get("annotations") or {})
    stable = real.deployment("nonprod")
    assert stable is not None and stable["spec"]["replicas"] == 3


def test_a_bluegreen_switch_goes_to_a_slot_sized_like_the_live_one(real: RealStack) -> None:
    """The live slot serves with 3 pods (its autoscaler's count under load); the idle slot is
    created at 2: before the switch it is scaled to 3 and the real endpoint controller lists
    all 3 behind <app>."""
    strategy(real, "{type: bluegreen}")
    assert deploy(real, "v1.0.0").exit_code == 0
    real.plane.kubectl("scale", "deployment", f"{APP}-blue", "-n", real.namespaces["nonprod"], "--replicas=3")
    run = deploy(real, "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert "size" in [s["name"] for s in json.loads(run.stdout)["stages"]]
    green = real.deployment("nonprod", f"{APP}-green")
    assert green is not None and green["spec"]["replicas"] == 3
    assert len(endpoint_ips(real)) == 3 and endpoint_ips(real) == pod_ips(real, **{SLOT: "green"})


def test_a_release_whose_answers_differ_is_blocked_through_the_real_service_proxy(real: RealStack) -> None:
    from tests.test_compare import COMPARE

    strategy(real, "{type: bluegreen}")
    path = real.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + COMPARE)
    assert deploy(real, "v1.0.0").exit_code == 0
    real.network.apps.behaviours["v1.1.0"] = "nudged"  # within the tolerance
    agreed = deploy(real, "v1.1.0")
    assert agreed.exit_code == 0, agreed.stderr
    found = json.loads(agreed.stdout)["compare"]
    assert found["agreed"] == found["requests"] == 10 and found["p95_ms"]["serving"] > 0
    assert service(real)["spec"]["selector"][SLOT] == "green"
    real.network.apps.behaviours["v1.2.0"] = "drifted"
    blocked = deploy(real, "v1.2.0")
    assert blocked.exit_code == 4, blocked.stderr
    assert "comparison with model-api failed: agreement 0.00" in blocked.last_line
    assert service(real)["spec"]["selector"][SLOT] == "green"  # traffic never moved


def test_a_comparison_the_real_api_server_answered_itself_compared_nothing(real: RealStack) -> None:
    """The real API server's own 503s (pods it cannot reach; a Service with no Ready endpoint)
    are the same text for every request: they must never count as answers that agree."""
    from tests.test_compare import COMPARE, without_smoke_checks

    strategy(real, "{type: bluegreen, pause_before_switch: true}")
    path = real.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + COMPARE)
    without_smoke_checks(real)
    assert deploy(real, "v1.0.0").exit_code == 0
    assert real.releasegate("promote", "--env", "nonprod").exit_code == 0
    real.network.apps.unreachable = True  # the API server's dials to the pods time out
    blocked = deploy(real, "v1.1.0")
    assert blocked.exit_code == 4, blocked.stderr
    assert "nothing was compared: the API server cannot reach the pods behind" in blocked.last_line
    first = json.loads(blocked.stdout)["compare"]["disagreements"][0]
    assert first["serving"]["api_server"].startswith("error trying to reach service"), first
    assert service(real)["spec"]["selector"][SLOT] == "blue"  # traffic never moved
    real.network.apps.unreachable = False
    paused = deploy(real, "v1.2.0")
    assert json.loads(paused.stdout)["outcome"] == "paused", paused.stderr
    namespace = real.namespaces["nonprod"]
    for slot in ("blue", "green"):  # no Ready endpoint behind either Service
        real.plane.kubectl("scale", "deployment", f"{APP}-{slot}", "--replicas=0", "-n", namespace)

    def no_endpoints() -> bool:  # the proxy reads Endpoints; the slices follow the same pods
        legacy = [
            real.plane.get(f"/api/v1/namespaces/{namespace}/endpoints/{n}") for n in (APP, f"{APP}-preview")
        ]
        return not any((e or {}).get("subsets") for e in legacy) and not endpoint_ips(real)

    wait_for(no_endpoints, seconds=60)
    compared = real.releasegate("--json", "compare", "--env", "nonprod")
    assert compared.exit_code == 4, compared.stderr
    assert 'no endpoints available for service \\"model-api\\"' in compared.stdout, compared.stdout
    assert "nothing was compared: the API server answered for model-api" in compared.last_line


def test_the_header_rule_is_admitted_by_the_real_httproute_crd_and_removed(real: RealStack) -> None:
    from tests.test_traffic import HEADER, team_rule_with_extras, without_backends

    steps = "[{weight: 10, pause: approval}]"
    strategy(real, f"{{type: canary, traffic: gateway, route: model-api, steps: {steps}, header: {HEADER}}}")
    real_route(real, "gateway", team_rule_with_extras("gateway"))  # a URLRewrite and timeouts
    assert deploy(real, "v1.0.0").exit_code == 0
    before = without_backends(read_route(real, "gateway"), "gateway")
    paused = deploy(real, "v1.1.0")
    assert json.loads(paused.stdout)["outcome"] == "paused", paused.stderr
    header_rule, team_rule = read_route(real, "gateway")["spec"]["rules"]
    assert header_rule["name"] == "releasegate-canary-header"
    assert header_rule["filters"] == team_rule["filters"] and header_rule["timeouts"] == team_rule["timeouts"]
    assert header_rule["filters"][0]["urlRewrite"]["path"]["replacePrefixMatch"] == "/"
    assert header_rule["matches"][0]["headers"] == [{"type": "Exact", "name": "x-canary", "value": "always"}]
    assert header_rule["matches"][0]["path"] == team_rule["matches"][0]["path"]
    assert [b["name"] for b in header_rule["backendRefs"]] == [f"{APP}-canary"]
    assert {b["name"]: b["weight"] for b in team_rule["backendRefs"]} == {
        f"{APP}-stable": 90,
        f"{APP}-canary": 10,
    }
    promoted = real.releasegate("promote", "--env", "nonprod")
    assert promoted.exit_code == 0, promoted.stderr
    assert without_backends(read_route(real, "gateway"), "gateway") == before
