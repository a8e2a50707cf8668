"""Putting a known release back, and saying what is serving.

``recover`` runs when a deploy fails or is interrupted: it redeploys the last good release
from the ledger (its exact image, rendered again), verifies it the same way, records it, and
raises the exit the contract asks for: 4 restored, 5 not known-good, 130 interrupted.
``rollback``, ``status`` and ``history`` are the commands that read the same ledger.

Layer: commands (above the strategies; the CLI calls them).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from typing import Any, NoReturn

from releasegate.commands import pruning
from releasegate.core.config import Environment, Project
from releasegate.core.errors import Interrupted, NeedsAttention, Refused, RolledBack, needs_attention
from releasegate.core.rollout import is_ready
from releasegate.core.version import parse_tag
from releasegate.kube.ledger import (
    AFTER_FAILURE,
    DEPLOYED,
    FINISHED,
    INTERRUPTED,
    PENDING,
    RECOVER,
    ROLLBACK,
    Record,
    paused,
    serving,
    step_value,
)
from releasegate.run import DeployOptions, Progress, Result, Run, describe
from releasegate.strategies import draining, strategy_of


def recover(
    run: Run, failure: NeedsAttention | None, current: Record | None, failed: Record, options: DeployOptions
) -> NoReturn:
    """After ``failed`` did not go live (``failure`` None: interrupted), restore ``current``."""
    env = run.env.name
    cause = failure.cause if failure else f"interrupted while deploying {failed.tag}"
    details = failure.details if failure else ()
    look = f"a person must look: `releasegate status --env {env}`"
    if not options.rollback:
        left = f"left as it is (--no-rollback); inspect it, then `releasegate rollback --env {env}`"
        raise (Interrupted if failure is None else NeedsAttention)(cause, left, details)
    if current is None:
        raise (Interrupted if failure is None else NeedsAttention)(
            f"{cause}; there is no earlier good release to restore", look, details
        )
    run.progress.warning(f"restoring {current.tag}, the last good release of {env}")
    run.result.failed_tag = failed.tag
    run.must_end_now = failure is None  # interrupted: the runner kills the run seconds later
    try:
        with interrupts_deferred(run.progress) if failure is None else nullcontext():
            restore(
                run,
                current,
                options.timeout,
                f"restored after revision {failed.revision} ({failed.tag}) failed",
                AFTER_FAILURE,
            )
    except Exception as error:  # whatever stopped the restore, the cluster is not known-good
        restore_failure = needs_attention(error)
        raise NeedsAttention(
            f"{cause}, and restoring {current.tag} failed too: {restore_failure.cause}",
            look,
            details + restore_failure.details,
        ) from error
    if failure is None:
        restored = f"interrupted while deploying {failed.tag}; {current.tag} was restored and verified"
        raise Interrupted(restored, "deploy again when ready")
    next_step = failure.after_restore or f"fix {failed.tag}, then deploy again"
    raise RolledBack(f"{cause}; {current.tag} was restored and verified", next_step, details)


def restore(run: Run, record: Record, timeout: float, note: str, why: str) -> Record:
    """Make the exact image of ``record`` serve again (the strategy's way: a redeploy, or a
    switch back to a slot that still runs it), verified, and add it to the ledger (``why``: one
    of RESTORES, for `metrics`)."""
    describe(run.result, record.tag, record.image)
    placed = strategy_of(run).put_back(run, record, timeout)
    run.result.pods_ready, run.result.slot = placed.pods_ready, placed.slot or None
    if not run.must_end_now:  # what the failed release added goes (an interrupted run: the next one)
        keep = pruning.wanted(
            run, record.tag, record.image, run.recorded_env(record), also=record.strategy or "rolling"
        )
        pruning.prune(run, keep)
    return run.ledger().append(
        tag=record.tag,
        image=record.image,
        commit=record.commit,
        outcome=DEPLOYED,
        manifest_hash=record.manifest_hash,  # the same release, as it was rendered then
        note=note,
        strategy=strategy_of(run).name,
        slot=placed.slot,
        values=record.values,
        restore=why,
    )


def rollback(
    project: Project, env: Environment, to_tag: str | None, options: DeployOptions, progress: Progress
) -> Result:
    if to_tag is not None:
        parse_tag(to_tag, project.tag_prefix)  # bad input is exit 2 before anything else
    run = Run.start("rollback", project, env, progress)
    run.must_end_now = True  # an operator's command in an incident: done once traffic is back
    with run.reporting_failures():
        run.check_cluster()
        _rollback_target(run.ledger().records(), to_tag, env)  # refuse before taking the lock
        with run.locked():
            draining.carry_out_pending(run, wait=False)  # only what is due: nothing to wait for
            records = run.ledger().records()
            if (waiting := paused(records)) is not None:
                raise Refused(
                    f"{waiting.tag} is paused in {env.name} ({waiting.step})",
                    f"`releasegate abort --env {env.name}` puts back what served before it",
                )
            target = _rollback_target(records, to_tag, env)  # again: it may have moved
            record = restore(
                run,
                target,
                options.timeout,
                f"rollback to {target.tag} (revision {target.revision})",
                ROLLBACK,
            )
        run.result.revision = record.revision
        run.result.outcome = "rolled-back"
        run.result.message = f"{target.tag} is live in {env.name} again ({run.result.pods_ready} pods Ready)"
        return run.result


def recover_unfinished(
    project: Project, env: Environment, options: DeployOptions, progress: Progress
) -> Result:
    """Finish what a deploy that was killed left behind (a cancelled Actions run kills the
    step's processes ~10 s after signalling it): when the newest ledger record did not end
    deployed, put the last good release back. Nothing to do otherwise."""
    run = Run.start("recover", project, env, progress)
    with run.reporting_failures():
        # Nothing unfinished: done, without needing skaffold (the run may have been cancelled
        # before it was even installed).
        if _unfinished(run.ledger().records()) is None and not draining.pending(run).read():
            return _nothing_to_recover(run)
        run.check_cluster()
        with run.locked(take_over_this_run=True):
            draining.carry_out_pending(run, wait=True)  # what the killed run left draining
            records = run.ledger().records()  # again, under the lock: it may have finished
            unfinished, good = _unfinished(records), serving(records)
            if unfinished is None:
                return _nothing_to_recover(run)
            if good is None:
                raise NeedsAttention(
                    f"{unfinished.tag} did not finish in {env.name} and there is no earlier good release",
                    f"a person must look: `releasegate status --env {env.name}`",
                )
            if unfinished.outcome == PENDING:
                run.ledger().mark(
                    unfinished, INTERRUPTED, "the deploy was killed; put back by `releasegate recover`"
                )
            record = restore(run, good, options.timeout, f"recovered after revision {unfinished.revision} "
                             f"({unfinished.tag}) did not finish", RECOVER)  # fmt: skip
        run.result.revision = record.revision
        run.result.outcome = "recovered"
        run.result.failed_tag = unfinished.tag  # the notification names the release that did not finish
        run.result.message = (
            f"{unfinished.tag} did not finish; {good.tag} was restored and verified in {env.name} "
            f"({run.result.pods_ready} pods Ready)"
        )
        return run.result


def _nothing_to_recover(run: Run) -> Result:
    run.result.outcome = "nothing-to-recover"
    run.result.message = f"nothing to recover in {run.env.name}: the last deploy finished"
    return run.result


def _unfinished(records: list[Record]) -> Record | None:
    """The newest record when it did not end deployed, paused or aborted (restored releases
    are records too)."""
    return records[0] if records and records[0].outcome not in FINISHED else None


def _rollback_target(records: list[Record], to_tag: str | None, env: Environment) -> Record:
    good = [r for r in records if r.outcome == DEPLOYED]
    known = ", ".join(dict.fromkeys(r.tag for r in good)) or "none"
    if to_tag is not None:
        found = next((r for r in good if r.tag == to_tag), None)
        if found is None:
            raise Refused(
                f"{to_tag} is not a good release in the {env.name} ledger", f"good releases: {known}"
            )
        return found
    current = serving(records)
    earlier = next((r for r in good if current and r.image != current.image), None)
    if earlier is None:
        raise Refused(f"no earlier good release in the {env.name} ledger", f"good releases: {known}")
    return earlier


def status(project: Project, env: Environment, progress: Progress) -> Result:
    run = Run.start("status", project, env, progress)
    records = run.ledger().records()
    current = serving(records)
    now = strategy_of(run).serving(run)
    deployment, pods = now.deployment, now.pods
    result = run.result
    result.slot = now.slot or None
    result.outcome = "status"
    if current:
        describe(result, current.tag, current.image)
        result.revision = current.revision
    lines = [f"{env.name} ({env.namespace}): " + (f"{current.tag}, deployed {current.at} by {current.actor}"
                                                   if current else "no release recorded")]  # fmt: skip
    lines += strategy_of(run).status_lines(run)
    lines += draining.status_lines(run)
    if deployment is not None:
        live = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        ready = sum(1 for p in pods if is_ready(p) and _image(p) == live)
        result.pods_ready = f"{ready}/{deployment['spec'].get('replicas', 1)}"
        lines.append(f"pods Ready: {result.pods_ready} on {live}")
        if current and live != current.image:
            result.drift = f"the Deployment runs {live}, but the ledger says {current.tag} is {current.image}"
            lines.append(f"DRIFT: {result.drift}")
    if (waiting := paused(records)) is not None:
        result.step = step_value(waiting.step)
        lines.append(
            f"PAUSED: {waiting.tag} (revision {waiting.revision}) waits {waiting.step}"
            + (f" in slot {waiting.slot}" if waiting.slot else "")
            + f": `releasegate promote --env {env.name}` or `releasegate abort --env {env.name}`"
        )
    elif records and records[0].outcome != DEPLOYED:
        last = records[0]
        lines.append(
            f"last attempt: revision {last.revision}, {last.tag}: {last.outcome} {last.note}".rstrip()
        )
    result.message = "\n".join(lines)
    return result


HISTORY = 20  # records `history` shows: the ledger keeps more, for `metrics`


def history(project: Project, env: Environment, progress: Progress) -> Result:
    run = Run.start("history", project, env, progress)
    run.result.history = [asdict(r) for r in run.ledger().records()[:HISTORY]]
    run.result.outcome = "history"
    run.result.message = f"{len(run.result.history)} records in the {env.name} ledger (newest first)"
    return run.result


def _image(pod: dict[str, Any]) -> str:
    return str(pod["spec"]["containers"][0]["image"])


@contextmanager
def interrupts_deferred(progress: Progress) -> Iterator[None]:
    """While restoring after an interrupt, a second SIGINT/SIGTERM must not leave the cluster
    half-restored: say so and carry on. (A handler, not SIG_IGN, which children would inherit.)"""

    def wait(signum: int, frame: object) -> None:
        progress.warning("restoring the last good release; it will finish within --timeout")

    if threading.current_thread() is not threading.main_thread():
        yield  # a cluster's thread of a deploy in waves: the main thread defers them
        return
    previous = {s: signal.signal(s, wait) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
