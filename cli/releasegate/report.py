"""Everything releasegate prints. Progress goes to stderr as it happens; the result goes to
stdout, as text or (``--json``) as exactly one JSON object. Every secret an adapter reports
is masked in every line, whichever stream it goes to.

Layer: output, above run; the CLI prints through it.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Any, TextIO

from releasegate.core import json_text
from releasegate.core.errors import ReleasegateError
from releasegate.core.notify_config import NotifyTarget
from releasegate.github.actions import ActionsReport, run_url
from releasegate.run import Result

MASK = "***"
INTERRUPTED_BUDGET = 3.0  # seconds for a notification of an interrupted run (else webhooks' 10)
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
        self.actions = ActionsReport()
        self._started = time.monotonic()
        self._notify: tuple[NotifyTarget, ...] = ()

    # Progress, as the pipeline reports it.
    def stage(self, name: str, message: str, seconds: float) -> None:
        self._print(sys.stderr, f"✓ {name:<8} {message} ({seconds:.2f}s)")

    def detail(self, source: str, text: str) -> None:
        self._print(sys.stderr, f"  {source} | {text}")

    def warning(self, text: str) -> None:
        self._print(sys.stderr, f"! {text}")

    def secret(self, value: str) -> None:
        if value and value not in self._secrets:
            self._secrets.add(value)
            self.actions.mask(value)

    def notify_with(self, targets: tuple[NotifyTarget, ...]) -> None:
        """Where this command's end is announced; their URLs are masked from now on."""
        from releasegate.notify.webhooks import urls

        self._notify = targets
        for url in urls(targets):
            self.secret(url)

    # Outcomes.
    def result(self, result: Result) -> None:
        self._to_actions(result, "success" if result.outcome != "skipped" else "skipped", "")
        payload = _result_dict(result, exit_code=0)
        if self.as_json:
            self._print(sys.stdout, json_text.dumps(payload, sort_keys=True))
        else:
            self._print_text(result)
        self._announce(result, notify_event(result, 0), result.message, payload)

    def _print_text(self, result: Result) -> None:
        for row in result.releases:
            flag = "  (prerelease)" if row["prerelease"] else ""
            self._print(sys.stdout, f"{row['tag']:<24} {row['published_at'] or '':<22}{flag}")
        if result.history:
            clusters = "cluster" in result.history[0]  # several clusters: a column naming each
            column = "{cluster:<16} " if clusters else ""
            self._print(sys.stdout, (column + HISTORY_ROW).format(cluster="CLUSTER", **HISTORY_HEADER))
            for row in result.history:
                self._print(sys.stdout, (column + HISTORY_ROW).format(**row))
        if result.command == "render":
            for path in result.files:
                self._print(sys.stdout, f"wrote {path}")
        if result.skaffold and result.outcome == "planned":
            self._print(sys.stdout, "would run: " + " ".join(result.skaffold))
        self._print(sys.stdout, result.message)

    def failure(self, error: ReleasegateError, command: str, result: Result | None = None) -> None:
        for line in error.details:
            self._print(sys.stderr, f"  {line}")
        self.actions.error(self._masked(error.one_line()))
        if result is not None:
            outcome = {4: "rolled-back", 130: "interrupted"}.get(error.exit_code, "failure")
            self._to_actions(result, outcome, error.one_line())
        aborted = result is not None and result.outcome == "aborted"
        payload: dict[str, Any] = {"command": command, "outcome": "aborted" if aborted else "failed",
                                   "exit_code": error.exit_code}  # fmt: skip
        payload["error"] = {"cause": error.cause, "hint": error.hint, "details": list(error.details)}
        if result is not None:
            payload.update(_strategy_fields(result))
            payload.update({"env": result.env, "tag": result.failed_tag or result.tag})
            if result.failed_tag:
                payload["restored"] = result.tag
            payload.update({k: v for k, v in (("freeze", result.freeze),
                                              ("freeze_override", result.freeze_override)) if v})  # fmt: skip
        if self.as_json:
            self._print(sys.stdout, json_text.dumps(payload, sort_keys=True))
        if result is not None:
            event = notify_event(result, error.exit_code)
            self._announce(result, event, error.one_line(), payload)
        # The one line that names the cause and the next step: always last on stderr.
        self._print(sys.stderr, f"error: {error.one_line()}")

    def _announce(self, result: Result, event: str | None, line: str, payload: dict[str, Any]) -> None:
        """Tell the team (``notify:``) how a deploy, rollback, promote or abort ended."""
        if event is None or not self._notify:
            return
        from releasegate.notify.webhooks import BUDGET_SECONDS, Notification, send

        masked = json.loads(self._masked(json_text.dumps(payload)))  # what --json would print
        tag = result.failed_tag or result.tag or ""  # a failure restored: the release that failed
        said = Notification(event, self._masked(line), result.env or "", tag, run_url(), masked)
        # An interrupted run must end within seconds of its last line: a shorter budget then.
        budget = INTERRUPTED_BUDGET if payload.get("exit_code") == 130 else BUDGET_SECONDS
        send(self._notify, said, self.warning, lambda text: self.detail("notify", text), budget)

    def _to_actions(self, result: Result, outcome: str, cause: str) -> None:
        if self.actions.enabled and result.command == "metrics" and not cause:
            self.actions.summary(metrics_summary(result))
        if not self.actions.enabled or result.command not in ("deploy", "rollback", "promote", "abort"):
            return
        values = {"tag": result.tag or "", "digest": result.digest or "", "namespace": result.namespace or "",
                  "outcome": outcome}  # fmt: skip
        self.actions.outputs(values)
        self.actions.summary(
            self._masked(step_summary(result, outcome, cause, time.monotonic() - self._started))
        )

    def _masked(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text

    def _print(self, stream: TextIO, text: str) -> None:
        # One write per line: several clusters' threads print at once.
        stream.write(self._masked(text) + "\n")
        stream.flush()


NOTIFIED_COMMANDS = ("deploy", "rollback", "promote", "abort", "recover")


def notify_event(result: Result, exit_code: int) -> str | None:
    """What a command's end is, in ``notify.on``'s words (None: nothing to tell)."""
    if result.command not in NOTIFIED_COMMANDS:
        return None
    if exit_code == 0:  # a recover that put a release back is a rollback; with nothing to do, silent
        return {"deployed": "deployed", "promoted": "deployed", "paused": "paused",
                "rolled-back": "rolled_back", "aborted": "aborted",
                "recovered": "rolled_back"}.get(result.outcome)  # fmt: skip
    if result.outcome == "aborted" or (exit_code == 4 and result.strategy == "canary"):
        return "aborted"  # a canary that failed is put back to stable: an abort
    return "rolled_back" if exit_code == 4 else "failed"


def step_summary(result: Result, outcome: str, cause: str, seconds: float) -> str:
    """The Markdown a deploy leaves on the GitHub Actions run page."""
    icon = {"success": "✅", "skipped": "⏭️", "rolled-back": "↩️"}.get(outcome, "❌")
    rows = [
        ("Environment", f"{result.env} (`{result.namespace}`)"),
        ("Tag", f"`{result.tag}`"),
        ("Digest", f"`{result.digest or '-'}`"),
        ("Pods ready", result.pods_ready or "-"),
        ("Duration", f"{seconds:.1f} s"),
        ("Outcome", f"{icon} {outcome}"),
    ]
    if cause:
        rows.append(("Cause", cause.replace("|", "\\|")))
    if url := run_url():
        rows.append(("Run", f"[{url}]({url})"))
    table = "\n".join(f"| {key} | {value} |" for key, value in rows)
    summary = (
        f"### releasegate {result.command}: {result.tag} → {result.env}\n\n| | |\n|---|---|\n{table}\n\n"
    )
    if result.smoke:
        checks = "\n".join(
            f"| {'✅' if c['passed'] else '❌'} {c['name']} | {c['status']} | {c['ms']} ms | {c['attempts']} |"  # noqa: E501
            for c in result.smoke
        )
        summary += f"| Smoke check | Status | Time | Tries |\n|---|---|---|---|\n{checks}\n\n"
    if result.compare:
        summary += _compare_table(result.compare)
    return summary + _pictures(result, outcome)


def metrics_summary(result: Result) -> str:
    """`metrics` in Actions: the four keys as a table, each with its DORA band."""
    frequency, lead = result.deployment_frequency or {}, result.lead_time_hours or {}
    failures, restore = result.change_failure_rate or {}, result.time_to_restore_hours or {}
    window = result.window or {}
    rate = failures.get("rate")
    rows = [
        ("Deployment frequency", f"{frequency.get('per_week')} / week ({frequency.get('verified')} verified)",
         frequency.get("band")),
        ("Lead time for changes", f"median {lead.get('median')} h, p90 {lead.get('p90')} h",
         lead.get("band")),
        ("Change failure rate", f"{rate:.0%} ({failures.get('failed')} of {failures.get('deploys')})"
         if rate is not None else "-", failures.get("band")),
        ("Time to restore", f"median {restore.get('median')} h", restore.get("band")),
    ]  # fmt: skip
    table = "\n".join(f"| {name} | {value} | {band or '-'} |" for name, value, band in rows)
    return (f"### releasegate metrics: {result.env}\n\n{window.get('covered_from')} → {window.get('to')}\n\n"
            f"| Key | Value | DORA band |\n|---|---|---|\n{table}\n\n")  # fmt: skip


def _compare_table(found: dict[str, Any]) -> str:
    p95 = found["p95_ms"]
    rows = [f"| Answers agreeing | {found['agreed']}/{found['requests']} ({found['agreement']:.0%}) |",
            f"| p95 serving / candidate | {p95['serving']} ms / {p95['candidate']} ms |"]  # fmt: skip
    for item in found["disagreements"][:3]:
        shown = f"serving `{_cell(item['serving'])}` · candidate `{_cell(item['candidate'])}`"
        rows.append(f"| Request {item['index']} differs | {shown} |")
    return "| Comparison | |\n|---|---|\n" + "\n".join(rows) + "\n\n"


def _cell(value: Any) -> str:
    return json_text.dumps(value, sort_keys=True)[:60].replace("|", "\\|").replace("`", "'")


def _pictures(result: Result, outcome: str) -> str:
    """The run drawn (Mermaid): its stages on a time line; a canary's weights and analysis."""
    from releasegate.core import pictures

    if result.clusters:  # several clusters: a row per cluster, not every cluster's every stage
        drawn = pictures.clusters_timeline(result.stages, result.clusters)
    else:
        drawn = pictures.stages_timeline(result.stages)
    if result.weights:
        drawn += pictures.canary_weights(
            result.weights, promoted=result.weight == 100 and outcome == "success"
        )
    maximum = next((e.get("max") for e in result.analysis if e.get("max") is not None), None)
    if maximum is not None:
        drawn += pictures.analysis_values(result.analysis, float(maximum))
    return drawn


def _result_dict(result: Result, exit_code: int) -> dict[str, Any]:
    data = dataclasses.asdict(result)
    data["exit_code"] = exit_code
    return data


def _strategy_fields(result: Result) -> dict[str, Any]:
    """What a failed result still says: its smoke checks, and where its strategy got to."""
    fields = {"smoke": result.smoke, "compare": result.compare, "analysis": result.analysis,
              "strategy": result.strategy, "slot": result.slot, "step": result.step,
              "weight": result.weight, "clusters": result.clusters}  # fmt: skip
    return {key: value for key, value in fields.items() if value not in (None, [])}
