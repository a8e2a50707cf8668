"""The comparison's verdict, pure: agreement on a field within a tolerance, p95 latencies, and
the error line naming the agreement, the threshold and the first disagreement."""

from __future__ import annotations

import json

import pytest

from releasegate.core.compare_config import Compare
from releasegate.core.comparison import Answer, judge, p95, problem, same

COMPARE = Compare(requests_file="k8s/smoke/compare-requests.jsonl", requests=({},), field="prediction")


def answer(value: object, status: int = 200, ms: float = 10.0) -> Answer:
    return Answer(status, json.dumps(value).encode(), ms)


@pytest.mark.parametrize(
    ("left", "right", "tolerance", "agree"),
    [
        (1.0, 1.0, 0, True),
        (1.0, 1.004, 0.01, True),
        (1.0, 1.02, 0.01, False),
        (0.3, 0.2 + 0.1, 0, True),  # floats: equal within rounding
        ([1, 2], [1.001, 2], 0.01, True),
        ([1, 2], [1, 2, 3], 0.01, False),
        ({"a": 1, "b": "x"}, {"a": 1.0, "b": "x"}, 0, True),
        ({"a": 1}, {"a": 1, "b": 2}, 0, False),
        ("cat", "cat", 0, True),
        (True, 1, 0, False),  # a boolean is not the number 1
        (None, 0, 0, False),
    ],
)
def test_two_values_agree_on_numbers_within_the_tolerance(
    left: object, right: object, tolerance: float, agree: bool
) -> None:
    assert same(left, right, tolerance) is agree


def test_agreement_counts_the_field_and_shows_the_first_disagreements() -> None:
    pairs = [
        (answer({"prediction": 1, "version": "1.0"}), answer({"prediction": 1, "version": "1.1"})),
        (answer({"prediction": 2}), answer({"prediction": 3})),
        (answer({"prediction": 2}), answer({"detail": "boom"}, status=500)),
        (answer({"prediction": 2}), answer({"other": 2})),
        (answer({"e": 1}, status=422), answer({"e": 1}, status=422)),  # the same refusal: agrees
    ]
    outcome = judge(COMPARE, pairs)
    assert (outcome.requests, outcome.agreed) == (5, 2)
    assert outcome.as_dict()["agreement"] == 0.4
    assert outcome.disagreements == [
        {"index": 1, "serving": 2, "candidate": 3},
        {"index": 2, "serving": 2, "candidate": {"status": 500, "body": '{"detail": "boom"}'}},
        {"index": 3, "serving": 2, "candidate": {"missing": "prediction"}},
    ]
    line = problem(COMPARE, outcome)
    assert line.startswith("agreement 0.40 (2 of 5 answers) is below min_agreement 1")
    assert (
        "first disagreement: request 1 (line 2 of k8s/smoke/compare-requests.jsonl): serving 2, candidate 3"
        in line
    )


def test_only_five_disagreements_are_kept() -> None:
    outcome = judge(COMPARE, [(answer({"prediction": n}), answer({"prediction": -n - 1})) for n in range(9)])
    assert [d["index"] for d in outcome.disagreements] == [0, 1, 2, 3, 4] and outcome.agreed == 0


def test_p95_is_the_nearest_rank() -> None:
    assert p95([]) == 0.0
    assert p95([5.0]) == 5.0
    assert p95([float(n) for n in range(1, 101)]) == 95.0
    assert p95([float(n) for n in range(1, 21)]) == 19.0


def test_a_slower_candidate_fails_only_beyond_max_latency_increase() -> None:
    limited = Compare(requests_file="r.jsonl", requests=({},), max_latency_increase=0.2)
    pairs = [(answer(1, ms=100), answer(1, ms=115)) for _ in range(20)]
    assert problem(limited, judge(limited, pairs)) == ""
    slower = [(answer(1, ms=100), answer(1, ms=130)) for _ in range(20)]
    line = problem(limited, judge(limited, slower))
    assert (
        line
        == "the candidate's p95 130.0 ms is 30% above the serving one's 100.0 ms (max_latency_increase 0.2)"
    )
    unlimited = Compare(requests_file="r.jsonl", requests=({},))
    assert problem(unlimited, judge(unlimited, slower)) == ""  # without the key, latency is only reported


def test_min_agreement_is_a_share() -> None:
    lenient = Compare(requests_file="r.jsonl", requests=({},), min_agreement=0.75)
    pairs = [(answer(1), answer(1))] * 3 + [(answer(1), answer(2))]
    assert problem(lenient, judge(lenient, pairs)) == ""
    assert "agreement 0.67" in problem(lenient, judge(lenient, pairs[1:]))


def api_server(code: int, reason: str, message: str) -> Answer:
    """What kube-apiserver writes itself (errors.NewServiceUnavailable and friends): a Status."""
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip
    return Answer(code, json.dumps(body).encode(), 3.0)


UNREACHABLE_503 = api_server(
    503, "ServiceUnavailable", "error trying to reach service: dial tcp 10.0.1.7:8000: i/o timeout"
)
NO_ENDPOINTS_503 = api_server(503, "ServiceUnavailable", 'no endpoints available for service "model-api"')


def test_the_api_servers_own_answers_never_agree_and_compare_nothing() -> None:
    outcome = judge(COMPARE, [(UNREACHABLE_503, UNREACHABLE_503)] * 20)
    assert (outcome.agreed, outcome.agreement) == (0, 0.0)
    assert outcome.nothing_compared is not None and outcome.nothing_compared.cause == "unreachable"
    assert outcome.disagreements[0]["serving"] == {
        "status": 503,
        "api_server": "error trying to reach service: dial tcp 10.0.1.7:8000: i/o timeout",
    }
    assert problem(COMPARE, outcome).startswith("nothing was compared: error trying to reach service")


@pytest.mark.parametrize(
    ("pairs", "cause", "side"),
    [
        ([(answer({"prediction": 1}), NO_ENDPOINTS_503)] * 3, "no-endpoints", "candidate"),
        (
            [(api_server(504, "Timeout", "the proxy timed out"), answer({"prediction": 1}))],
            "api-server",
            "serving",
        ),
        (
            [(answer({"detail": "Not Found"}, 404), answer({"detail": "Not Found"}, 404))] * 4,
            "no-2xx",
            "both",
        ),
        ([(answer({"detail": "x"}, 401), answer({"prediction": 1}))], "no-2xx", "both"),
    ],
)
def test_a_comparison_without_one_2xx_from_both_models_names_why(
    pairs: list[tuple[Answer, Answer]], cause: str, side: str
) -> None:
    outcome = judge(COMPARE, pairs)
    found = outcome.nothing_compared
    assert found is not None and (found.cause, found.side) == (cause, side)
    assert problem(COMPARE, outcome).startswith("nothing was compared")


def test_one_request_both_models_answered_is_a_comparison_judged_by_its_agreement() -> None:
    pairs = [(UNREACHABLE_503, answer({"prediction": 1}))] * 3 + [(answer({"prediction": 1}),) * 2]
    outcome = judge(COMPARE, pairs)
    assert outcome.nothing_compared is None and outcome.agreed == 1
    assert problem(COMPARE, outcome).startswith("agreement 0.25 (1 of 4 answers)")


def test_an_app_answer_that_only_looks_like_a_status_is_the_apps() -> None:
    """kind: Status without apiVersion v1 is some app's own JSON, compared like any other."""
    mimic = answer({"kind": "Status", "prediction": 1})
    assert mimic.api_server_message is None and mimic.by_model
    assert judge(COMPARE, [(mimic, mimic)]).agreed == 1
