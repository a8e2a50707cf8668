"""Every JSON releasegate writes is RFC 8259 JSON: a value that is not finite is a string."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from releasegate.core.json_text import dumps, finite_or_text


@pytest.mark.parametrize(
    ("value", "written"), [(math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN"), (0.5, 0.5)]
)
def test_a_number_that_is_not_finite_is_written_as_prometheus_writes_it(
    value: float, written: object
) -> None:
    assert finite_or_text(value) == written


def refuse(token: str) -> object:
    raise ValueError(token)


@given(st.recursive(st.floats() | st.integers() | st.text() | st.none(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))  # fmt: skip
def test_whatever_it_holds_the_output_is_strict_json(value: object) -> None:
    json.loads(dumps(value), parse_constant=refuse)  # refuses Infinity, -Infinity and NaN tokens
