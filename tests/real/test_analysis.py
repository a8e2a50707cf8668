"""A canary's analysis answered by real Prometheus: it scrapes each pod's ``/metrics`` (found
through the real API server, labelled by track) while users send predictions, and the contract's
query is evaluated by real PromQL. Mirrors the analysis tests of tests/test_canary.py."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from tests.test_canary import backend_weights

from .conftest import RealCluster
from .prometheus import RealPrometheus, Users
from .stack import RealStack
from .test_strategies import deploy, read_route, real_route, strategy

# What Prometheus answers does not depend on how the objects were applied: one deployer here.
pytestmark = [pytest.mark.real, pytest.mark.parametrize("real", ["apply"], indirect=True)]
APP = "model-api"
INTERVAL = 8  # seconds: Prometheus needs up to 5 s to scrape a new pod, and rate() two scrapes


def contract_query(namespace: str) -> str:
    """The query product.md gives, scoped to the test's namespace, over a window of seconds."""
    where = f'namespace="{namespace}",track="canary"'
    return (
        f'(sum(rate(http_requests_total{{{where},code=~"5.."}}[6s])) or vector(0))'
        f" / sum(rate(http_requests_total{{{where}}}[6s]))"
    )


@pytest.fixture(scope="module")
def prometheus(real_cluster: RealCluster) -> Iterator[RealPrometheus]:
    plane, network, *_ = real_cluster
    server = RealPrometheus(plane.workdir, plane, network).start()
    yield server
    server.stop()


def analysed_canary(
    real: RealStack, prometheus: RealPrometheus, smoke_predict: bool = True, query: str = ""
) -> None:
    namespace = real.namespaces["nonprod"]
    analysis = (
        f"{{interval: {INTERVAL}, prometheus: {{url: '{prometheus.url}', "
        f"query: '{query or contract_query(namespace)}', max: 0.01}}}}"
    )
    strategy(
        real, f"{{type: canary, traffic: gateway, route: model-api, steps: [{{weight: 50, pause: 1}}], "
        f"analysis: {analysis}}}",
    )  # fmt: skip
    if not smoke_predict:  # only the health check: the analysis alone judges the predictions
        path = real.project / "k8s" / "environments" / "nonprod.yaml"
        text = path.read_text()
        start = text.index("    - name: sample prediction")
        path.write_text(text[:start] + text[text.index("values:") :])
    real_route(real, "gateway")


def test_a_healthy_canary_passes_real_promql_with_no_5xx_series_at_all(
    real: RealStack, prometheus: RealPrometheus
) -> None:
    analysed_canary(real, prometheus)
    namespace = real.namespaces["nonprod"]
    with Users(real.plane, real.network, namespace):
        assert deploy(real, "v1.0.0").exit_code == 0
        run = deploy(real, "v1.1.0")
        # What makes the contract's `or vector(0)` needed: with no 5xx there is no such series.
        errors = f'sum(rate(http_requests_total{{namespace="{namespace}",code=~"5.."}}[6s]))'
        assert prometheus.query(errors)["result"] == []
    assert run.exit_code == 0, run.stderr
    entries = json.loads(run.stdout)["analysis"]
    assert entries and {(e["verdict"], e["value"]) for e in entries} == {("pass", 0.0)}, entries
    assert backend_weights(read_route(real, "gateway")) == {f"{APP}-stable": 100, f"{APP}-canary": 0}
    stable = real.deployment("nonprod")
    assert stable is not None and stable["metadata"]["labels"]["app.kubernetes.io/version"] == "v1.1.0"


def test_a_canary_answering_5xx_is_aborted_by_the_real_query(
    real: RealStack, prometheus: RealPrometheus
) -> None:
    analysed_canary(real, prometheus, smoke_predict=False)
    namespace = real.namespaces["nonprod"]
    bad = real.publish("v1.1.0")
    real.network.apps.behaviours[bad] = "broken_predict"
    with Users(real.plane, real.network, namespace):
        assert deploy(real, "v1.0.0").exit_code == 0
        started = time.monotonic()
        run = real.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 4, run.stderr
    # the users' predictions all fail; the health checks of each round are the few that pass
    assert re.search(r"canary step 1 \(50 %\): analysis (1|0\.9\d*) is above max 0.01", run.stderr), (
        run.stderr
    )
    failed = json.loads(run.stdout)
    assert [e["verdict"] for e in failed["analysis"]] == ["fail"]
    assert backend_weights(read_route(real, "gateway")) == {f"{APP}-stable": 100, f"{APP}-canary": 0}
    assert real.deployment("nonprod", f"{APP}-canary") is None
    assert time.monotonic() - started < 60


def test_an_idle_canary_is_no_data_never_a_pass(real: RealStack, prometheus: RealPrometheus) -> None:
    """No users and no smoke checks: the canary's pods are scraped, but nothing reached them, so
    no http_requests_total series exists for the canary track and the query is an empty vector."""
    analysed_canary(real, prometheus, smoke_predict=False)
    path = real.project / "k8s" / "environments" / "nonprod.yaml"
    text = path.read_text()
    path.write_text(text[: text.index("smoke:")] + text[text.index("values:") :])  # no smoke checks at all
    assert deploy(real, "v1.0.0").exit_code == 0
    run = deploy(real, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "returned no data (no series matched): not a pass" in run.stderr, run.stderr
    assert [e["verdict"] for e in json.loads(run.stdout)["analysis"]] == ["no-data"]
    assert prometheus.scraped(real.namespaces["nonprod"])  # Prometheus did see the pods


def test_a_ratio_over_zero_stable_errors_is_real_infinity_and_fails_in_valid_json(
    real: RealStack, prometheus: RealPrometheus
) -> None:
    """The canary's 5xx rate over the stable's: with no stable error, real PromQL answers +Inf
    (Prometheus writes it as the string "+Inf"); it is above any max, and the JSON stays JSON."""
    namespace = real.namespaces["nonprod"]

    def errors(track: str) -> str:
        where = f'namespace="{namespace}",track="{track}",code=~"5.."'
        return f"(sum(rate(http_requests_total{{{where}}}[6s])) or vector(0))"

    analysed_canary(real, prometheus, smoke_predict=False, query=f"{errors('canary')} / {errors('stable')}")
    bad = real.publish("v1.1.0")
    real.network.apps.behaviours[bad] = "broken_predict"
    with Users(real.plane, real.network, namespace):
        assert deploy(real, "v1.0.0").exit_code == 0
        run = real.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "canary step 1 (50 %): analysis +Inf is above max 0.01" in run.stderr, run.stderr

    def refuse(token: str) -> object:
        raise AssertionError(f"{token} in the --json output")

    failed = json.loads(run.stdout, parse_constant=refuse)
    assert [(e["verdict"], e["value"]) for e in failed["analysis"]] == [("fail", "+Inf")]
    assert backend_weights(read_route(real, "gateway")) == {f"{APP}-stable": 100, f"{APP}-canary": 0}
