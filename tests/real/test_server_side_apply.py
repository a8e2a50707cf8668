"""The server-side apply scenario of tests/server_side_apply.py against a real kube-apiserver:
the expectations the Kubernetes emulator is held to are the real field manager's."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.server_side_apply import run_scenario

from .conftest import RealCluster

pytestmark = pytest.mark.real


def test_the_real_field_manager_does_what_the_emulator_is_held_to(real_cluster: RealCluster) -> None:
    plane = real_cluster[0]
    namespace = "ssa-scenario"
    plane.kubectl("create", "namespace", namespace)

    def call(method: str, path: str, body: Any, content_type: str, **query: Any) -> tuple[int, Any]:
        url = plane.url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {plane.admin.token}", "User-Agent": "scenario/1.0"}
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, context=plane.tls, timeout=30) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    try:
        run_scenario(call, namespace)
    finally:
        plane.kubectl("delete", "namespace", namespace, "--wait=false")
