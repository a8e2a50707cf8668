"""The verdict on one Prometheus answer: within max passes; above it, an error, no data or
something that is not the API's JSON is a failed check, never a pass."""

from __future__ import annotations

import json

import pytest

from releasegate.analysis import judge
from releasegate.config import Prometheus

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
    ("status", "body", "words"),
    [
        (200, answer("0.002", "0.3"), "analysis 0.3 is above max 0.01"),  # the worst series counts
        (200, answer("NaN"), "is above max"),  # 0/0: no requests at all is not a pass
        (200, answer(), "returned no data"),
        (400, b'{"status":"error","errorType":"bad_data","error":"parse error"}', "failed: 400 parse error"),
        (503, b"<html>Service Unavailable</html>", "not JSON"),
        (403, b'{"message":"Missing Authentication Token"}', "failed: 403"),
    ],
)
def test_anything_else_is_a_failed_check(status: int, body: bytes, words: str) -> None:
    verdict = judge(LIMIT, status, body)
    assert not verdict.passed and words in verdict.problem
