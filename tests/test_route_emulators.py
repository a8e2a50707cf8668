"""The route kinds and the Prometheus API of the emulators behave as the real ones are
documented to: a CRD's pruning and validation, istiod's weight rule, JSON patch semantics, a
missing API group's bare 404, Prometheus's answers, and AMP's SigV4 check."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.emulators.kube import KubeEmulator
from tests.emulators.prometheus import PrometheusEmulator
from tests.test_canary import route

NS = "model-api-nonprod"
ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/model-api-nonprod/httproutes"
SERVICES_V = "/apis/networking.istio.io/v1/namespaces/model-api-nonprod/virtualservices"
KEYS = {
    "aws_access_key_id": "AKIDEXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}


def call(
    kube: KubeEmulator, method: str, path: str, body: Any = None, content_type: str = ""
) -> requests.Response:
    headers = {"Authorization": f"Bearer {kube.token}"}
    if content_type:
        headers["Content-Type"] = content_type
    return requests.request(method, kube.url + path, json=body, headers=headers, timeout=10)


def test_an_http_route_is_pruned_defaulted_and_validated_like_the_crd(kube: KubeEmulator) -> None:
    created = call(kube, "POST", ROUTES, route("gateway"))
    assert created.status_code == 201, created.text
    backend = created.json()["spec"]["rules"][0]["backendRefs"][0]
    assert backend == {"name": "model-api", "port": 80, "group": "", "kind": "Service", "weight": 1}
    typo = [{"op": "replace", "path": "/spec/rules/0/backendRefs",
             "value": [{"name": "model-api-stable", "port": 80, "wieght": 90}]}]  # fmt: skip
    pruned = call(kube, "PATCH", f"{ROUTES}/model-api", typo, "application/json-patch+json")
    assert pruned.json()["spec"]["rules"][0]["backendRefs"][0]["weight"] == 1  # the typo is dropped
    for bad, words in (
        ({"name": "model-api-stable", "port": 80, "weight": 1_000_001}, "less than or equal to 1000000"),
        ({"name": "model-api-stable", "port": 80, "weight": -1}, "greater than or equal to 0"),
        ({"name": "model-api-stable", "weight": 10}, "Must have port for Service reference"),
        ({"port": 80, "weight": 10}, "name: Required value"),
    ):
        patch = [{"op": "replace", "path": "/spec/rules/0/backendRefs", "value": [bad]}]
        refused = call(kube, "PATCH", f"{ROUTES}/model-api", patch, "application/json-patch+json")
        assert refused.status_code == 422 and words in refused.json()["message"], refused.text


def test_a_virtual_service_with_weights_not_adding_up_to_100_is_denied(kube: KubeEmulator) -> None:
    assert call(kube, "POST", SERVICES_V, route("istio")).status_code == 201
    destinations = [{"destination": {"host": "model-api-stable"}, "weight": 90},
                    {"destination": {"host": "model-api-canary"}, "weight": 20}]  # fmt: skip
    patch = [{"op": "replace", "path": "/spec/http/0/route", "value": destinations}]
    denied = call(kube, "PATCH", f"{SERVICES_V}/model-api", patch, "application/json-patch+json")
    assert denied.status_code == 400
    assert 'admission webhook "validation.istio.io" denied' in denied.json()["message"]
    assert "total destination weight 110 != 100" in denied.json()["message"]
    destinations[1]["weight"] = 10
    allowed = call(kube, "PATCH", f"{SERVICES_V}/model-api", patch, "application/json-patch+json")
    assert allowed.status_code == 200 and allowed.json()["spec"]["http"][0]["route"] == destinations
    assert allowed.json()["spec"]["hosts"] == ["model-api.example.com"]  # the rest untouched


def test_a_json_patch_that_does_not_apply_changes_nothing(kube: KubeEmulator) -> None:
    kube.gateway.behaviour = "silent"  # no controller writing status meanwhile
    assert call(kube, "POST", ROUTES, route("gateway")).status_code == 201
    before = kube.get("HTTPRoute", NS, "model-api")
    patch = [{"op": "replace", "path": "/spec/rules/0/backendRefs", "value": []},
             {"op": "replace", "path": "/spec/rules/3/backendRefs", "value": []}]  # fmt: skip
    refused = call(kube, "PATCH", f"{ROUTES}/model-api", patch, "application/json-patch+json")
    assert refused.status_code == 422
    assert kube.get("HTTPRoute", NS, "model-api") == before
    failed_test = [{"op": "test", "path": "/metadata/name", "value": "other"}]
    assert (
        call(kube, "PATCH", f"{ROUTES}/model-api", failed_test, "application/json-patch+json").status_code
        == 422
    )


def test_a_kind_whose_crd_is_not_installed_gets_a_bare_404(kube: KubeEmulator) -> None:
    kube.uninstalled.add("HTTPRoute")
    missing = call(kube, "GET", f"{ROUTES}/model-api")
    assert missing.status_code == 404 and missing.text == "404 page not found\n"
    no_route = call(kube, "GET", f"{SERVICES_V}/model-api")
    assert no_route.status_code == 404 and no_route.json()["kind"] == "Status"


@pytest.fixture
def prometheus() -> Iterator[PrometheusEmulator]:
    server = PrometheusEmulator()
    server.start()
    yield server
    server.stop()


def test_prometheus_answers_per_track_and_says_no_data_with_an_empty_vector(
    prometheus: PrometheusEmulator,
) -> None:
    prometheus.answers.update(canary=0.02, stable="error")
    canary = requests.get(f"{prometheus.url}/api/v1/query", params={"query": 'x{track="canary"}'}, timeout=5)
    assert canary.json()["data"]["result"][0]["value"][1] == "0.02"
    posted = requests.post(f"{prometheus.url}/api/v1/query", data={"query": 'x{track="other"}'}, timeout=5)
    assert posted.json() == {"status": "success", "data": {"resultType": "vector", "result": []}}
    error = requests.get(f"{prometheus.url}/api/v1/query", params={"query": 'x{track="stable"}'}, timeout=5)
    assert error.status_code == 400 and error.json()["errorType"] == "bad_data"
    prometheus.answers["canary"] = (float("inf"), float("-inf"), float("nan"))
    special = requests.get(f"{prometheus.url}/api/v1/query", params={"query": 'x{track="canary"}'}, timeout=5)
    # as Prometheus' JSON encoder writes them (jsonutil.MarshalFloat): strings, never JSON numbers
    assert '"+Inf"' in special.text and '"-Inf"' in special.text and '"NaN"' in special.text


def signed(url: str, body: bytes, secret: str, region: str = "eu-west-1") -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    SigV4Auth(Credentials(KEYS["aws_access_key_id"], secret), "aps", region).add_auth(request)
    return dict(request.headers.items())


def test_amp_refuses_unsigned_and_wrongly_signed_queries(prometheus: PrometheusEmulator) -> None:
    prometheus.sigv4 = KEYS
    prometheus.answers["canary"] = 0
    url = f"{prometheus.url}/workspaces/ws-1/api/v1/query"
    body = b"query=x%7Btrack%3D%22canary%22%7D"
    unsigned = requests.post(url, data=body, timeout=5)
    assert unsigned.status_code == 403
    wrong = requests.post(url, data=body, headers=signed(url, body, "not-the-secret"), timeout=5)
    assert wrong.status_code == 403 and "signature" in wrong.json()["message"]
    elsewhere = signed(url, body, KEYS["aws_secret_access_key"], "us-east-1")
    other_region = requests.post(url, data=body, headers=elsewhere, timeout=5)
    assert other_region.status_code == 403
    good = requests.post(url, data=body, headers=signed(url, body, KEYS["aws_secret_access_key"]), timeout=5)
    assert good.status_code == 200, good.text
    assert good.json()["data"]["result"][0]["value"][1] == "0"
    assert datetime.date.today().strftime("%Y%m%d") in signed(url, body, "s")["X-Amz-Date"]


def wait_for_status(kube: KubeEmulator, wanted: dict[str, str]) -> dict[str, Any]:
    """The route's conditions once its gateway reports ``wanted`` (type -> status)."""
    for _ in range(100):
        found = kube.get("HTTPRoute", NS, "model-api") or {}
        parents = (found.get("status") or {}).get("parents") or []
        conditions = {c["type"]: c for p in parents for c in p["conditions"]}
        if {kind: c["status"] for kind, c in conditions.items()} == wanted:
            return conditions
        time.sleep(0.02)
    raise AssertionError(f"the gateway never reported {wanted}: {found.get('status')}")


