"""The four DORA keys of one environment, from its clusters' ledgers and the tags' commit times.

Pure: the ledger records (as plain dicts, from every cluster) and the commit time of each tag
go in, the figures come out, so every number can be checked by hand.

- A *deploy* is one release put in service: one ledger record, or, across several clusters,
  the records sharing one rollout id. Records that put an earlier release back (``restore``)
  are not deploys; they end a failure.
- **Deployment frequency**: deploys verified in the window, per day and per week.
- **Lead time for changes**: from the tag's commit to the deploy being verified (its last
  cluster), median and 90th percentile, in hours.
- **Change failure rate**: deploys that failed, were interrupted or aborted, or were rolled
  back (or put back) after going live, over every deploy that changed a cluster (one still
  running or paused is not counted yet).
- **Time to restore**: from a failure (a failed deploy's start; a rolled-back one's going live)
  to the next verified record in its clusters, median, in hours.

Bands: the performance levels of DORA's *Accelerate State of DevOps Report 2023* (elite,
high, medium, low), its ranges used as boundaries where they leave a gap or overlap: see
``BANDS``.

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from releasegate.core.errors import BadInput

# Ledger outcomes (kube/ledger.py; repeated here: core imports no adapter).
DEPLOYED, FAILED, INTERRUPTED, ABORTED = "deployed", "failed", "interrupted", "aborted"
FAILURES = (FAILED, INTERRUPTED, ABORTED)
CHANGED = (DEPLOYED, *FAILURES)  # pending and paused deploys have no outcome yet
# Restores that say the release before them was bad although it went live (Record.restore).
TAKEN_BACK = ("rollback", "recover", "put-back")
SINCE = re.compile(r"(\d+)([hdw])")
HOURS = {"h": 1, "d": 24, "w": 24 * 7}

# (band, bound): the first band whose bound the value is within. Frequency is "at least",
# the others "at most"/"under". DORA 2023: elite deploys on demand (several a day), high
# between daily and weekly, medium weekly to monthly; lead time under a day, a week, a month;
# change failure rate 5 %, 10 %, 15 %, above; failed-deployment recovery under an hour, a
# day, a week.
BANDS: dict[str, tuple[tuple[str, float], ...]] = {
    "deployment_frequency": (("elite", 1.0), ("high", 1 / 7), ("medium", 1 / 30)),  # per day, at least
    "lead_time_hours": (("elite", 24.0), ("high", 24.0 * 7), ("medium", 24.0 * 30)),  # median, under
    "change_failure_rate": (("elite", 0.05), ("high", 0.10), ("medium", 0.15)),  # at most
    "time_to_restore_hours": (("elite", 1.0), ("high", 24.0), ("medium", 24.0 * 7)),  # median, under
}


def since_hours(text: str) -> int:
    """``--since``: 30d, 12h, 2w."""
    match = SINCE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise BadInput(
            f"--since must be a length such as 30d, 12h or 2w, not {text[:20]!r}", "e.g. --since 30d"
        )
    return int(match.group(1)) * HOURS[match.group(2)]


@dataclass
class Deploy:
    """One release put in service, in one or several clusters."""

    tag: str
    started: datetime
    finished: datetime | None = None
    outcomes: dict[str, str] = field(default_factory=dict)  # cluster -> outcome
    taken_back: bool = False  # rolled back (or put back) after it went live
    restored: datetime | None = None  # the next verified record after its failure, in every cluster

    @property
    def changed(self) -> bool:
        return all(o in CHANGED for o in self.outcomes.values())

    @property
    def verified(self) -> bool:
        return all(o == DEPLOYED for o in self.outcomes.values())

    @property
    def failed(self) -> bool:
        return self.taken_back or any(o in FAILURES for o in self.outcomes.values())

    @property
    def failure_began(self) -> datetime:
        return (self.finished or self.started) if self.taken_back else self.started

    def as_json(self) -> dict[str, Any]:
        # A failure in one cluster names the deploy, before the clusters put back because of it.
        failure = next((o for o in self.outcomes.values() if o in FAILURES), None)
        others = next((o for o in self.outcomes.values() if o != DEPLOYED), DEPLOYED)
        outcome = failure or ("rolled-back" if self.taken_back else others)
        return {"tag": self.tag, "started": _iso(self.started), "finished": _iso(self.finished),
                "outcome": outcome, "clusters": sorted(self.outcomes)}  # fmt: skip


def deploys(ledgers: dict[str, list[dict[str, str]]]) -> list[Deploy]:
    """Every deploy in the clusters' ledgers (cluster -> records), oldest first."""
    found: dict[str, Deploy] = {}
    for cluster, records in ledgers.items():
        ordered = sorted(records, key=lambda r: int(r["revision"]))
        for index, record in enumerate(ordered):
            if record.get("restore"):
                continue
            key = record.get("rollout") or f"{cluster}#{record['revision']}"
            deploy = found.setdefault(key, Deploy(tag=record["tag"], started=_when(record["at"])))
            deploy.started = min(deploy.started, _when(record["at"]))
            deploy.outcomes[cluster] = record["outcome"]
            if record["outcome"] in CHANGED and record.get("finished"):
                done = _when(record["finished"])
                deploy.finished = max(deploy.finished or done, done)
            later = ordered[index + 1 :]
            if record["outcome"] == DEPLOYED and later and later[0].get("restore") in TAKEN_BACK:
                deploy.taken_back = True
            _note_restore(deploy, record, later)
    return sorted(found.values(), key=lambda d: d.started)


