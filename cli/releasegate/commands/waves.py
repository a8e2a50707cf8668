"""One release across several clusters, in waves (``clusters:`` and ``waves:``).

Every cluster passes its pre-flight and has its deploy lock taken before any cluster changes
(all at once: N clusters cost about one pre-flight). Then the waves go in order, the clusters
of a wave in parallel (up to ``max_parallel``), each with the environment's whole pipeline and
strategy (``pipeline.go_live``, which restores the cluster it failed in). A failure stops the
run: no later wave starts, the failed wave's other clusters are put back, and with
``on_failure: rollback`` the earlier waves' too, last wave first.

Layer: commands (above the strategies; the CLI calls them).
"""

from __future__ import annotations

import time
import uuid
from contextlib import ExitStack, nullcontext
from functools import partial

from releasegate.commands.members import (
    DEPLOYED,
    FAILED,
    ROLLED_BACK,
    UNKNOWN,
    UNTOUCHED,
    ClusterProgress,
    Member,
    by_wave,
    each,
    summarised,
)
from releasegate.commands.pipeline import admit, begin, go_live, outcome_of
from releasegate.commands.preflight import preflight, promotion, validate
from releasegate.commands.recovery import interrupts_deferred, restore
from releasegate.core.clusters_config import ClusterTarget, require_contexts
from releasegate.core.config import Environment, Project
from releasegate.core.errors import Interrupted, NeedsAttention, ReleasegateError, RolledBack, needs_attention
from releasegate.kube.ledger import PUT_BACK, serving
from releasegate.run import DeployOptions, Progress, Result, Run
from releasegate.strategies import draining, strategy_of

# Seconds an image may still be replicating to a cluster's region before the deploy is refused.
REPLICATION_SECONDS = 120.0


def deploy_in_waves(
    project: Project, env: Environment, tag_text: str, options: DeployOptions, progress: Progress
) -> Result:
    require_contexts(project.environments_dir / f"{env.name}.yaml", env.clusters)
    result = Result(command="deploy", outcome="failed", env=env.name, namespace=env.namespace, tag=tag_text)
    result.strategy = env.strategy.type
    result.freeze_override = options.freeze_override.as_json() if options.freeze_override else None
    progress.notify_with(env.notify)
    members = [_member(project, env, target, progress) for target in env.clusters]
    try:
        with ExitStack() as locks:
            for member in members:
                locks.callback(member.held.close)
            _preflight(members, tag_text, options)
            if options.dry_run:
                return _planned(result, members, env)
            _release(members, env, options, progress)
    except ReleasegateError as error:
        error.result = summarised(result, members)
        raise
    summarised(result, members)
    result.outcome = "deployed"
    where = ", ".join(f"{m.name} ({m.entry()['revision']})" for m in members)
    result.message = f"{tag_text} is live in {env.name}: every cluster, wave by wave: {where}"
    return result


def check_everywhere(project: Project, env: Environment, tag_text: str, progress: Progress) -> Result:
    """`check` with several clusters: every cluster's pre-flight, concurrently; nothing changes."""
    require_contexts(project.environments_dir / f"{env.name}.yaml", env.clusters)
    result = Result(command="check", outcome="failed", env=env.name, namespace=env.namespace, tag=tag_text)
    members = [_member(project, env, target, progress, "check") for target in env.clusters]
    try:
        _preflight(members, tag_text, DeployOptions(dry_run=True))
    except ReleasegateError as error:
        error.result = summarised(result, members)
        raise
    summarised(result, members)
    result.outcome = "checked"
    result.message = f"{tag_text} can be deployed to {env.name}: {', '.join(m.name for m in members)}"
    return result


def _member(
    project: Project, env: Environment, target: ClusterTarget, progress: Progress, command: str = "deploy"
) -> Member:
    lines = ClusterProgress(progress, target.name)
    member = Member(target, Run.start(command, project, env.for_cluster(target), lines))
    lines.checkpoint = member.checkpoint
    return member


