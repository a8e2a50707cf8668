"""Judge a comparison: the serving model's and the candidate's answers to the same requests.

Two answers agree when both have the same status and, for a 2xx, the compared part (``field``,
a dot path; the whole JSON answer without one) is equal: numbers within ``tolerance``, lists
item by item, objects key by key. A 2xx that is not JSON, or lacks the field, agrees with
nothing. Latency is each side's 95th percentile (nearest rank) of the time each request took
through the API server's proxy.

Only what the models answered is compared. When the API server cannot hand a request to a pod
(no Ready endpoint, the pods unreachable, a proxy timeout) it answers itself, with its own
``Status`` object, whose text is the same for every request: such an answer is no answer and
agrees with nothing. Two equal refusals from the app (the same 4xx) agree, but a comparison in
which no request got a 2xx from both models compared nothing, and fails whatever the agreement.

Layer: core (pure logic; tested without a server).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from releasegate.core.compare_config import Compare

SHOWN_DISAGREEMENTS = 5
SHOWN_CHARS = 80  # of each side of a disagreement, in the error line


@dataclass(frozen=True)
class Answer:
    status: int | None  # None: no answer (the connection failed)
    body: bytes
    ms: float

    @property
    def api_server_message(self) -> str | None:
        """The API server's own message when it answered instead of the app: its ``Status``
        object (``kind: Status``, ``apiVersion: v1``), which no model-serving app sends."""
        if self.status is None:
            return None
        try:
            answer = json.loads(self.body)
        except ValueError:
            return None
        if isinstance(answer, dict) and answer.get("kind") == "Status" and answer.get("apiVersion") == "v1":
            return str(answer.get("message") or answer.get("reason") or "")
        return None

    @property
    def by_model(self) -> bool:
        """The app behind the Service answered (not the API server, not a broken connection)."""
        return self.status is not None and self.api_server_message is None

    @property
    def model_2xx(self) -> bool:
        return self.by_model and self.status is not None and 200 <= self.status < 300

    def compared(self, path: str) -> tuple[bool, Any]:
        """(found, the part of the answer compared); a failed answer is shown by its status."""
        if (message := self.api_server_message) is not None:
            return False, {"status": self.status, "api_server": message[:SHOWN_CHARS]}
        if self.status is None or not 200 <= self.status < 300:
            return False, {"status": self.status, "body": self.body[:SHOWN_CHARS].decode(errors="replace")}
        try:
            value = json.loads(self.body)
        except ValueError:
            return False, {"status": self.status, "body": "(not JSON)"}
        for key in path.split(".") if path else ():
            if not isinstance(value, dict) or key not in value:
                return False, {"missing": path}
            value = value[key]
        return True, value


@dataclass(frozen=True)
class NothingCompared:
    """Why no request was answered 2xx by both models."""

    cause: str  # UNREACHABLE, NO_ENDPOINTS, API_SERVER or NO_2XX
    side: str  # serving, candidate (the first side the API server answered for), or both
    detail: str  # the API server's message, or what the models answered


UNREACHABLE, NO_ENDPOINTS, API_SERVER, NO_2XX = "unreachable", "no-endpoints", "api-server", "no-2xx"


@dataclass
class Outcome:
    requests: int
    agreed: int
    p95_serving: float
    p95_candidate: float
    disagreements: list[dict[str, Any]] = field(default_factory=list)  # the first few
    nothing_compared: NothingCompared | None = None  # set when no request got a 2xx from both

    @property
    def agreement(self) -> float:
        return self.agreed / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        """The JSON result's ``compare``."""
        return {
            "requests": self.requests,
            "agreed": self.agreed,
            "agreement": round(self.agreement, 4),
            "p95_ms": {"serving": round(self.p95_serving, 1), "candidate": round(self.p95_candidate, 1)},
            "disagreements": self.disagreements,
        }


