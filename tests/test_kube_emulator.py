"""The Kubernetes emulator serves objects that validate against the Kubernetes schemas,
and its watch streams and controller behave as the real ones do for what releasegate uses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import requests

from releasegate.core.config import load_environment, load_project
from releasegate.core.version import parse_tag
from releasegate.deploy import render
from tests.emulators.kube import KubeEmulator

ROOT = Path(__file__).resolve().parents[1]
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@sha256:" + "ab" * 32
NS = "model-api-nonprod"


def call(kube: KubeEmulator, method: str, path: str, body: Any = None, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {kube.token}"}
    return requests.request(method, kube.url + path, json=body, params=params, headers=headers, timeout=10)


def apply_release(kube: KubeEmulator, tag: str = "v1.4.2") -> dict[str, Any]:
    project = load_project(ROOT)
    manifests = render.render(project, load_environment(project, "nonprod"), parse_tag(tag), IMAGE)
    deployment = next(m.obj for m in manifests if m.kind == "Deployment")
    deployment["spec"]["replicas"] = 2  # the initial count releasegate sets on creation
    response = call(kube, "POST", f"/apis/apps/v1/namespaces/{NS}/deployments", deployment)
    assert response.status_code == 201, response.text
    return response.json()


def wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "scenario",
    [
        "ready",
        "pull_error",
        "crashloop",
        "oom",
        "never_ready",
        "config_error",
        "unschedulable",
        "no_scale_up",
    ],
)
def test_served_objects_validate_against_kubernetes_schemas(kube: KubeEmulator, scenario: str) -> None:
    kube.controller.default_scenario = scenario
    apply_release(kube)
    settled = (
        (lambda: _ready_count(kube) == 2)
        if scenario == "ready"
        else (lambda: len(kube.controller.transitions) >= 2)
    )
    wait_for(settled)
    served = [
        call(kube, "GET", f"/apis/apps/v1/namespaces/{NS}/deployments/model-api").json(),
        *call(kube, "GET", f"/api/v1/namespaces/{NS}/pods").json()["items"],
        *call(kube, "GET", f"/api/v1/namespaces/{NS}/events").json()["items"],
    ]
    assert len(served) >= 3
    for obj in served:
        kubernetes_validate.validate(obj, render.KUBERNETES_VERSION, strict=True)


def _ready_count(kube: KubeEmulator) -> int:
    deployment = kube.get("Deployment", NS, "model-api")
    return int((deployment or {}).get("status", {}).get("readyReplicas", 0))


def test_rolling_update_keeps_old_pods_until_new_ones_are_ready(kube: KubeEmulator) -> None:
    apply_release(kube)
    wait_for(lambda: _ready_count(kube) == 2)
    old = {p["metadata"]["name"] for p in kube.list("Pod", NS)}
    kube.controller.scenarios["v1.5.0"] = "crashloop"
    project = load_project(ROOT)
    deployment = next(
        m.obj
        for m in render.render(project, load_environment(project, "nonprod"), parse_tag("v1.5.0"), IMAGE)
        if m.kind == "Deployment"
    )
    current = kube.get("Deployment", NS, "model-api")
    deployment["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
    deployment["spec"]["replicas"] = 2  # a PUT replaces the whole spec: without it, 1
    assert (
        call(kube, "PUT", f"/apis/apps/v1/namespaces/{NS}/deployments/model-api", deployment).status_code
        == 200
    )
    wait_for(lambda: any(t.reason == "CrashLoopBackOff" for t in kube.controller.transitions))
    names = {p["metadata"]["name"] for p in kube.list("Pod", NS)}
    assert old < names  # the old pods still serve beside the crashing new ones
    status = kube.get("Deployment", NS, "model-api")["status"]
    assert (status["updatedReplicas"], status["replicas"], status["readyReplicas"]) == (2, 4, 2)


def test_watch_streams_current_objects_then_changes(kube: KubeEmulator) -> None:
    apply_release(kube)
    response = requests.get(
        f"{kube.url}/api/v1/namespaces/{NS}/pods",
        params={"watch": "true", "timeoutSeconds": "2"},
        headers={"Authorization": f"Bearer {kube.token}"},
        stream=True,
        timeout=10,
    )
    events = [json.loads(line) for line in response.iter_lines() if line]
    assert events[0]["type"] == "ADDED" and events[0]["object"]["kind"] == "Pod"
    assert any(e["type"] == "MODIFIED" and e["object"]["status"]["phase"] == "Running" for e in events)


def test_auth_and_errors_are_kubernetes_status_objects(kube: KubeEmulator) -> None:
    unauthorised = requests.get(f"{kube.url}/api/v1/namespaces/{NS}/pods", timeout=5)
    assert unauthorised.status_code == 401 and unauthorised.json()["kind"] == "Status"
    missing = call(kube, "GET", f"/apis/apps/v1/namespaces/{NS}/deployments/nope")
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
    apply_release(kube)
    conflict = call(
        kube, "POST", f"/apis/apps/v1/namespaces/{NS}/deployments", kube.get("Deployment", NS, "model-api")
    )
    assert conflict.status_code == 409 and conflict.json()["reason"] == "AlreadyExists"


def test_images_missing_from_the_registry_fail_to_pull() -> None:
    kube = KubeEmulator(registry_has=lambda image: False).start()
    try:
        apply_release(kube)
        wait_for(lambda: any(t.reason == "ImagePullBackOff" for t in kube.controller.transitions))
    finally:
        kube.stop()


def watch_events(kube: KubeEmulator, path: str, **params: str) -> list[dict[str, Any]]:
    response = requests.get(
        kube.url + path,
        params={"watch": "true", **params},
        headers={"Authorization": f"Bearer {kube.token}"},
        stream=True,
        timeout=10,
    )
    return [json.loads(line) for line in response.iter_lines() if line]


def config_map(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}}


def test_creating_in_a_missing_namespace_is_404_and_listing_there_is_empty(kube: KubeEmulator) -> None:
    created = call(kube, "POST", "/api/v1/namespaces/nowhere/configmaps", config_map("x"))
    assert created.status_code == 404 and created.json()["message"] == 'namespaces "nowhere" not found'
    listed = call(kube, "GET", "/api/v1/namespaces/nowhere/configmaps")
    assert listed.status_code == 200 and listed.json()["items"] == []
    assert call(kube, "GET", "/api/v1/namespaces/nowhere").status_code == 404
    made = call(kube, "POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                   "metadata": {"name": "nowhere"}})  # fmt: skip
    assert made.status_code == 201
    assert call(kube, "GET", "/api/v1/namespaces/nowhere").json()["status"]["phase"] == "Active"
    assert call(kube, "POST", "/api/v1/namespaces/nowhere/configmaps", config_map("x")).status_code == 201


def test_a_watch_resumes_from_a_resource_version(kube: KubeEmulator) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    first = call(kube, "POST", path, config_map("a")).json()
    call(kube, "POST", path, config_map("b"))
    events = watch_events(
        kube, path, resourceVersion=first["metadata"]["resourceVersion"], timeoutSeconds="1"
    )
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "b")]


def test_a_compacted_resource_version_is_410_gone(kube: KubeEmulator) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    first = call(kube, "POST", path, config_map("a")).json()
    kube.compact()
    call(kube, "POST", path, config_map("b"))
    (event,) = watch_events(
        kube, path, resourceVersion=first["metadata"]["resourceVersion"], timeoutSeconds="1"
    )
    assert event["type"] == "ERROR"
    assert event["object"]["code"] == 410 and "too old resource version" in event["object"]["message"]


def test_the_server_may_close_a_watch_early(kube: KubeEmulator) -> None:
    kube.faults.watch_seconds = 0.3
    started = time.monotonic()
    watch_events(kube, f"/api/v1/namespaces/{NS}/configmaps", timeoutSeconds="30")
    assert time.monotonic() - started < 5


def test_delete_preconditions_and_injected_errors(kube: KubeEmulator) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    made = call(kube, "POST", path, config_map("a")).json()
    stale = {"preconditions": {"resourceVersion": "1"}}
    refused = call(kube, "DELETE", f"{path}/a", stale)
    assert refused.status_code == 409 and "Precondition failed" in refused.json()["message"]
    kube.fail_next(503, "DELETE", "/configmaps/a")
    assert call(kube, "DELETE", f"{path}/a").status_code == 503
    exact = {"preconditions": {"resourceVersion": made["metadata"]["resourceVersion"]}}
    assert call(kube, "DELETE", f"{path}/a", exact).status_code == 200


def test_endpoint_slices_follow_a_selector_change_late_and_the_proxy_uses_them(kube: KubeEmulator) -> None:
    """Found by the real tier: the service proxy picks from EndpointSlices, which the
    endpointslice controller rewrites a moment after the Service or its pods change."""
    apply_release(kube)
    wait_for(lambda: len([p for p in kube.list("Pod", NS) if p["status"].get("podIP")]) == 2)
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "model-api", "namespace": NS},
        "spec": {"selector": {"app.kubernetes.io/name": "model-api"}, "ports": [{"name": "http", "port": 80,
                 "targetPort": 8000}]},
    }  # fmt: skip
    assert call(kube, "POST", f"/api/v1/namespaces/{NS}/services", service).status_code == 201
    proxied = call(kube, "GET", f"/api/v1/namespaces/{NS}/services/model-api:http/proxy/health/ready")
    assert proxied.status_code == 503 and "no endpoints available" in proxied.text  # not yet listed
    path = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"

    def listed() -> set[str]:
        found = call(kube, "GET", path, labelSelector="kubernetes.io/service-name=model-api").json()["items"]
        return {a for s in found for e in s["endpoints"] if e["conditions"]["ready"] for a in e["addresses"]}

    pod_ips = {p["status"]["podIP"] for p in kube.list("Pod", NS)}
    wait_for(lambda: listed() == pod_ips)
    assert len(pod_ips) == 2  # each pod has an address of its own
    assert call(kube, "GET", f"/api/v1/namespaces/{NS}/services/model-api:http/proxy/health/ready").ok
    for piece in kube.list("EndpointSlice", NS):
        kubernetes_validate.validate(piece, "1.33.0", strict=True)


def test_each_pod_exposes_what_it_served_in_prometheus_text_format(kube: KubeEmulator) -> None:
    """What the real tier's Prometheus scrapes: a series per (method, path, code) once answered."""
    apply_release(kube)
    wait_for(lambda: len([p for p in kube.list("Pod", NS) if p["status"].get("podIP")]) == 2)
    kube.proxy.apps.behaviours["v1.4.2"] = "broken_predict"
    pod = kube.list("Pod", NS)[0]["metadata"]["name"]
    base = f"/api/v1/namespaces/{NS}/pods/{pod}:8000/proxy"
    assert call(kube, "GET", f"{base}/health/ready").ok
    for _ in range(2):
        assert call(kube, "POST", f"{base}/predict", {"inputs": [[1]]}).status_code == 500
    scraped = call(kube, "GET", f"{base}/metrics")
    assert scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "# TYPE http_requests_total counter\n" in scraped.text
    series = re.findall(
        r'^http_requests_total\{method="(\w+)",path="([^"]+)",code="(\d+)"\} (\d+)$', scraped.text, re.M
    )
    assert series == [("GET", "/health/ready", "200", "1"), ("POST", "/predict", "500", "2")], scraped.text
    if promtool := shutil.which("promtool"):  # Prometheus' own linter, where the real tier installed it
        linted = subprocess.run(
            [promtool, "check", "metrics"], input=scraped.text, capture_output=True, text=True
        )
        assert linted.returncode == 0, linted.stdout + linted.stderr


def test_an_autoscaler_keeps_its_target_between_its_minimum_and_maximum(kube: KubeEmulator) -> None:
    """As the podautoscaler controller: the load's count, never below minReplicas (raising it
    scales up at once) nor above maxReplicas."""
    apply_release(kube)
    project = load_project(ROOT)
    manifests = render.render(project, load_environment(project, "nonprod"), parse_tag("v1.4.2"), IMAGE)
    hpa = next(m.obj for m in manifests if m.kind == "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    path = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
    assert call(kube, "POST", path, hpa).status_code == 201

    def count() -> int:
        return int(kube.get("Deployment", NS, "model-api")["spec"]["replicas"])

    kube.autoscalers.want(NS, "model-api", 9)
    assert count() == 4
    kube.autoscalers.want(NS, "model-api", 1)
    assert count() == 2
    raised = call(kube, "PATCH", f"{path}/model-api", {"spec": {"minReplicas": 3}})
    assert raised.status_code == 200, raised.text
    assert count() == 3
    wait_for(lambda: _ready_count(kube) == 3)
