"""The README's Role is exactly what releasegate uses: checked against the API servers' audit
log of every request the deployer identity made in this run. Runs after every other real-tier
test (see conftest.py), since it judges what they did."""

from __future__ import annotations

import pytest

from tests.emulators.stack import readme_role

from .controlplane import ControlPlane

pytestmark = [pytest.mark.real, pytest.mark.last]
# Asked for and allowed to fail, so a 403 is an answer there, not a missing permission: the
# pre-flight (and kubectl) read the Namespace only where they may, as the README says, and
# skaffold lists the Nodes to learn their platforms and carries on without them.
OPTIONAL = {("", "namespaces", "get"), ("", "nodes", "list")}
# Granted for paths no real-tier test takes, each covered by a fast-tier test instead: the
# ledger's pruning past its 100 records, and its read-back after a create that answered 409.
NOT_EXERCISED_HERE = {("", "configmaps", "delete"), ("", "configmaps", "get")}


def granted() -> set[tuple[str, str, str]]:
    role = next(d for d in readme_role() if d["kind"] == "Role")
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def permission(event: dict) -> tuple[str, str, str]:
    ref = event.get("objectRef") or {}
    resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
    return ref.get("apiGroup", ""), resource, event["verb"]


def test_every_request_was_allowed_and_every_granted_verb_was_used(real_cluster: tuple) -> None:
    plane: ControlPlane = real_cluster[0]
    events = [e for e in plane.deployer_requests() if e.get("objectRef")]
    assert len(events) > 100, "the other real-tier tests ran first, as the deployer"
    forbidden = sorted({permission(e) for e in events if e["responseStatus"]["code"] == 403} - OPTIONAL)
    assert forbidden == [], f"the README's Role lacks {forbidden}"
    used = {permission(e) for e in events if e["responseStatus"]["code"] != 403}
    unused = sorted(granted() - used - NOT_EXERCISED_HERE)
    assert unused == [], f"the README's Role grants what no command used: {unused}"