def _note_restore(deploy: Deploy, record: dict[str, str], later: list[dict[str, str]]) -> None:
    """When service was back after this record's failure: the next verified record's time (an
    aborted release: the abort itself, which put back what served before)."""
    if record["outcome"] == ABORTED and record.get("finished"):
        back: dict[str, str] | None = record
    else:
        back = next((r for r in later if r["outcome"] == DEPLOYED and r.get("finished")), None)
    if back is not None:
        when = _when(back["finished"])
        deploy.restored = max(deploy.restored or when, when)


@dataclass(frozen=True)
class Metrics:
    window_from: datetime
    window_to: datetime
    covered_from: datetime  # where the ledgers' records begin, when later than window_from
    deploys: list[Deploy]
    commit_times: dict[str, datetime]

    def as_json(self) -> dict[str, Any]:
        return {
            "deployment_frequency": self.frequency(),
            "lead_time_hours": self.lead_time(),
            "change_failure_rate": self.failure_rate(),
            "time_to_restore_hours": self.time_to_restore(),
            "window": {
                "from": _iso(self.window_from),
                "to": _iso(self.window_to),
                "covered_from": _iso(self.covered_from),
            },
            "deploys": [d.as_json() for d in self.deploys],
        }

    @property
    def days(self) -> float:
        return (self.window_to - self.covered_from) / timedelta(days=1)

    def frequency(self) -> dict[str, Any]:
        count = sum(1 for d in self.deploys if d.verified)
        per_day = count / self.days if self.days > 0 else 0.0
        return {"verified": count, "per_day": round(per_day, 3), "per_week": round(per_day * 7, 3),
                "band": band("deployment_frequency", per_day, at_least=True) if count else None}  # fmt: skip

    def lead_time(self) -> dict[str, Any]:
        hours = [
            (d.finished - self.commit_times[d.tag]) / timedelta(hours=1)
            for d in self.deploys
            if d.verified and d.finished is not None and d.tag in self.commit_times
        ]
        unknown = sum(1 for d in self.deploys if d.verified and d.tag not in self.commit_times)
        median = _median(hours)
        return {"median": median, "p90": _p90(hours), "measured": len(hours), "unknown_commit": unknown,
                "band": band("lead_time_hours", median) if median is not None else None}  # fmt: skip

    def failure_rate(self) -> dict[str, Any]:
        changed = [d for d in self.deploys if d.changed]
        failed = sum(1 for d in changed if d.failed)
        rate = round(failed / len(changed), 4) if changed else None
        return {"rate": rate, "failed": failed, "deploys": len(changed),
                "band": band("change_failure_rate", rate) if rate is not None else None}  # fmt: skip

    def time_to_restore(self) -> dict[str, Any]:
        failed = [d for d in self.deploys if d.changed and d.failed]
        hours = [(d.restored - d.failure_began) / timedelta(hours=1) for d in failed if d.restored]
        median = _median(hours)
        return {"median": median, "restored": len(hours), "not_restored": len(failed) - len(hours),
                "band": band("time_to_restore_hours", median) if median is not None else None}  # fmt: skip


def measure(
    ledgers: dict[str, list[dict[str, str]]],
    commit_times: dict[str, datetime],
    window_from: datetime,
    window_to: datetime,
    full: Iterable[str] = (),
) -> Metrics:
    """The figures for deploys started in [window_from, window_to). ``full``: the clusters whose
    ledger holds as many records as it keeps (older ones were dropped): the figures then begin
    where the latest of their oldest records does."""
    covered = window_from
    for cluster in full:
        oldest = min((_when(r["at"]) for r in ledgers[cluster]), default=window_from)
        covered = max(covered, oldest)
    chosen = [d for d in deploys(ledgers) if covered <= d.started < window_to]
    return Metrics(window_from, window_to, covered, chosen, commit_times)


def band(key: str, value: float, at_least: bool = False) -> str:
    for name, bound in BANDS[key]:
        if (
            (value >= bound)
            if at_least
            else (value <= bound if key == "change_failure_rate" else value < bound)
        ):
            return name
    return "low"


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _p90(values: list[float]) -> float | None:
    """The nearest-rank 90th percentile: a value that occurred, at least 90 % at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-9 * len(ordered) // 10))  # ceil(0.9 n)
    return round(ordered[rank - 1], 2)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None