def _preflight(members: list[Member], tag_text: str, options: DeployOptions) -> None:
    """Every cluster's checks and lock, concurrently, before any cluster changes."""
    first = members[0].run
    first_registry = first.clients.registry
    for member in members:  # the SDKs imported here, not by several threads at once
        member.run.clients.cluster.prepare()
        member.run.clients.registry = first_registry.in_region(member.target.aws_region)
        member.run.clients.registry.prepare()
    validated = validate(first, tag_text)  # one release, one answer from GitHub

    def check(member: Member) -> None:
        run = member.run
        # The schemas are checked for the first cluster only: the others render the same
        # templates and values, their image's registry host aside.
        member.plan = preflight(
            run, tag_text, early_cluster_checks=not options.dry_run, validated=validated,
            image_wait=REPLICATION_SECONDS, schemas=member is members[0],
        )  # fmt: skip
        promotion(run, member.plan, options.skip_promotion_check)
        run.check_cluster(create_namespace=not options.dry_run)
        if options.dry_run:
            return
        member.held.enter_context(run.locked())
        member.records = admit(run, member.plan, options)
        member.current = serving(member.records)

    each(members, check, parallel=len(members))


def _release(members: list[Member], env: Environment, options: DeployOptions, progress: Progress) -> None:
    rollout = uuid.uuid4().hex[:12]
    finished: list[list[Member]] = []
    waves = [wave for _, wave in by_wave(members)]
    for number, wave in enumerate(waves, 1):
        names = ", ".join(m.name for m in wave)
        progress.detail("waves", f"wave {wave[0].target.wave} ({number} of {len(waves)}): {names}")
        try:
            go = partial(_go, options=options, rollout=rollout)
            each(wave, go, parallel=env.waves.max_parallel or len(wave), stop_on_failure=True)
            if env.waves.bake and number < len(waves):
                each(wave, lambda m: _bake(m, env.waves.bake), parallel=len(wave))
        except (ReleasegateError, KeyboardInterrupt) as error:
            _put_back_after(error, wave, finished, env, options, progress)
        finished.append(wave)


def _go(member: Member, options: DeployOptions, rollout: str) -> None:
    run, plan = member.run, member.plan
    assert plan is not None
    if member.stop.is_set():  # interrupted while it waited for its turn: it stays untouched
        raise KeyboardInterrupt
    draining.carry_out_pending(run, wait=True)  # what an earlier run left draining
    member.attempt = begin(run, plan, member.records, rollout, options.freeze_override)
    try:
        go_live(run, member.attempt, options, lambda: member.interruptible(
            lambda: strategy_of(run).put_in_service(run, plan, options.timeout)))  # fmt: skip
    except RolledBack as restored:  # this cluster failed, and was put back by go_live
        member.outcome, member.message = FAILED, restored.cause
        raise
    except Interrupted as restored:  # interrupted, and put back by go_live
        member.outcome, member.message = ROLLED_BACK, restored.cause
        raise
    except KeyboardInterrupt:
        member.outcome, member.message = UNKNOWN, "interrupted"
        raise
    except Exception as error:  # go_live could not put it back: not known-good
        member.outcome, member.message = UNKNOWN, needs_attention(error).cause
        raise
    member.outcome, member.message = DEPLOYED, outcome_of(run, plan.tag.text).message


def _bake(member: Member, seconds: float) -> None:
    """The finished wave keeps passing its smoke checks for ``seconds`` before the next starts
    (an interrupt stops it: it changes nothing)."""
    member.interruptible(lambda: _baking(member, seconds))


