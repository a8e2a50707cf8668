"""What a deploy needs of the cluster: the pure list per environment, the README's Role as
exactly its union, and the pre-flight refusing before any change when the API server's
SelfSubjectAccessReview says a permission is missing."""

from __future__ import annotations

import dataclasses

import pytest

from releasegate.core.config import Environment, SmokeCheck, load_environment, load_project
from releasegate.core.strategy_config import Analysis, Prometheus, StrategySettings
from releasegate.kube.permissions import Permission, needed
from tests.emulators.stack import ROOT, Stack, readme_role
from tests.test_e2e import assert_one_line_failure

NS = "model-api-nonprod"


def nonprod() -> Environment:
    return load_environment(load_project(ROOT), "nonprod")


def variants() -> list[Environment]:
    """Every way an environment can use the cluster: each strategy and traffic, each_pod, an
    in-cluster Prometheus in the environment's own namespace."""
    env = nonprod()
    assert env.smoke is not None
    each_pod = dataclasses.replace(env, smoke=dataclasses.replace(env.smoke, each_pod=True))
    prometheus = Analysis(Prometheus(query="q", max=0.01, service=f"{NS}/prometheus:9090"))
    canaries = [
        dataclasses.replace(
            env, strategy=StrategySettings(type="canary", traffic=traffic, analysis=prometheus)
        )
        for traffic in ("gateway", "istio", "replicas")
    ]
    return [env, each_pod, dataclasses.replace(env, strategy=StrategySettings(type="bluegreen")), *canaries]


def test_posting_smoke_checks_need_create_on_the_service_proxy() -> None:
    env = nonprod()
    wanted = needed(env)
    assert Permission("create", "services/proxy") in wanted  # the shipped POST /predict check
    assert env.smoke is not None
    only_get = dataclasses.replace(env.smoke, checks=(SmokeCheck("health", "/health/ready"),))
    assert Permission("create", "services/proxy") not in needed(dataclasses.replace(env, smoke=only_get))
    assert not any(p.resource.endswith("/proxy") for p in needed(dataclasses.replace(env, smoke=None)))


def test_what_the_strategy_and_analysis_add() -> None:
    env = nonprod()
    gateway = dataclasses.replace(env, strategy=StrategySettings(type="canary", traffic="gateway"))
    assert Permission("patch", "httproutes", "gateway.networking.k8s.io") in needed(gateway)
    assert not any(p.group == "gateway.networking.k8s.io" for p in needed(env))
    elsewhere = Analysis(Prometheus(query="q", max=1, service="monitoring/prometheus-server:9090"))
    analysed = dataclasses.replace(
        gateway, strategy=dataclasses.replace(gateway.strategy, analysis=elsewhere)
    )
    assert Permission("get", "services/proxy", "", "monitoring") in needed(analysed)


def test_the_readmes_role_is_exactly_what_the_deploys_need() -> None:
    role = next(d for d in readme_role() if d["kind"] == "Role")
    granted = {
        (verb, resource, group)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    used = {(p.verb, p.resource, p.group) for env in variants() for p in needed(env)}
    assert granted - used == set(), "granted but never needed"
    assert used - granted == set(), "needed but not in the README's Role"


@pytest.mark.e2e
def test_a_missing_permission_is_refused_before_any_change(stack: Stack) -> None:
    stack.publish("v1.4.2")
    stack.kube.authorizer.forbidden = {
        ("create", "services/proxy", ""),
        ("delete", "leases", "coordination.k8s.io"),
    }
    check = stack.releasegate("check", "--env", "nonprod", "--tag", "v1.4.2")
    assert check.exit_code == 3, check.stderr
    assert (
        "create services/proxy" in check.last_line and "delete leases.coordination.k8s.io" in check.last_line
    )
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 3, run.stderr
    assert_one_line_failure(run, "may not do what a deploy to nonprod needs")
    assert stack.kube.writes() == []
    reviewed = {(a["verb"], a["resource"], a.get("subresource", "")) for a in stack.kube.authorizer.reviews}
    assert ("create", "services", "proxy") in reviewed and ("watch", "pods", "") in reviewed


@pytest.mark.e2e
def test_the_emulator_refuses_what_is_forbidden_as_rbac_words_it(stack: Stack) -> None:
    """Without the pre-flight the same Role fails later: the smoke check's POST answers 403."""
    from tests.test_kube_emulator import call

    stack.kube.authorizer.forbidden = {("create", "services/proxy", "")}
    refused = call(stack.kube, "POST", f"/api/v1/namespaces/{NS}/services/model-api:http/proxy/predict", {})
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        'services "model-api" is forbidden: User "emulator" cannot create resource "services/proxy" '
        f'in API group "" in the namespace "{NS}"'
    )
    assert (
        call(stack.kube, "GET", f"/api/v1/namespaces/{NS}/services/model-api:http/proxy/health").status_code
        != 403
    )
