"""The commands that answer for one cluster, answered for every cluster of an environment with
``clusters:`` (``--cluster NAME``: for one): ``status``, ``history``, ``rollback``, ``smoke`` and
``recover``. An environment without ``clusters:`` is answered exactly as before.

``recover`` after a deploy in waves was killed puts back every cluster that run changed: the
clusters it left unfinished, and those it had already finished (their newest record carries the
``rollout`` id of an unfinished one).

Layer: commands (above the strategies; the CLI calls them).
"""

from __future__ import annotations

from collections.abc import Callable

from releasegate.commands import recovery
from releasegate.commands.members import ClusterProgress
from releasegate.core.clusters_config import ClusterTarget, require_contexts
from releasegate.core.config import Environment, Project
from releasegate.core.errors import BadInput, NeedsAttention, ReleasegateError
from releasegate.kube.ledger import DEPLOYED, FINISHED, RECOVER, Record
from releasegate.run import DeployOptions, Progress, Result, Run

# Which of several clusters' errors decides the exit: one not known-good first.
SEVERITY = (NeedsAttention.exit_code, 1, 130, 4, 3, 2)

Command = Callable[[Project, Environment, Progress], Result]


def each_cluster(
    project: Project, env: Environment, only: str | None, progress: Progress, command: Command
) -> Result:
    """``command`` for every cluster of ``env`` (or ``only`` that one), last wave first: one
    cluster's failure does not keep the others from being answered."""
    targets = _targets(project, env, only)
    if targets is None:
        return command(project, env, progress)
    answered: list[tuple[ClusterTarget, Result]] = []
    failed: list[tuple[ClusterTarget, ReleasegateError]] = []
    for target in targets:
        try:
            cluster_env, cluster_progress = env.for_cluster(target), ClusterProgress(progress, target.name)
            answered.append((target, command(project, cluster_env, cluster_progress)))
        except ReleasegateError as error:
            error.cause = f"{target.name}: {error.cause}"
            failed.append((target, error))
    combined = _combined(env, answered, failed)
    if failed:
        worst = min(
            failed, key=lambda f: SEVERITY.index(f[1].exit_code) if f[1].exit_code in SEVERITY else 1
        )[1]
        worst.result = combined
        raise worst
    return combined


def recover(
    project: Project, env: Environment, only: str | None, options: DeployOptions, progress: Progress
) -> Result:
    """``recover`` for every cluster; a cluster the killed run had finished is put back too."""
    targets = _targets(project, env, only)
    if targets is None:
        return recovery.recover_unfinished(project, env, options, progress)
    killed = _killed_rollouts(project, env, progress)

    def one(project: Project, cluster_env: Environment, cluster_progress: Progress) -> Result:
        return _recover_one(project, cluster_env, killed, options, cluster_progress)

    return each_cluster(project, env, only, progress, one)


def _severity(error: ReleasegateError) -> int:
    return SEVERITY.index(error.exit_code) if error.exit_code in SEVERITY else len(SEVERITY)


def _targets(project: Project, env: Environment, only: str | None) -> list[ClusterTarget] | None:
    """The clusters to answer for, last wave first (None: the environment has no clusters:)."""
    if not env.clusters:
        if only is not None:
            raise BadInput(f"--cluster {only}: {env.name} has no clusters: list", "leave --cluster out")
        return None
    names = [t.name for t in env.clusters]
    if only is not None and only not in names:
        raise BadInput(f"--cluster {only} is not a cluster of {env.name}", f"use one of: {', '.join(names)}")
    require_contexts(project.environments_dir / f"{env.name}.yaml", env.clusters)
    chosen = [t for t in env.clusters if only in (None, t.name)]
    return sorted(chosen, key=lambda t: -t.wave)


def _killed_rollouts(project: Project, env: Environment, progress: Progress) -> set[str]:
    """The rollout ids a cluster's newest record left unfinished (the run was killed there):
    read from every cluster, even when recovering one."""
    killed: set[str] = set()
    for target in env.clusters:
        run = Run.start("recover", project, env.for_cluster(target), ClusterProgress(progress, target.name))
        records = run.ledger().records()
        if records and records[0].outcome not in FINISHED and records[0].rollout:
            killed.add(records[0].rollout)
    return killed


def _recover_one(
    project: Project, env: Environment, killed: set[str], options: DeployOptions, progress: Progress
) -> Result:
    run = Run.start("recover", project, env, progress)
    newest = next(iter(run.ledger().records()), None)
    if newest is None or newest.outcome != DEPLOYED or newest.rollout not in killed:
        return recovery.recover_unfinished(project, env, options, progress)
    with run.reporting_failures():  # deployed by a run killed in another cluster: put it back
        run.check_cluster()
        with run.locked(take_over_this_run=True):
            records = run.ledger().records()
            before = _before(records, newest)
            if before is None:
                raise NeedsAttention(
                    f"{newest.tag} was deployed by a run that did not finish, and there is no "
                    "earlier good release",
                    f"a person must look: `releasegate status --env {env.name} --cluster {env.cluster}`",
                )
            note = f"recovered: the run {newest.rollout} that deployed {newest.tag} did not finish elsewhere"
            record = recovery.restore(run, before, options.timeout, note, RECOVER)
        run.result.revision, run.result.outcome = record.revision, "recovered"
        run.result.failed_tag = newest.tag
        run.result.message = f"{newest.tag} was put back: {before.tag} restored and verified in {env.name}"
        return run.result


def _before(records: list[Record], newest: Record) -> Record | None:
    """The good release that served before ``newest``'s run."""
    return next((r for r in records if r.outcome == DEPLOYED and r.rollout != newest.rollout), None)


def _combined(
    env: Environment,
    answered: list[tuple[ClusterTarget, Result]],
    failed: list[tuple[ClusterTarget, ReleasegateError]],
) -> Result:
    """The clusters' results as one: an entry per cluster, their lines one after the other."""
    first = answered[0][1] if answered else None
    command = first.command if first else "status"
    outcomes = {result.outcome for _, result in answered}
    outcome = outcomes.pop() if len(outcomes) == 1 else ("recovered" if "recovered" in outcomes else "mixed")
    combined = Result(command=command, outcome=outcome, env=env.name, namespace=env.namespace)
    entries = [(t, r.outcome, r.revision, r.message) for t, r in answered]
    entries += [(t, "failed", None, e.one_line()) for t, e in failed]
    for target, result_outcome, revision, message in sorted(entries, key=lambda e: (e[0].wave, e[0].name)):
        combined.clusters.append({"name": target.name, "wave": target.wave, "outcome": result_outcome,
                                  "revision": revision, "message": message})  # fmt: skip
    for target, result in answered:
        combined.history += [{**row, "cluster": target.name} for row in result.history]
        combined.smoke += [{**check, "cluster": target.name} for check in result.smoke]
        combined.tag = combined.tag or result.tag
        combined.failed_tag = combined.failed_tag or result.failed_tag
    combined.message = "\n".join(
        f"[{c['name']}] {line}" for c in combined.clusters for line in str(c["message"]).splitlines()
    )
    return combined
