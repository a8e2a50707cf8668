"""The Kubernetes emulator's server-side apply answers as the real API server's field manager
does: the scenario in tests/server_side_apply.py, whose expectations the real tier checks
against a real kube-apiserver (tests/real/test_server_side_apply.py)."""

from __future__ import annotations

from typing import Any

import requests

from tests.emulators.kube import KubeEmulator
from tests.server_side_apply import run_scenario


def test_server_side_apply_keeps_ownership_as_the_api_server_does(kube: KubeEmulator) -> None:
    def call(method: str, path: str, body: Any, content_type: str, **query: Any) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {kube.token}", "User-Agent": "scenario/1.0"}
        if content_type:
            headers["Content-Type"] = content_type
        answer = requests.request(
            method, kube.url + path, json=body, headers=headers, params=query, timeout=10
        )
        return answer.status_code, answer.json()

    run_scenario(call, "model-api-nonprod")


def test_an_apply_without_a_field_manager_is_refused(kube: KubeEmulator) -> None:
    path = "/apis/apps/v1/namespaces/model-api-nonprod/deployments/x"
    headers = {"Authorization": f"Bearer {kube.token}", "Content-Type": "application/apply-patch+yaml"}
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    answer = requests.patch(kube.url + path, json=body, headers=headers, timeout=10)
    assert answer.status_code == 422 and "fieldManager" in answer.json()["message"]
