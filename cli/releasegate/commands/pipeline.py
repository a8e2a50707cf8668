"""The release pipeline: validate → render → ECR → lock → skaffold deploy → verify → record,
and on failure, restore the last good release.

Each command is a function that returns a ``Result`` or raises a ``ReleasegateError``; it
knows nothing about the command line. The outside world is reached only through the
adapters in ``Clients`` (``run.py``), built once per run, creating their SDK clients lazily.
``recovery.py`` holds what puts a known release back (automatic restore and ``rollback``).

Layer: commands (above the strategies; the CLI calls them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from releasegate.commands import pruning
from releasegate.commands.preflight import preflight, promotion
from releasegate.commands.recovery import recover
from releasegate.core import placement
from releasegate.core.config import Environment, Project
from releasegate.core.errors import (
    BadInput,
    Interrupted,
    Refused,
    ReleasegateError,
    RolledBack,
    needs_attention,
)
from releasegate.core.freeze import Override
from releasegate.core.version import ReleaseTag, parse_tag
from releasegate.deploy import render as renderer
from releasegate.deployers import Rendered, skaffold_spec
from releasegate.github.deployments import DeploymentRecord
from releasegate.github.releases import ReleaseSource, list_releases
from releasegate.kube.ledger import (
    DEPLOYED,
    FAILED,
    INTERRUPTED,
    PAUSED,
    PENDING,
    Record,
    manifest_hash,
    paused,
    recorded_values,
    serving,
)
from releasegate.kube.lock import LockLost
from releasegate.run import DeployOptions, Plan, Progress, Result, Run
from releasegate.strategies import draining, strategy_of
from releasegate.strategies.base import InService


def releases(project: Project, progress: Progress) -> Result:
    del progress
    found = list_releases(ReleaseSource(project.github_repository), project.tag_prefix)
    return Result(
        command="releases",
        outcome="listed",
        releases=[
            {"tag": t.text, "prerelease": r.prerelease, "published_at": r.published_at, "url": r.html_url}
            for t, r in found
        ],
        message=f"{len(found)} published semver releases of {project.github_repository}",
    )


def _would_prune(run: Run, plan: Plan) -> None:
    """--dry-run: what pruning would delete once this release is good (JSON ``pruned``)."""
    with run.stages.run("prune") as done:
        keep = pruning.wanted(run, plan.tag.text, plan.image)
        try:
            run.result.pruned = pruning.prunable(run, keep)
        except Exception as error:  # a dry run from where the cluster cannot be read still plans
            run.progress.warning(f"what pruning would delete is not known: {error.__class__.__name__}")
            done.append("not previewed (the cluster could not be read)")
            return
        done.append(
            f"would delete {', '.join(run.result.pruned)}" if run.result.pruned else "nothing to prune"
        )


def check(project: Project, env: Environment, tag_text: str, progress: Progress) -> Result:
    run = Run.start("check", project, env, progress)
    plan = preflight(run, tag_text)
    promotion(run, plan, skip=False)
    run.check_cluster(create_namespace=False)  # `check` changes nothing
    run.result.outcome, run.result.message = "checked", f"{plan.tag} can be deployed to {env.name}"
    return run.result


def render(
    project: Project, env: Environment, tag_text: str, out_dir: Path | None, progress: Progress
) -> Result:
    run = Run.start("render", project, env, progress)
    plan = preflight(run, tag_text)
    target = out_dir or project.build_dir(env.name)
    run.result.files = [str(p) for p in renderer.write(plan.manifests, target)]
    run.result.outcome = "rendered"
    run.result.message = f"{len(run.result.files)} manifests written to {target}"
    return run.result


def deploy(
    project: Project, env: Environment, tag_text: str, options: DeployOptions, progress: Progress
) -> Result:
    run = Run.start("deploy", project, env, progress)
    run.result.tag = tag_text
    with run.reporting_failures():
        plan = preflight(run, tag_text, early_cluster_checks=not options.dry_run)
        promotion(run, plan, options.skip_promotion_check)
        if env.deployer == "skaffold":
            run.result.skaffold = ["skaffold", *skaffold_spec(project, env, plan.image).argv()]
        if options.dry_run:
            written = renderer.write_for_deploy(project, env, plan.tag, plan.image, plan.manifests)
            run.result.files = [str(p) for p in written]
            run.result.outcome = "planned"
            if env.deployer == "apply":  # the API server's admission and validation answer now
                run.check_cluster(create_namespace=False)
                with run.stages.run("dry run") as done:
                    rendered = Rendered(plan.tag, plan.image, plan.manifests, plan.slots)
                    done.append(run.deployer().dry_run(rendered, lambda line: progress.detail("apply", line)))
            _would_prune(run, plan)
            described = strategy_of(run).describe(plan)
            run.result.message = f"dry run: {described} in {env.name}{_smoke_plan(env)}; nothing was changed"
            return run.result

        run.check_cluster()
        with run.locked():
            records = admit(run, plan, options)
            draining.carry_out_pending(run, wait=True)  # what an earlier run left draining
            attempt = begin(run, plan, records, override=options.freeze_override)
            go_live(
                run, attempt, options, lambda: strategy_of(run).put_in_service(run, plan, options.timeout)
            )
        return outcome_of(run, plan.tag.text)


def admit(run: Run, plan: Plan, options: DeployOptions) -> list[Record]:
    """With the lock held, before the first change: nothing paused, the live slot as planned,
    no downgrade. Returns the ledger as read (``begin`` appends to it without reading it again)."""
    env = run.env
    records = run.ledger().records()
    refuse_while_paused(records, env)
    if strategy_of(run).target(run) != plan.slots:
        raise Refused(f"the live slot of {env.name} changed since the pre-flight checks", "deploy again")
    current = serving(records)
    guard_downgrade(plan.tag, current, options.allow_downgrade, env, run.progress)
    return records


def begin(
    run: Run, plan: Plan, records: list[Record], rollout: str = "", override: Override | None = None
) -> Attempt:
    """The first change: the ledger's pending record (``records``: the ledger as ``admit`` read
    it, the lock held since), and the GitHub deployment started (``override``: a freeze let
    through, recorded in both)."""
    env = run.env
    run.result.freeze_override = override.as_json() if override else None
    record = run.ledger().append(
        read=records,
        tag=plan.tag.text,
        image=plan.image,
        commit=os.environ.get("GITHUB_SHA", ""),
        outcome=PENDING,
        manifest_hash=manifest_hash(plan.manifests),
        strategy=strategy_of(run).name,
        slot=plan.slots.target if isinstance(plan.slots, placement.Slots) else "",
        values=recorded_values(env),
        rollout=rollout,
        freeze_override=override.text() if override else "",
    )
    run.result.revision = record.revision
    github = DeploymentRecord(run.clients.releases, run.progress.warning)
    if run.clients.releases.has_token:
        github.start(plan.tag.text, env.github_environment, production=env.protected,
                     note=override.text() if override else "")  # fmt: skip
    return Attempt(record, serving(records), github)


@dataclass(frozen=True)
class Attempt:
    """A deploy that has started changing the environment."""

    record: Record  # its ledger record, pending until it is live
    previous: Record | None  # the release to restore when it fails
    github: DeploymentRecord


def go_live(run: Run, attempt: Attempt, options: DeployOptions, put: Callable[[], InService]) -> None:
    """``put`` the release in service. From the first write on, every way out either records
    the release live (or paused on purpose) or ends in the recovery path, whatever failed (a bug
    included): never a pending record and an exit code that says nothing changed. The one
    exception is a lost lock: another deploy holds the environment now, and restoring would be
    a change too; its GitHub deployment is ended (error: the outcome is not known), not left
    in_progress."""
    try:
        _go_live(run, attempt, options, put)
    except LockLost as lost:
        attempt.github.status("error", f"stopped: {lost.cause}")
        raise


def _go_live(run: Run, attempt: Attempt, options: DeployOptions, put: Callable[[], InService]) -> None:
    ledger = run.ledger()
    run.milestone = lambda text: attempt.github.status("in_progress", text)
    try:
        placed = put()
    except LockLost:
        raise  # go_live's: no restore
    except (Exception, KeyboardInterrupt) as error:
        failure = None if isinstance(error, KeyboardInterrupt) else needs_attention(error)
        outcome, note = (FAILED, failure.cause) if failure else (INTERRUPTED, "interrupted by SIGINT/SIGTERM")
        mark_best_effort(run, attempt.record, outcome, note)
        attempt.github.status("failure", note if failure else "interrupted")
        try:
            recover(run, failure, attempt.previous, attempt.record, options)
        except (RolledBack, Interrupted) as restored:
            attempt.github.status("inactive", restored.cause)  # no longer live: the previous one is
            raise
    run.result.pods_ready, run.result.slot = placed.pods_ready, placed.slot or None
    run.result.step = placed.step if placed.step is not None else (placed.paused or None)
    run.result.weight = placed.weight
    tag, where = attempt.record.tag, f" in {placed.slot}" if placed.slot else ""
    if placed.paused:
        run.result.outcome = "paused"
        ledger.mark(attempt.record, PAUSED, f"paused {placed.paused}", step=placed.paused,
                    slot=placed.slot, github_deployment=attempt.github.id)  # fmt: skip
        waiting = placed.status or f"{tag} passed its checks{where}; paused {placed.paused}"
        attempt.github.status("in_progress", waiting)
        return
    ledger.mark(attempt.record, DEPLOYED, slot=placed.slot, step="")
    pruning.prune(run, pruning.wanted(run, tag, attempt.record.image))  # good: what it dropped goes
    attempt.github.status("success", f"{tag} is live{where} ({placed.pods_ready} pods Ready)")


def outcome_of(run: Run, tag: str) -> Result:
    env, result = run.env.name, run.result
    where = f" in slot {result.slot}" if result.slot else ""
    if result.outcome == "paused":
        step = f"step {result.step}" if isinstance(result.step, int) else result.step
        share = f", taking {result.weight} % of the traffic" if result.weight is not None else ""
        result.message = (
            f"{tag} is Ready{where} and passed its checks; paused at {step}{share}: "
            f"`releasegate promote --env {env}` goes on, `releasegate abort --env {env}` discards it"
        )
    else:
        result.outcome = "deployed" if result.command == "deploy" else "promoted"
        result.message = f"{tag} is live in {env}{where} ({result.pods_ready} pods Ready)"
    return result


def refuse_while_paused(records: list[Record], env: Environment) -> None:
    """A paused release holds the environment until it is promoted or aborted."""
    if (waiting := paused(records)) is not None:
        raise Refused(
            f"{waiting.tag} is paused in {env.name} ({waiting.step}, revision {waiting.revision})",
            f"`releasegate promote --env {env.name}` or `releasegate abort --env {env.name}` first",
        )


def mark_best_effort(run: Run, record: Record, outcome: str, note: str) -> None:
    """Record the failure; if even that fails, restoring the previous release matters more."""
    try:
        run.ledger().mark(record, outcome, note)
    except ReleasegateError as error:
        run.progress.warning(f"could not record revision {record.revision} as {outcome}: {error.cause}")


def smoke(project: Project, env: Environment, progress: Progress) -> Result:
    """The smoke checks against what serves now: exit 0 when all pass, 5 when one fails."""
    if env.smoke is None:
        raise BadInput(
            f"{env.name} has no smoke checks", f"add a smoke: section to k8s/environments/{env.name}.yaml"
        )
    run = Run.start("smoke", project, env, progress)
    with run.reporting_failures():
        image = strategy_of(run).serving(run).image
        if image is None:
            raise Refused(f"nothing serves {env.name}: no Deployment {project.app}", "deploy a release first")
        run.smoke_check(image, just_changed=False)  # what serves now: a canary may share <app>
        run.result.image = image
        run.result.outcome = "passed"
        run.result.message = f"{len(run.result.smoke)} smoke checks passed in {env.name}"
        return run.result


def _smoke_plan(env: Environment) -> str:
    if env.smoke is None:
        return ""
    checks = ", ".join(f"{c.name} ({c.method} {c.path})" for c in env.smoke.checks)
    return f", then smoke checks: {checks}"


def guard_downgrade(
    tag: ReleaseTag, current: Record | None, allowed: bool, env: Environment, progress: Progress
) -> None:
    if current is None:
        return
    try:
        serving_version = parse_tag(current.tag, "optional").version
    except Exception:  # a ledger record from another tag policy: nothing to compare
        return
    if tag.version < serving_version and not allowed:
        raise Refused(
            f"{tag} is older than {current.tag}, which is serving {env.name}",
            "pass --allow-downgrade to deploy an older release, or use `releasegate rollback`",
        )
    if tag.version == serving_version:
        progress.warning(f"{tag} is already the release serving {env.name}: redeploying it")
