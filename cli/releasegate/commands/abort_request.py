"""``releasegate abort`` while a deploy holds the lock: in an incident, the abort must reach a
canary that is running (holding 50 % through a ten-minute pause), not queue behind it.

The request is recorded on the deploy lock (``kube/lock.py``: an annotation naming who asks and
the holder it is for). The running deploy checks for it at every check round (at most the
analysis ``interval`` apart, 10 s without) and aborts as on a failed check: traffic back on
stable, the canary taken down, exit 4 there, announced by it. This command waits (at most
``--timeout``) until the deploy has let go of the lock, then reads the ledger: exit 0 when what
served before serves again; 3 when the deploy went live before it saw the request (nothing was
aborted: ``rollback`` is the way back); 5 when the environment is not known-good.

Layer: commands (above the strategies; the CLI calls them).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from releasegate.core.errors import NeedsAttention, Refused
from releasegate.kube.ledger import DEPLOYED, PAUSED, PENDING, actor, now
from releasegate.kube.lock import holder_of, request_abort
from releasegate.run import Result, Run, describe

if TYPE_CHECKING:
    from releasegate.core.config import Environment, Project
    from releasegate.run import Progress

PROGRESS_EVERY = 5.0  # seconds between progress lines while the running deploy aborts


def abort_running(
    project: Project, env: Environment, progress: Progress, holder: str, timeout: float
) -> Result:
    run = Run.start("abort", project, env, progress)
    with run.reporting_failures():
        records = run.ledger().records()
        running = records[0] if records and records[0].outcome == PENDING else None
        if running is None:
            raise Refused(
                f"{holder} holds the {env.namespace} deploy lock, but no deploy is running there "
                "(a rollback or recover holds it)",
                f"wait for it to end, then `releasegate status --env {env.name}`",
            )
        describe(run.result, running.tag, running.image)
        name = f"releasegate-{project.app}"
        with run.stages.run("abort") as done:
            asked = request_abort(run.clients.cluster, env.namespace, name, f"{actor()} at {now()}")
            if asked is not None:
                run.progress.detail("abort", f"asked the deploy of {running.tag} ({asked}) to abort")
                _wait_for_release(run, name, asked, timeout)
            done.append(_outcome(run, running.revision, running.tag))
    run.result.outcome = "abort-requested"  # the aborted deploy announces it: one notification
    run.result.message = (
        f"{running.tag} was aborted in {env.name} by the deploy running it; {run.result.tag} serves again"
    )
    return run.result


def _wait_for_release(run: Run, name: str, holder: str, timeout: float) -> None:
    """Until ``holder`` no longer holds the lock (it let go: the abort is done, or it ended)."""
    started = last_said = time.monotonic()
    while holder_of(run.clients.cluster, run.env.namespace, name) == holder:
        waited = time.monotonic() - started
        if waited > timeout:
            raise NeedsAttention(
                f"the deploy holding the {run.env.namespace} lock did not act on the abort request within "
                f"{timeout:g} s ({holder})",
                f"a person must look (`releasegate status --env {run.env.name}`); the request stays",
            )
        if time.monotonic() - last_said >= PROGRESS_EVERY:
            run.progress.detail("abort", f"waiting for it to put back what served before ({waited:.0f} s)")
            last_said = time.monotonic()
        time.sleep(0.5)


def _outcome(run: Run, revision: int, tag: str) -> str:
    records = run.ledger().records()
    attempt = next((r for r in records if r.revision == revision), None)
    if attempt is not None and attempt.outcome in (DEPLOYED, PAUSED):
        went = "went live" if attempt.outcome == DEPLOYED else f"paused ({attempt.step})"
        next_step = (
            f"`releasegate rollback --env {run.env.name}` puts back the release before it"
            if attempt.outcome == DEPLOYED
            else f"`releasegate abort --env {run.env.name}` discards it now"
        )
        raise Refused(f"{tag} {went} before the running deploy saw the abort request", next_step)
    newest = records[0] if records else None
    if newest is None or newest.outcome != DEPLOYED or newest.revision < revision:
        raise NeedsAttention(
            f"the deploy of {tag} stopped, but {run.env.name} is not known-good",
            f"a person must look: `releasegate status --env {run.env.name}`",
        )
    run.result.revision = newest.revision
    run.result.failed_tag, run.result.tag = tag, newest.tag
    return f"the deploy of {tag} aborted: {newest.tag} serves again (revision {newest.revision})"
