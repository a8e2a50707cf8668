"""A paused release: ``promote`` goes on with it, ``abort`` discards it.

A strategy stops on purpose (blue/green's ``pause_before_switch``; canary approval steps) by
returning ``InService.paused``: the deploy records the release ``paused`` with its step and the
GitHub deployment's id, releases the lock and exits 0. While it waits, ``deploy`` and
``rollback`` are refused. ``promote`` continues from the recorded step through the same
``go_live`` path as a deploy (a failure restores what served before, exit 4); ``abort`` asks the
strategy to discard it, so what served before the deploy goes on serving, and exits 4 like every
way a release ends without going live while what served before serves. An ``abort`` while a
deploy holds the lock asks that deploy to abort instead (``abort_request.py``).

Layer: commands (above the strategies; the CLI calls them).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

from releasegate.commands.abort_request import abort_running
from releasegate.commands.pipeline import Attempt, go_live, outcome_of
from releasegate.core.config import Environment, Project
from releasegate.core.errors import BadInput, Refused, RolledBack
from releasegate.github.deployments import DeploymentRecord
from releasegate.kube.ledger import ABORTED, PENDING, Record, paused, serving, step_value
from releasegate.kube.lock import LockHeld
from releasegate.run import DeployOptions, Progress, Result, Run, describe
from releasegate.strategies import strategy_of


def promote(project: Project, env: Environment, options: DeployOptions, progress: Progress) -> Result:
    with _paused_release("promote", project, env, progress) as (run, waiting, previous):
        # Pending while it goes on: a promote killed past the runner's grace period is then
        # unfinished work that `releasegate recover` puts back, not a release still paused at a
        # step its traffic has already left.
        override = options.freeze_override
        overridden = override.text() if override else waiting.freeze_override
        promoting = run.ledger().mark(
            waiting, PENDING, f"promoting from {waiting.step}", freeze_override=overridden
        )
        attempt = Attempt(promoting, previous, _github(run, waiting))
        if override:
            run.result.freeze_override = override.as_json()
            attempt.github.status("in_progress", f"promoting {waiting.tag}; {override.text()}")
        go_live(run, attempt, options, lambda: strategy_of(run).promote(run, waiting, options.timeout))
    return outcome_of(run, waiting.tag)


def abort(project: Project, env: Environment, progress: Progress, timeout: float = 600.0) -> Result:
    """Discard the paused release; or, while a deploy holds the lock, ask it to abort."""
    try:
        _abort_paused(project, env, progress)
    except LockHeld as held:
        return abort_running(project, env, progress, held.holder, timeout)


def _abort_paused(project: Project, env: Environment, progress: Progress) -> NoReturn:
    with _paused_release("abort", project, env, progress) as (run, waiting, previous):
        run.must_end_now = True  # an operator's command: done once traffic is back where it was
        with run.stages.run("abort") as done:
            strategy_of(run).abort(run, waiting)
            where = f" from slot {waiting.slot}" if waiting.slot else ""
            done.append(f"discarded {waiting.tag}{where}")
        run.ledger().mark(waiting, ABORTED, "aborted by `releasegate abort`", step="")
        still = f"{previous.tag} keeps serving" if previous else "nothing else was serving"
        _github(run, waiting).status("inactive", f"aborted; {still}")
        run.result.outcome = "aborted"
        run.result.message = f"{waiting.tag} was aborted in {env.name}; {still}"
    # Exit 4, as every way a release ends without going live while what served before serves.
    aborted = RolledBack(run.result.message, f"deploy a fixed release to {env.name} when ready")
    aborted.result = run.result
    raise aborted


def compare(project: Project, env: Environment, progress: Progress) -> Result:
    """``compare:`` against a paused release (exit 4 when its answers disagree); changes nothing."""
    from releasegate.strategies.comparing import ComparisonFailed

    if env.compare is None:
        raise BadInput(f"{env.name} has no compare: section", f"add one to k8s/environments/{env.name}.yaml")
    with _paused_release("compare", project, env, progress) as (run, waiting, previous):
        try:
            strategy_of(run).compare(run)
        except ComparisonFailed as failed:
            disagreed = RolledBack(f"{waiting.tag} (paused at {waiting.step}): {failed.cause}", failed.hint)
            disagreed.result = run.result
            raise disagreed from failed
        run.result.outcome = "passed"
        serving_tag = previous.tag if previous else "the release serving"
        run.result.message = (
            f"{waiting.tag} agrees with {serving_tag} in {env.name}: {run.result.stages[-1]['message']}"
        )
    return run.result


@contextmanager
def _paused_release(
    command: str, project: Project, env: Environment, progress: Progress
) -> Iterator[tuple[Run, Record, Record | None]]:
    """Under the deploy lock: the paused release (refused when there is none) and the release
    that served before it."""
    run = Run.start(command, project, env, progress)
    with run.reporting_failures():
        run.check_cluster()
        with run.locked():
            records = run.ledger().records()
            waiting = _waiting(records, env, command)
            _report(run, waiting)
            yield run, waiting, serving(records)


def _waiting(records: list[Record], env: Environment, command: str) -> Record:
    found = paused(records)
    if found is None:
        raise Refused(
            f"nothing is paused in {env.name}: there is nothing to {command}",
            f"`releasegate status --env {env.name}` shows what serves",
        )
    return found


def _report(run: Run, waiting: Record) -> None:
    describe(run.result, waiting.tag, waiting.image)
    run.result.revision, run.result.slot = waiting.revision, waiting.slot or None
    run.result.step = step_value(waiting.step)


def _github(run: Run, waiting: Record) -> DeploymentRecord:
    github = DeploymentRecord(run.clients.releases, run.progress.warning)
    if run.clients.releases.has_token:
        github.resume(waiting.github_deployment)
    return github
