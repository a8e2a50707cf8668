"""The verdict on one Prometheus answer (pass, fail, no-data, error), and how a canary run
counts them against failure_limit and error_limit."""

from __future__ import annotations

import json

import pytest

from releasegate.aws.sigv4 import signed_headers, signing_region
from releasegate.core.strategy_config import Prometheus
from releasegate.strategies.analysis import (
    ERROR,
    FAIL,
    NO_DATA,
    PASS,
    Evaluations,
    Verdict,
    judge,
)

LIMIT = Prometheus(query="q", max=0.01, url="http://prometheus:9090")


def answer(*values: str, kind: str = "vector") -> bytes:
    if kind == "scalar":
        return json.dumps(
            {"status": "success", "data": {"resultType": "scalar", "result": [1.0, values[0]]}}
        ).encode()
    result = [{"metric": {"pod": str(n)}, "value": [1.0, v]} for n, v in enumerate(values)]
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": result}}).encode()


def test_a_value_at_or_below_max_passes() -> None:
    assert judge(LIMIT, 200, answer("0.01")).passed
    assert judge(LIMIT, 200, answer("0", "0.002")).value == 0.002
    assert judge(LIMIT, 200, answer("0.004", kind="scalar")).passed


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (200, answer("0.002", "0.3"), FAIL, "analysis 0.3 is above max 0.01"),  # the worst series counts
        (200, answer("+Inf"), FAIL, "analysis +Inf is above max"),  # errors over zero stable errors
        (200, answer("NaN", "+Inf"), FAIL, "analysis +Inf is above max"),  # +Inf fails, whatever else
        (200, answer("-Inf"), NO_DATA, "returned -Inf"),  # measures nothing: never a pass
        (200, answer("0.001", "-Inf"), NO_DATA, "returned -Inf"),
        (200, answer("NaN"), NO_DATA, "returned NaN"),  # 0/0: no requests at all is not a pass
        (200, answer("NaN", "0.001"), NO_DATA, "returned NaN"),  # NaN anywhere, first ...
        (200, answer("0.001", "NaN"), NO_DATA, "returned NaN"),  # ... or last: the same verdict
        (200, answer("NaN", kind="scalar"), NO_DATA, "returned NaN"),
        (200, answer(), NO_DATA, "returned no data"),
        (
            400,
            b'{"status":"error","errorType":"bad_data","error":"parse error"}',
            ERROR,
            "failed: 400 parse error",
        ),
        (503, b"<html>Service Unavailable</html>", ERROR, "not JSON"),
        (403, b'{"message":"Missing Authentication Token"}', ERROR, "failed: 403"),
        (200, b'{"status":"success","data":{"resultType":"matrix","result":[]}}', ERROR, "neither a vector"),
        (
            200,
            b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}',
            ERROR,
            "neither",
        ),
    ],
)
def test_anything_else_is_not_a_pass(status: int, body: bytes, kind: str, words: str) -> None:
    verdict = judge(LIMIT, status, body)
    assert (verdict.kind, verdict.passed) == (kind, False) and words in verdict.problem


def test_an_infinite_value_is_recorded_as_prometheus_writes_it() -> None:
    """The JSON result's entry holds "+Inf" (RFC 8259 has no Infinity), never a float."""
    found = Evaluations(failure_limit=1, error_limit=0)
    found.begin(1)
    found.record(judge(LIMIT, 200, answer("+Inf")))
    assert found.entries[0]["value"] == "+Inf" and found.entries[0]["verdict"] == FAIL


PASSED, ABOVE, EMPTY = (
    Verdict(0.0, ""),
    Verdict(0.5, "analysis 0.5 is above max 0.01", FAIL),
    Verdict(None, "the analysis query returned no data", NO_DATA),
)
BROKEN = Verdict(None, "the analysis query failed: 503", ERROR)


def test_failures_beyond_failure_limit_abort_and_count_per_step() -> None:
    counted = Evaluations(failure_limit=1, error_limit=4)
    counted.begin(1)
    assert counted.record(ABOVE) is None  # one tolerated
    assert counted.record(PASSED) is None
    assert "2 failed evaluations, failure_limit 1" in (counted.record(EMPTY) or "")  # no data counts too
    counted.begin(2)  # a new step starts from zero
    assert counted.record(EMPTY) is None and counted.unproven() is not None
    assert counted.record(PASSED) is None and counted.unproven() is None
    assert [e["verdict"] for e in counted.entries] == [FAIL, PASS, NO_DATA, NO_DATA, PASS]
    assert [e["step"] for e in counted.entries] == [1, 1, 1, 2, 2]
    assert counted.entries[0]["value"] == 0.5 and counted.entries[2]["value"] is None


def test_only_consecutive_errors_beyond_error_limit_abort() -> None:
    counted = Evaluations(failure_limit=0, error_limit=2)
    counted.begin(1)
    assert counted.record(BROKEN) is None and counted.record(BROKEN) is None
    assert counted.record(PASSED) is None  # the row ends
    assert counted.record(BROKEN) is None and counted.record(BROKEN) is None
    assert "3 query errors in a row, error_limit 2" in (counted.record(BROKEN) or "")
    assert counted.failed_in_step == 0  # errors are not failures


def test_with_limit_zero_the_first_failure_aborts() -> None:
    counted = Evaluations(failure_limit=0, error_limit=0)
    counted.begin(1)
    assert counted.record(ABOVE) == ABOVE.problem
    assert counted.record(BROKEN) is not None


@pytest.mark.parametrize(
    ("url", "region"),
    [
        ("https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1", "us-east-1"),
        ("https://aps-workspaces-fips.us-gov-west-1.amazonaws.com/workspaces/ws-1", "us-gov-west-1"),
        ("https://aps-workspaces.ap-southeast-2.amazonaws.com/workspaces/ws-1", "ap-southeast-2"),
        ("http://127.0.0.1:9090/workspaces/ws-1", "eu-west-1"),  # no region in the URL: the env's
    ],
)
def test_amp_queries_are_signed_for_the_workspaces_region(url: str, region: str) -> None:
    assert signing_region(url, "eu-west-1") == region


def test_the_signature_is_scoped_to_the_workspaces_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    url = "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/api/v1/query"
    headers = signed_headers(
        url,
        b"query=up",
        {"Content-Type": "application/x-www-form-urlencoded"},
        signing_region(url, "eu-west-1"),
    )
    assert "/us-east-1/aps/aws4_request" in headers["Authorization"]
