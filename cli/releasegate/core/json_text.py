"""JSON that every parser reads (RFC 8259): no ``Infinity``, ``-Infinity`` or ``NaN`` tokens.

Python's ``json`` writes a float that is not finite as one of those tokens, which Node's
``JSON.parse``, Go's ``encoding/json`` and most webhook receivers refuse. Prometheus can answer
``+Inf`` (a ratio whose divisor is 0) and ``NaN``; wherever such a value reaches output it is
written as the string Prometheus uses for it. Every JSON releasegate writes goes through ``dumps``.

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_text(value: float) -> float | str:
    """``value``, or Prometheus' own word for it when it is not a finite number."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return value


def strict(value: Any) -> Any:
    """``value`` with every float that is not finite, at any depth, as its string."""
    if isinstance(value, float):
        return finite_or_text(value)
    if isinstance(value, dict):
        return {key: strict(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict(item) for item in value]
    return value


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` that cannot write a token outside JSON (``allow_nan`` off, as a guard)."""
    return json.dumps(strict(value), allow_nan=False, **options)