def judge(compare: Compare, pairs: list[tuple[Answer, Answer]]) -> Outcome:
    """Pairs are (serving, candidate), one per request, in the requests file's order."""
    outcome = Outcome(
        requests=len(pairs),
        agreed=0,
        p95_serving=p95([s.ms for s, _ in pairs]),
        p95_candidate=p95([c.ms for _, c in pairs]),
    )
    for index, (serving, candidate) in enumerate(pairs):
        if answers_agree(serving, candidate, compare):
            outcome.agreed += 1
        elif len(outcome.disagreements) < SHOWN_DISAGREEMENTS:
            shown = {
                "serving": serving.compared(compare.field)[1],
                "candidate": candidate.compared(compare.field)[1],
            }
            outcome.disagreements.append({"index": index, **shown})
    if not any(s.model_2xx and c.model_2xx for s, c in pairs):
        outcome.nothing_compared = _why_nothing(pairs)
    return outcome


def _why_nothing(pairs: list[tuple[Answer, Answer]]) -> NothingCompared:
    """The first answer the API server gave itself names the cause; otherwise what the models
    answered (every request 404: the path is wrong; 401: the app wants credentials)."""
    for serving, candidate in pairs:
        for side, answer in (("serving", serving), ("candidate", candidate)):
            if (message := answer.api_server_message) is not None:
                if "error trying to reach service" in message:
                    return NothingCompared(UNREACHABLE, side, message)
                if "no endpoints available" in message:
                    return NothingCompared(NO_ENDPOINTS, side, message)
                return NothingCompared(API_SERVER, side, f"{answer.status} {message}")
    statuses = {a.status for pair in pairs for a in pair}
    if len(statuses) == 1:
        (only,) = statuses
        answered = "no answer (the connection failed)" if only is None else f"answered {only}"
        return NothingCompared(NO_2XX, "both", f"every request was {answered} by both")
    twos = [sum(a.model_2xx for a in side) for side in zip(*pairs, strict=True)]
    return NothingCompared(
        NO_2XX, "both", f"{twos[0]} answered 2xx by the serving one, {twos[1]} by the candidate, none by both"
    )


def answers_agree(serving: Answer, candidate: Answer, compare: Compare) -> bool:
    if not (serving.by_model and candidate.by_model) or serving.status != candidate.status:
        return False
    found_serving, left = serving.compared(compare.field)
    found_candidate, right = candidate.compared(compare.field)
    if not (found_serving and found_candidate):
        # two equal refusals (the same 4xx to a bad sample) are the same answer
        return serving.status is not None and not 200 <= serving.status < 300 and left == right
    return same(left, right, compare.tolerance)


def same(left: Any, right: Any, tolerance: float) -> bool:
    if _number(left) and _number(right):
        return bool(abs(left - right) <= tolerance + 1e-12)  # 1e-12: 0.3 - 0.2 is not 0.1 in floats
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            same(a, b, tolerance) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same(left[k], right[k], tolerance) for k in left)
    return bool(left == right) and type(left) is type(right)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]


def problem(compare: Compare, outcome: Outcome) -> str:
    """Why the comparison fails the release ('' when it passes). A comparison that compared
    nothing is ``outcome.nothing_compared``, which the caller words (it knows the Services)."""
    if outcome.nothing_compared is not None:
        return f"nothing was compared: {outcome.nothing_compared.detail}"
    if outcome.agreement < compare.min_agreement:
        first = outcome.disagreements[0]
        return (
            f"agreement {outcome.agreement:.2f} ({outcome.agreed} of {outcome.requests} answers) is below "
            f"min_agreement {compare.min_agreement:g}; first disagreement: request {first['index']} "
            f"(line {first['index'] + 1} of {compare.requests_file}): serving {_shown(first['serving'])}, "
            f"candidate {_shown(first['candidate'])}"
        )
    limit = compare.max_latency_increase
    if limit is not None and outcome.p95_candidate > outcome.p95_serving * (1 + limit):
        increase = outcome.p95_candidate / max(outcome.p95_serving, 1e-9) - 1
        return (
            f"the candidate's p95 {outcome.p95_candidate:.1f} ms is {increase:.0%} above the serving "
            f"one's {outcome.p95_serving:.1f} ms (max_latency_increase {limit:g})"
        )
    return ""


def summary(outcome: Outcome) -> str:
    return (
        f"{outcome.agreed}/{outcome.requests} answers agree ({outcome.agreement:.0%}); p95 "
        f"{outcome.p95_serving:.1f} ms serving, {outcome.p95_candidate:.1f} ms candidate"
    )


def _shown(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"
