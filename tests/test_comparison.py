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