def test_the_gateway_reports_on_each_route_per_parent_at_its_generation(kube: KubeEmulator) -> None:
    """As an implementation's reconcile loop: Accepted from its listeners, ResolvedRefs from
    the backends (a Service that comes later resolves it), each condition at the generation
    it saw, a moment after the change."""
    assert call(kube, "POST", ROUTES, route("gateway")).status_code == 201
    conditions = wait_for_status(kube, {"Accepted": "True", "ResolvedRefs": "False"})
    assert conditions["ResolvedRefs"]["reason"] == "BackendNotFound"
    assert "Service model-api not found" in conditions["ResolvedRefs"]["message"]
    assert conditions["Accepted"]["observedGeneration"] == 1
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "model-api", "namespace": NS},
               "spec": {"ports": [{"port": 80}]}}  # fmt: skip
    assert call(kube, "POST", f"/api/v1/namespaces/{NS}/services", service).status_code == 201
    wait_for_status(kube, {"Accepted": "True", "ResolvedRefs": "True"})
    parent = kube.get("HTTPRoute", NS, "model-api")["status"]["parents"][0]
    assert parent["parentRef"] == {"name": "public", "namespace": "gateways"}
    patch = [{"op": "replace", "path": "/spec/hostnames", "value": ["other.example.com"]}]
    assert call(kube, "PATCH", f"{ROUTES}/model-api", patch, "application/json-patch+json").status_code == 200
    assert kube.get("HTTPRoute", NS, "model-api")["metadata"]["generation"] == 2
    for _ in range(100):
        if (
            wait_for_status(kube, {"Accepted": "True", "ResolvedRefs": "True"})["Accepted"][
                "observedGeneration"
            ]
            == 2
        ):
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the report never caught up with generation 2")
    kube.gateway.set_behaviour("not_allowed")
    refused = wait_for_status(kube, {"Accepted": "False", "ResolvedRefs": "True"})
    assert refused["Accepted"]["reason"] == "NotAllowedByListeners"


