"""`releasegate metrics`: the four DORA keys of one environment, from the ledger of each of its
clusters and, for the lead time, the release tags' commits on GitHub (one GraphQL request per
100 tags). Reads only: nothing is changed, no lock is taken.

Layer: commands.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta

from releasegate.core import metrics
from releasegate.core.clusters_config import require_contexts
from releasegate.core.config import Environment, Project
from releasegate.github.commits import commit_times
from releasegate.kube.ledger import KEEP
from releasegate.run import Progress, Result, Run


def measure(project: Project, env: Environment, since: str, progress: Progress) -> Result:
    hours = metrics.since_hours(since)  # bad input is exit 2 before any request
    if env.clusters:
        require_contexts(project.environments_dir / f"{env.name}.yaml", env.clusters)
    now = datetime.now(UTC).replace(microsecond=0)
    runs = {t.name: Run.start("metrics", project, env.for_cluster(t), progress) for t in env.clusters} or {
        env.name: Run.start("metrics", project, env, progress)
    }
    first = next(iter(runs.values()))
    with first.stages.run("ledger") as done:
        ledgers = {name: [_plain(asdict(r)) for r in run.ledger().records()] for name, run in runs.items()}
        done.append(f"{sum(map(len, ledgers.values()))} records from {', '.join(ledgers)}")
    window_from = now - timedelta(hours=hours)
    full = [name for name, records in ledgers.items() if len(records) >= KEEP]
    found = metrics.measure(ledgers, {}, window_from, now, full)
    with first.stages.run("commits") as done:
        times = _commit_times(first, sorted({d.tag for d in found.deploys if d.verified}), progress)
        done.append(f"{len(times)} tag commits from GitHub")
    found = replace(found, commit_times=times)  # the deploys counted stay as they are
    result = first.result
    figures = found.as_json()
    for key in METRICS_FIELDS:
        setattr(result, key, figures[key])
    result.outcome, result.message = "measured", _summary(env, since, found)
    if found.covered_from > window_from:
        progress.warning(
            f"the ledger reaches back only to {figures['window']['covered_from']} (it keeps the last {KEEP} "
            f"records per cluster): the figures cover that, not the whole --since {since}"
        )
    return result


METRICS_FIELDS = ("deployment_frequency", "lead_time_hours", "change_failure_rate", "time_to_restore_hours",
                  "window", "deploys")  # fmt: skip


def _plain(record: dict[str, object]) -> dict[str, str]:
    return {key: str(value) for key, value in record.items()}


def _commit_times(run: Run, tags: list[str], progress: Progress) -> dict[str, datetime]:
    source = run.clients.releases
    if not tags:
        return {}
    if not source.has_token:
        progress.warning("lead time unknown: GitHub's GraphQL API needs GITHUB_TOKEN (contents: read)")
        return {}
    return commit_times(source, tags)


def _summary(env: Environment, since: str, found: metrics.Metrics) -> str:
    frequency, failures = found.frequency(), found.failure_rate()
    lead, restore = found.lead_time(), found.time_to_restore()
    parts = [
        f"{frequency['verified']} verified deploys "
        f"({frequency['per_week']}/week, {frequency['band'] or '-'})",
        f"lead time median {_hours(lead['median'])} ({lead['band'] or '-'})",
        f"change failure rate {_percent(failures['rate'])} ({failures['band'] or '-'})",
        f"time to restore median {_hours(restore['median'])} ({restore['band'] or '-'})",
    ]
    return f"{env.name}, last {since}: " + "; ".join(parts)


def _hours(value: float | None) -> str:
    return "-" if value is None else f"{value} h"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
