"""Metric analysis for a canary: one Prometheus instant query, compared with ``max``.

The query goes to ``/api/v1/query`` either at a URL (Amazon Managed Service for Prometheus
with ``sigv4: true``: each request signed with boto3's credentials for service ``aps``) or
through the API server's service proxy to an in-cluster Prometheus (the kube-context's own
credentials, nothing else to open).

Each evaluation has one of four verdicts. ``pass``: every sample at or below ``max``. ``fail``:
a sample above it (``+Inf`` included: a canary's errors over zero stable errors). ``no-data``:
an empty vector, or NaN or ``-Inf`` in any sample (Prometheus answers an empty vector for a
series with no samples, 0/0 is NaN for an idle canary, and ``-Inf`` measures nothing): a
canary that no metric describes has not been shown to be good, so it counts as a failure. ``error``: the
query itself failed (HTTP error, timeout, not a vector); errors are counted apart, because one
slow query says nothing about the canary (``error_limit``).

Layer: strategies (above run and the adapters, below the commands).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from releasegate.aws.sigv4 import signed_headers, signing_region
from releasegate.core.errors import NeedsAttention
from releasegate.core.json_text import finite_or_text
from releasegate.core.strategy_config import Prometheus
from releasegate.kube.api import Cluster

QUERY_PATH = "/api/v1/query"
TIMEOUT_SECONDS = 10
FORM = "application/x-www-form-urlencoded"


PASS, FAIL, NO_DATA, ERROR = "pass", "fail", "no-data", "error"


@dataclass(frozen=True)
class Verdict:
    value: float | None  # None: the query failed or found nothing
    problem: str  # "" when the value is within max
    kind: str = PASS  # pass, fail, no-data or error

    @property
    def passed(self) -> bool:
        return self.kind == PASS

    @property
    def failed(self) -> bool:
        """Above max or no data: counts against the step's failure_limit."""
        return self.kind in (FAIL, NO_DATA)

    def __str__(self) -> str:
        return self.problem or f"analysis {_shown(self.value)}"


class AnalysisFailed(NeedsAttention):
    pass


def evaluate(prometheus: Prometheus, cluster: Cluster, region: str) -> Verdict:
    """Run the query once and judge its answer against ``max``."""
    try:
        status, body = _ask(prometheus, cluster, region)
    except AnalysisFailed as failed:
        return Verdict(None, failed.cause, ERROR)
    except Exception as exc:  # a broken connection or a timeout is an error, like an error answer
        problem = f"the analysis query could not reach Prometheus ({exc.__class__.__name__})"
        return Verdict(None, problem, ERROR)
    return judge(prometheus, status, body)


def judge(prometheus: Prometheus, status: int, body: bytes) -> Verdict:
    """Pure: the verdict on one answer of the Prometheus HTTP API."""
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return Verdict(None, f"Prometheus answered {status} with something that is not JSON", ERROR)
    if status != 200 or not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error", "") if isinstance(answer, dict) else ""
        return Verdict(None, f"the analysis query failed: {status} {str(error)[:120]}".rstrip(), ERROR)
    values = _sample_values(answer.get("data") or {})
    if values is None:
        return Verdict(None, "the analysis query answered neither a vector nor a scalar", ERROR)
    if not values:
        return Verdict(None, "the analysis query returned no data (no series matched): not a pass", NO_DATA)
    if math.inf in values:  # above any max, whatever else the vector holds
        return Verdict(math.inf, f"analysis +Inf is above max {prometheus.max:g}", FAIL)
    if any(math.isnan(v) for v in values):  # e.g. 0/0: no requests reached the canary
        return Verdict(None, "the analysis query returned NaN (no requests to judge): not a pass", NO_DATA)
    if -math.inf in values:
        return Verdict(None, "the analysis query returned -Inf (nothing measured): not a pass", NO_DATA)
    worst = max(values)
    if worst > prometheus.max:
        return Verdict(worst, f"analysis {worst:g} is above max {prometheus.max:g}", FAIL)
    return Verdict(worst, "")


def _shown(value: float | None) -> str:
    return (
        "none" if value is None else str(finite_or_text(value)) if not math.isfinite(value) else f"{value:g}"
    )


def _sample_values(data: dict[str, Any]) -> list[float] | None:
    """Every sample of an instant vector (or the one scalar), as floats; None for anything else
    (a range query's matrix, a string), which the analysis cannot judge."""
    result = data.get("result")
    kind = data.get("resultType")
    try:
        if kind == "scalar" and isinstance(result, list):
            return [float(result[1])]
        if kind == "vector" and isinstance(result, list):
            return [float(sample["value"][1]) for sample in result]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return None


def _ask(prometheus: Prometheus, cluster: Cluster, region: str) -> tuple[int, bytes]:
    if prometheus.service is not None:
        namespace, _, rest = prometheus.service.partition("/")
        name, _, port = rest.partition(":")
        path = f"/api/v1/namespaces/{namespace}/services/{name}:{port}/proxy{QUERY_PATH}"
        return cluster.raw("GET", path, timeout=TIMEOUT_SECONDS, query=prometheus.query)
    form = urlencode({"query": prometheus.query}).encode()
    assert prometheus.url is not None
    url = prometheus.url.rstrip("/") + QUERY_PATH
    headers = {"Content-Type": FORM}
    if prometheus.sigv4:
        headers = signed_headers(url, form, headers, signing_region(url, region))
    # The URL is checked http(s) when the environment file is read (config.HTTP_URL).
    request = urllib.request.Request(url, data=form, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


@dataclass
class Evaluations:
    """The verdicts of one canary run, counted as ``failure_limit`` and ``error_limit`` say.

    Failures (above max, no data) count within a step; errors count in a row across the
    run, and any answer that is not an error ends the row. ``entries`` is the JSON result's
    ``analysis``: one entry per evaluation.
    """

    failure_limit: int
    error_limit: int
    entries: list[dict[str, Any]] = field(default_factory=list)
    errors_in_a_row: int = 0
    step: int = 0
    failed_in_step: int = 0
    passed_in_step: int = 0
    maximum: float | None = None  # the query's max, kept beside each value

    def begin(self, step: int) -> None:
        self.step, self.failed_in_step, self.passed_in_step = step, 0, 0

    def record(self, verdict: Verdict) -> str | None:
        """Count ``verdict``; the reason to abort, or None to go on."""
        at = datetime.now(UTC).isoformat(timespec="seconds")
        value = None if verdict.value is None else finite_or_text(verdict.value)  # +Inf: the string
        entry = {"step": self.step, "value": value, "verdict": verdict.kind, "at": at}
        self.entries.append({**entry, "max": self.maximum})
        if verdict.kind == ERROR:
            self.errors_in_a_row += 1
            if self.errors_in_a_row > self.error_limit:
                return f"{verdict.problem} ({self.errors_in_a_row} query errors in a row, error_limit {self.error_limit})"  # noqa: E501
            return None
        self.errors_in_a_row = 0
        if verdict.passed:
            self.passed_in_step += 1
            return None
        self.failed_in_step += 1
        if self.failed_in_step > self.failure_limit:
            limit = f" ({self.failed_in_step} failed evaluations, failure_limit {self.failure_limit})"
            return verdict.problem + (limit if self.failure_limit else "")
        return None

    def unproven(self) -> str | None:
        """Why the step that just ended is not shown good, or None: one evaluation must pass."""
        if self.passed_in_step:
            return None
        return f"no analysis evaluation passed in the step ({len(self._this_step())} evaluated, none a pass)"

    def _this_step(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["step"] == self.step]
