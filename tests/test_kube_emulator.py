"""The Kubernetes emulator serves objects that validate against the Kubernetes schemas,
and its watch streams and controller behave as the real ones do for what releasegate uses."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import requests

from releasegate import render
from releasegate.config import load_environment, load_project
from releasegate.version import parse_tag
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
    response = call(kube, "POST", f"/apis/apps/v1/namespaces/{NS}/deployments", deployment)
    assert response.status_code == 201, response.text
    return response.json()


def wait_for(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.parametrize(
    "scenario", ["ready", "pull_error", "crashloop", "oom", "never_ready", "config_error"]
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