def _baking(member: Member, seconds: float) -> None:
    run, plan = member.run, member.plan
    assert plan is not None and run.env.smoke is not None
    deadline = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < deadline or rounds == 0:
        try:
            run.smoke_check(plan.image, stage="bake", just_changed=False)
        except ReleasegateError as failed:
            member.message = f"bake: {failed.cause}"
            raise NeedsAttention(f"{failed.cause} while baking", failed.hint, failed.details) from failed
        rounds += 1
        # bake is a length of time, not an event to await
        time.sleep(max(0.0, min(run.env.smoke.interval, deadline - time.monotonic())))
    member.message += f"; baked {seconds:.0f}s ({rounds} rounds of smoke checks)"


def _put_back_after(
    error: BaseException,
    wave: list[Member],
    finished: list[list[Member]],
    env: Environment,
    options: DeployOptions,
    progress: Progress,
) -> None:
    """A failure (or an interrupt) in ``wave``: put back its clusters that took the release and,
    with ``on_failure: rollback``, the earlier waves', last first; then the exit that says
    whether every changed cluster is known-good again."""
    interrupted = isinstance(error, KeyboardInterrupt)
    cause = error.cause if isinstance(error, ReleasegateError) else "interrupted"
    to_put_back = [wave] + (list(reversed(finished)) if env.waves.on_failure == "rollback" else [])
    for member in wave:  # stopped mid-attempt by the failure, and put back by go_live
        if not interrupted and member.outcome == ROLLED_BACK and member.current is not None:
            member.message = f"stopped when {cause}; {member.current.tag} put back and verified"
    if options.rollback:
        with interrupts_deferred(progress) if interrupted else nullcontext():
            for group in to_put_back:
                going = [m for m in group if m.outcome == DEPLOYED]
                for member in going:
                    member.run.must_end_now = interrupted  # done once traffic is back
                if going:
                    progress.warning(f"putting back {', '.join(m.name for m in going)}: {cause}")
                    each(going, lambda m: _put_back(m, options, cause), parallel=len(going), collect=False)
    changed = [m for group in [*finished, wave] for m in group if m.outcome != UNTOUCHED]
    not_good = [m.name for m in changed if m.outcome == UNKNOWN]
    if not options.rollback:
        not_good += [m.name for m in wave if m.outcome == FAILED]
    if interrupted:
        raise Interrupted(f"interrupted in wave {wave[0].target.wave}; the changed clusters were put back",
                          "deploy again when ready") from None  # fmt: skip
    if not_good:
        raise NeedsAttention(
            f"{cause}; not known-good: {', '.join(not_good)}",
            f"a person must look: `releasegate status --env {env.name}`",
            _details(error),
        ) from None
    raise RolledBack(
        f"{cause}; every changed cluster was put back and verified",
        f"fix the release, then deploy again ({', '.join(m.name + ': ' + m.outcome for m in changed)})",
        _details(error),
    ) from None


def _put_back(member: Member, options: DeployOptions, cause: str) -> None:
    run = member.run
    if member.current is None:
        member.outcome, member.message = UNKNOWN, f"{cause}; {member.name} had no earlier good release"
        return
    try:
        restore(run, member.current, options.timeout, f"put back: {cause}", PUT_BACK)
    except Exception as error:  # whatever stopped it, this cluster is not known-good
        why = needs_attention(error).cause
        member.outcome, member.message = UNKNOWN, f"putting back {member.current.tag} failed: {why}"
        return
    member.outcome, member.message = ROLLED_BACK, f"{member.current.tag} put back and verified ({cause})"
    if member.attempt is not None:
        member.attempt.github.status("inactive", member.message)


def _details(error: BaseException) -> tuple[str, ...]:
    return error.details if isinstance(error, ReleasegateError) else ()


def _planned(result: Result, members: list[Member], env: Environment) -> Result:
    summarised(result, members)
    result.outcome = "planned"
    plan = members[0].plan
    described = strategy_of(members[0].run).describe(plan) if plan is not None else ""
    order = "; ".join(f"wave {w}: {', '.join(m.name for m in ms)}" for w, ms in by_wave(members))
    result.message = f"dry run: {described} in {env.name}, {order}; nothing was changed"
    return result
