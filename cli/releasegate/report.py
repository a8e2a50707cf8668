"""Everything releasegate prints. Progress goes to stderr as it happens; the result goes to
stdout, as text or (``--json``) as exactly one JSON object. Every secret an adapter reports
is masked in every line, whichever stream it goes to."""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any, TextIO

from .errors import ReleasegateError
from .pipeline import Result

MASK = "***"
HISTORY_ROW = "{revision:>4}  {tag:<16} {outcome:<12} {at:<21} {actor:<28} {note}"
HISTORY_HEADER = {
    "revision": "REV",
    "tag": "TAG",
    "outcome": "OUTCOME",
    "at": "WHEN",
    "actor": "BY",
    "note": "NOTE",
}


class Console:
    def __init__(self, as_json: bool = False, verbose: bool = False) -> None:
        self.as_json, self.verbose = as_json, verbose
        self._secrets: set[str] = set()

    # Progress, as the pipeline reports it.
    def stage(self, name: str, message: str, seconds: float) -> None:
        self._print(sys.stderr, f"✓ {name:<8} {message} ({seconds:.2f}s)")

    def detail(self, source: str, text: str) -> None:
        self._print(sys.stderr, f"  {source} | {text}")

    def warning(self, text: str) -> None:
        self._print(sys.stderr, f"! {text}")

    def secret(self, value: str) -> None:
        if value:
            self._secrets.add(value)

    # Outcomes.
    def result(self, result: Result) -> None:
        if self.as_json:
            self._print(sys.stdout, json.dumps(_result_dict(result, exit_code=0), sort_keys=True))
            return
        for row in result.releases:
            flag = "  (prerelease)" if row["prerelease"] else ""
            self._print(sys.stdout, f"{row['tag']:<24} {row['published_at'] or '':<22}{flag}")
        if result.history:
            self._print(sys.stdout, HISTORY_ROW.format(**HISTORY_HEADER))
            for row in result.history:
                self._print(sys.stdout, HISTORY_ROW.format(**row))
        if result.command == "render":
            for path in result.files:
                self._print(sys.stdout, f"wrote {path}")
        if result.skaffold and result.outcome == "planned":
            self._print(sys.stdout, "would run: " + " ".join(result.skaffold))
        self._print(sys.stdout, result.message)

    def failure(self, error: ReleasegateError, command: str) -> None:
        for line in error.details:
            self._print(sys.stderr, f"  {line}")
        if self.as_json:
            payload: dict[str, Any] = {"command": command, "outcome": "failed", "exit_code": error.exit_code}
            payload["error"] = {"cause": error.cause, "hint": error.hint, "details": list(error.details)}
            self._print(sys.stdout, json.dumps(payload, sort_keys=True))
        # The one line that names the cause and the next step: always last on stderr.
        self._print(sys.stderr, f"error: {error.one_line()}")

    def _print(self, stream: TextIO, text: str) -> None:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        print(text, file=stream, flush=True)


def _result_dict(result: Result, exit_code: int) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["exit_code"] = exit_code
    return data
