"""The ``compare:`` section of an environment file: the new model's answers compared with the
serving one's on the same requests, before the new one takes traffic (``comparison.py`` judges,
``kube/compare.py`` sends).

The requests file is read here, when the environment is loaded: a file that is missing, empty,
or has a line that is not JSON is exit 2 before anything talks to the cluster.

Layer: core (pure data and its validation).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from releasegate.core.config_reader import Reader
from releasegate.core.errors import BadInput

COMPARE_KEYS = (
    "requests_file",
    "method",
    "path",
    "field",
    "tolerance",
    "min_agreement",
    "max_latency_increase",
)
COMPARE_METHODS = ("POST", "PUT")
COMPARED_STRATEGIES = ("bluegreen", "canary")  # two Services side by side: preview/live, canary/stable


@dataclass(frozen=True)
class Compare:
    requests_file: str  # as written, relative to the project
    requests: tuple[Any, ...]  # one JSON request body per line, in order
    path: str = "/predict"
    method: str = "POST"
    field: str = ""  # dot path into the answer; '' compares the whole JSON answer
    tolerance: float = 0.0  # numbers agree within this absolute difference
    min_agreement: float = 1.0  # share of requests whose answers agree
    max_latency_increase: float | None = None  # candidate p95 <= serving p95 x (1 + this)


def read_compare(root: Path, reader: Reader, strategy: str) -> Compare | None:
    if "compare" not in reader.data:
        return None
    section = Reader(reader.path, reader.mapping("compare"), prefix="compare.")
    section.only(COMPARE_KEYS)
    if strategy not in COMPARED_STRATEGIES:
        raise BadInput(
            f"{reader.path}: compare needs strategy bluegreen or canary (it compares the release "
            "with the one serving, side by side, before traffic moves)",
            f"set strategy.type in {reader.path.name}, or remove compare",
        )
    relative = section.data.get("requests_file")
    if not isinstance(relative, str) or not relative:
        raise section.fail("requests_file", "a JSON Lines file relative to the project")
    path = section.data.get("path", "/predict")
    if not isinstance(path, str) or not path.startswith("/"):
        raise section.fail("path", "a path starting with /")
    method = str(section.data.get("method", "POST")).upper()
    if method not in COMPARE_METHODS:
        raise section.fail("method", " or ".join(COMPARE_METHODS))
    field = section.data.get("field", "")
    if not isinstance(field, str):
        raise section.fail("field", "a dot path such as prediction or output.scores")
    return Compare(
        requests_file=relative,
        requests=read_requests(root, relative, section),
        path=path,
        method=method,
        field=field,
        tolerance=_number(section, "tolerance", 0.0),
        min_agreement=_share(section, "min_agreement", 1.0),
        max_latency_increase=_number(section, "max_latency_increase", None),
    )


def read_requests(root: Path, relative: str, section: Reader) -> tuple[Any, ...]:
    """Every line's JSON body; BadInput naming the file (and the line) for anything else."""
    file = (root / relative).resolve()
    if not file.is_relative_to(root.resolve()):
        raise section.fail("requests_file", "a path inside the project")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(
            f"{section.path}: compare.requests_file {relative} cannot be read ({exc.__class__.__name__})",
            "add the file: one JSON request body per line",
        ) from exc
    requests = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue  # blank lines (a trailing newline) are not requests
        try:
            requests.append(json.loads(line))
        except ValueError as exc:
            raise BadInput(
                f"{relative} line {number} is not JSON ({exc.__class__.__name__}: {str(exc)[:60]})",
                "one JSON request body per line (JSON Lines); fix that line",
            ) from exc
    if not requests:
        raise BadInput(f"{relative} holds no requests", "add one JSON request body per line")
    return tuple(requests)


def _number(section: Reader, key: str, default: float | None) -> Any:
    value = section.data.get(key, default)
    if value is default:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise section.fail(key, "a number, 0 or more")
    return float(value)


def _share(section: Reader, key: str, default: float) -> float:
    value = _number(section, key, default)
    if value > 1:
        raise section.fail(key, "a share from 0 to 1 (0.95: 95 % of the answers agree)")
    return float(value)
