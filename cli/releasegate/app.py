"""The ``releasegate`` command line: parse, call the pipeline, print, choose the exit code.

Only typer and the error types are imported at start-up; the pipeline and the SDKs behind
it are imported inside the commands, so ``releasegate --help`` stays fast.

Layer: the CLI, the top.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from releasegate.invocation import (
    ClusterOption,
    ConfirmOption,
    DeployTimeoutOption,
    DowngradeOption,
    DryRunOption,
    EnvOption,
    EventEnvOption,
    EventTagOption,
    Globals,
    LocalProdOption,
    NoRollbackOption,
    OverrideFreezeOption,
    SkipPromotionOption,
    TagOption,
    confirm_value,
    confirmed,
    decide_event,
    freeze_gate,
    from_event,
    frozen_fails,
    frozen_said,
    load,
    outside_ci_allowed,
    run_app,
    run_command,
)

if TYPE_CHECKING:
    from releasegate.report import Console
    from releasegate.run import Result

app = typer.Typer(
    help="Deploy a published, semver-tagged release to Kubernetes (with Skaffold or server-side apply), "
    "prove it is Ready, and put the last good release back when it is not.",
    rich_markup_mode=None,  # plain help: no rich import, fast start-up
    pretty_exceptions_enable=False,
    add_completion=False,
    no_args_is_help=True,
)


@app.callback()
def _global_options(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON result object on stdout.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks for internal errors.")
    ] = False,
    project_dir: Annotated[
        Path, typer.Option("--project-dir", help="Folder holding releasegate.yaml, k8s/ and skaffold.yaml.")
    ] = Path("."),
) -> None:
    ctx.obj = Globals(as_json=as_json, verbose=verbose, project_dir=project_dir.resolve())


@app.command()
def releases(ctx: typer.Context) -> None:
    """List the repository's published semver releases, newest first."""

    def run(console: Console) -> Result:
        from releasegate.commands import pipeline
        from releasegate.core import config

        return pipeline.releases(config.load_project(ctx.obj.project_dir), console)

    run_command(ctx.obj, "releases", run)


@app.command()
def check(ctx: typer.Context, env: EnvOption, tag: TagOption) -> None:
    """Run every pre-flight check (release, image, manifests, cluster access); change nothing."""

    def run(console: Console) -> Result:
        from releasegate.commands import pipeline

        project, environment = load(ctx.obj, env)
        if environment.clusters:
            from releasegate.commands.waves import check_everywhere

            return frozen_fails(project, environment, check_everywhere(project, environment, tag, console))
        return frozen_fails(project, environment, pipeline.check(project, environment, tag, console))

    run_command(ctx.obj, "check", run)


@app.command()
def render(
    ctx: typer.Context,
    env: EnvOption,
    tag: TagOption,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default build/<env>/).")] = None,
) -> None:
    """Render the environment's manifests with the release image pinned by digest."""

    def run(console: Console) -> Result:
        from releasegate.commands import pipeline

        project, environment = load(ctx.obj, env)
        return pipeline.render(project, environment, tag, out, console)

    run_command(ctx.obj, "render", run)