def test_an_http_route_keeps_the_crds_match_limits_and_prunes_what_standard_lacks(kube: KubeEmulator) -> None:
    """v1.4.1's standard CRD: 128 matches across the rules, header matches a list-map keyed by
    name, the URLRewrite prefix rule, and no retry/sessionPersistence (experimental) fields."""
    team = route("gateway")
    rule = team["spec"]["rules"][0]
    rule["retry"] = {"attempts": 2}
    rule["sessionPersistence"] = {"sessionName": "s"}
    rule["timeouts"] = {"request": "10s"}
    created = call(kube, "POST", ROUTES, team)
    assert created.status_code == 201, created.text
    assert set(created.json()["spec"]["rules"][0]) == {"matches", "backendRefs", "timeouts"}
    many = [{"path": {"type": "PathPrefix", "value": f"/m{n}"}} for n in range(64)]
    three = [{"matches": many, "backendRefs": [{"name": "model-api", "port": 80}]}] * 3
    replace = [{"op": "replace", "path": "/spec/rules", "value": three}]
    too_many = call(kube, "PATCH", f"{ROUTES}/model-api", replace, "application/json-patch+json")
    assert too_many.status_code == 422 and "must be less than 128" in too_many.text
    twice = {"path": {"type": "PathPrefix", "value": "/"},
             "headers": [{"name": "x-canary", "value": "a"}, {"name": "x-canary", "value": "b"}]}  # fmt: skip
    duplicate = call(kube, "PATCH", f"{ROUTES}/model-api",
                     [{"op": "replace", "path": "/spec/rules/0/matches", "value": [twice]}],
                     "application/json-patch+json")  # fmt: skip
    assert duplicate.status_code == 422 and "headers[1]: Duplicate value" in duplicate.text
    rewrite = {
        "type": "URLRewrite",
        "urlRewrite": {"path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}},
    }
    two_matches = [
        {"path": {"type": "PathPrefix", "value": "/a"}},
        {"path": {"type": "PathPrefix", "value": "/b"}},
    ]
    patch = [{"op": "add", "path": "/spec/rules/0/filters", "value": [rewrite]},
             {"op": "replace", "path": "/spec/rules/0/matches", "value": two_matches}]  # fmt: skip
    refused = call(kube, "PATCH", f"{ROUTES}/model-api", patch, "application/json-patch+json")
    assert refused.status_code == 422 and "exactly one PathPrefix match" in refused.text
