"""The pre-flight's SelfSubjectAccessReviews against real RBAC: the README's Role passes, and
one verb taken out of it is named and refused before any change. Mirrors tests/test_permissions.py."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.emulators.stack import readme_role

from .stack import RealStack

pytestmark = pytest.mark.real


def test_a_verb_missing_from_the_role_is_refused_by_name_before_any_change(real: RealStack) -> None:
    real.publish("v1.4.2")
    allowed = real.releasegate("check", "--env", "nonprod", "--tag", "v1.4.2")
    assert allowed.exit_code == 0, allowed.stderr
    namespace = real.namespaces["nonprod"]
    role = next(d for d in readme_role() if d["kind"] == "Role")
    for rule in role["rules"]:
        if "services/proxy" in rule["resources"]:
            rule["verbs"] = [v for v in rule["verbs"] if v != "create"]
    role["metadata"]["namespace"] = namespace
    real.plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(role))
    refused = real.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert refused.exit_code == 3, refused.stderr
    assert "may not do what a deploy to nonprod needs: create services/proxy" in refused.stderr, (
        refused.stderr
    )
    assert real.deployment("nonprod") is None  # nothing was applied
    assert json.loads(refused.stdout)["exit_code"] == 3