@app.command()
def deploy(
    ctx: typer.Context,
    env: EventEnvOption = None,
    tag: EventTagOption = None,
    confirm: ConfirmOption = None,
    dry_run: DryRunOption = False,
    timeout: DeployTimeoutOption = 600,
    allow_local_prod: LocalProdOption = False,
    no_rollback: NoRollbackOption = False,
    allow_downgrade: DowngradeOption = False,
    skip_promotion_check: SkipPromotionOption = False,
    override_freeze: OverrideFreezeOption = None,
) -> None:
    """Deploy TAG to ENV: validate, render, ECR, skaffold deploy, verify; restore the last good
    release if it fails."""

    def run(console: Console) -> Result:
        from releasegate.commands import pipeline
        from releasegate.core.config import load_environment, load_project
        from releasegate.core.version import parse_tag
        from releasegate.run import DeployOptions, Result

        project = load_project(ctx.obj.project_dir)
        env_name, tag_text, confirm_text = from_event(project, env, tag, confirm, console)
        answer = confirm_value(confirm_text)
        environment = load_environment(project, env_name)
        parse_tag(tag_text, project.tag_prefix)  # bad input is exit 2 whatever the answer
        override = freeze_gate(project, environment, override_freeze, console) if answer != "n" else None
        if answer == "n" or (not dry_run and not confirmed(environment, tag_text, answer, allow_local_prod)):
            return Result(
                command="deploy",
                outcome="skipped",
                env=environment.name,
                tag=tag_text,
                namespace=environment.namespace,
                message=f"skipped: {tag_text} was not deployed to {environment.name}",
            )
        options = DeployOptions(
            dry_run=dry_run,
            timeout=timeout,
            rollback=not no_rollback,
            allow_downgrade=allow_downgrade,
            skip_promotion_check=skip_promotion_check,
            freeze_override=override,
        )
        if environment.clusters:  # several clusters, in waves
            from releasegate.commands.waves import deploy_in_waves

            return deploy_in_waves(project, environment, tag_text, options, console)
        return pipeline.deploy(project, environment, tag_text, options, console)

    run_command(ctx.obj, "deploy", run)


@app.command()
def event(ctx: typer.Context) -> None:
    """In GitHub Actions: the environment, tag and confirmation this run's event asks for
    (also written to GITHUB_OUTPUT, for a job's `environment:`)."""

    run_command(ctx.obj, "event", lambda console: decide_event(ctx.obj))


@app.command()
def status(ctx: typer.Context, env: EnvOption, cluster: ClusterOption = None) -> None:
    """The release serving ENV (from the ledger), its pods, and any drift from the ledger."""

    def run(console: Console) -> Result:
        from releasegate.commands import fleet, recovery

        project, environment = load(ctx.obj, env)
        answered = fleet.each_cluster(project, environment, cluster, console, recovery.status)
        frozen_said(project, environment, answered)
        return answered

    run_command(ctx.obj, "status", run)


@app.command()
def history(ctx: typer.Context, env: EnvOption, cluster: ClusterOption = None) -> None:
    """Every recorded deploy attempt in ENV, newest first (the last 20)."""

    def run(console: Console) -> Result:
        from releasegate.commands import fleet, recovery

        return fleet.each_cluster(*load(ctx.obj, env), cluster, console, recovery.history)

    run_command(ctx.obj, "history", run)


@app.command()
def rollback(
    ctx: typer.Context,
    env: EnvOption,
    to: Annotated[
        str | None, typer.Option("--to", help="A good release from the ledger (default: the previous one).")
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds for skaffold and the rollout.")
    ] = 600,
    cluster: ClusterOption = None,
) -> None:
    """Put the previous good release (or --to TAG) back, with the same verification."""

    def run(console: Console) -> Result:
        from releasegate.commands import fleet, recovery
        from releasegate.run import DeployOptions

        project, environment = load(ctx.obj, env)
        options = DeployOptions(timeout=timeout)
        return fleet.each_cluster(project, environment, cluster, console,
                                  lambda pr, e, p: recovery.rollback(pr, e, to, options, p))  # fmt: skip

    run_command(ctx.obj, "rollback", run)


@app.command()
def promote(
    ctx: typer.Context,
    env: EnvOption,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=1,
            help="Seconds each wait for pods may take (a re-scale, the promotion, a restore); "
            "the pauses come on top.",
        ),
    ] = 600,
    allow_local_prod: LocalProdOption = False,
    override_freeze: OverrideFreezeOption = None,
) -> None:
    """Go on with the release paused in ENV (blue/green: switch traffic to its slot, then check
    it there; canary: check it again, then the next steps); if it fails, what served before is
    put back (exit 4)."""

    def run(console: Console) -> Result:
        from releasegate.commands.paused import promote
        from releasegate.run import DeployOptions

        project, environment = load(ctx.obj, env)
        override = freeze_gate(project, environment, override_freeze, console)
        outside_ci_allowed(environment, allow_local_prod)
        options = DeployOptions(timeout=timeout, freeze_override=override)
        return promote(project, environment, options, console)

    run_command(ctx.obj, "promote", run)


@app.command()
def abort(
    ctx: typer.Context,
    env: EnvOption,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", min=1, help="Seconds to wait for a running deploy to abort at this request."
        ),
    ] = 600,
    allow_local_prod: LocalProdOption = False,
) -> None:
    """Discard the release paused in ENV: what served before the deploy serves (canary: all
    traffic back on stable, the canary deleted); exits 4, the release did not go live. While a
    deploy of ENV is running, ask it to abort at its next check round and wait until what
    served before serves again (exit 0)."""

    def run(console: Console) -> Result:
        from releasegate.commands.paused import abort

        project, environment = load(ctx.obj, env)
        outside_ci_allowed(environment, allow_local_prod)
        return abort(project, environment, console, timeout)

    run_command(ctx.obj, "abort", run)


@app.command()
def smoke(ctx: typer.Context, env: EnvOption, cluster: ClusterOption = None) -> None:
    """Run ENV's smoke checks against the release serving now (exit 0: all pass, 5: one fails)."""

    def run(console: Console) -> Result:
        from releasegate.commands import fleet, pipeline

        return fleet.each_cluster(*load(ctx.obj, env), cluster, console, pipeline.smoke)

    run_command(ctx.obj, "smoke", run)


@app.command()
def compare(ctx: typer.Context, env: EnvOption) -> None:
    """Replay ENV's compare: requests to the paused release and to the one serving, and compare
    the answers (exit 0: they agree, 4: they do not, 3: nothing is paused). Changes nothing."""

    def run(console: Console) -> Result:
        from releasegate.commands.paused import compare

        return compare(*load(ctx.obj, env), console)

    run_command(ctx.obj, "compare", run)


@app.command()
def freeze(
    ctx: typer.Context,
    env: EnvOption,
    at: Annotated[
        str | None, typer.Option("--at", help="A date and time with its offset (default: now).")
    ] = None,
) -> None:
    """Whether ENV is in a freeze window (freeze: in releasegate.yaml) now or --at a time, until
    when, and when the next one opens. Reads the file only."""

    def run(console: Console) -> Result:
        from releasegate.commands.freeze import freeze

        return freeze(*load(ctx.obj, env), at)

    run_command(ctx.obj, "freeze", run)


@app.command()
def metrics(
    ctx: typer.Context,
    env: EnvOption,
    since: Annotated[str, typer.Option("--since", help="How far back: 30d, 12h, 2w.")] = "30d",
) -> None:
    """The four DORA keys of ENV (every cluster), from the ledger and the tags' commits on GitHub:
    deployment frequency, lead time for changes, change failure rate, time to restore."""

    def run(console: Console) -> Result:
        from releasegate.commands.metrics import measure

        return measure(*load(ctx.obj, env), since, console)

    run_command(ctx.obj, "metrics", run)


@app.command("ecr-login")
def ecr_login(
    ctx: typer.Context,
    env: EnvOption,
    tool: Annotated[str, typer.Option("--tool", help="The tool to log in: docker or helm.")] = "docker",
) -> None:
    """Log docker (or helm) into ENV's ECR registry; the credential goes on stdin, never argv.
    Deploys need none: the cluster's nodes pull with their own role."""

    def run(console: Console) -> Result:
        from releasegate.commands.login import ecr_login

        return ecr_login(*load(ctx.obj, env), tool, console)

    run_command(ctx.obj, "ecr-login", run)


@app.command()
def recover(
    ctx: typer.Context,
    env: EnvOption,
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, help="Seconds for skaffold and the rollout.")
    ] = 600,
    cluster: ClusterOption = None,
) -> None:
    """After a deploy was killed (a cancelled CI run): if the last recorded deploy did not
    finish, put the last good release back; otherwise do nothing. With several clusters, every
    cluster the killed deploy changed is put back."""

    def run(console: Console) -> Result:
        from releasegate.commands import fleet
        from releasegate.run import DeployOptions

        project, environment = load(ctx.obj, env)
        return fleet.recover(project, environment, cluster, DeployOptions(timeout=timeout), console)

    run_command(ctx.obj, "recover", run)


def main() -> None:
    run_app(app)
