"""How one invocation of a command runs: its arguments filled in from the GitHub Actions event,
a protected environment's confirmation, the result printed, the exit code chosen.

Layer: the CLI (below ``app.py``, which only declares the commands); imports the commands and
the SDKs only inside functions, so ``releasegate --help`` stays fast.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from releasegate.core.errors import BadInput, Refused, ReleasegateError

if TYPE_CHECKING:
    from releasegate.core.config import Environment, Project
    from releasegate.core.freeze import Frozen, Override
    from releasegate.report import Console
    from releasegate.run import Result

EXIT_INTERRUPTED = 130

# The options several commands share.
EnvOption = Annotated[
    str, typer.Option("--env", envvar="RELEASEGATE_ENV", help="Environment: a file in k8s/environments/.")
]
TagOption = Annotated[
    str,
    typer.Option(
        "--tag", envvar="RELEASEGATE_TAG", help="Release tag, e.g. v1.4.2 (a published GitHub release)."
    ),
]
EventEnvOption = Annotated[
    str | None,
    typer.Option(
        "--env", envvar="RELEASEGATE_ENV", help="Environment; in GitHub Actions, default: from the event."
    ),
]
EventTagOption = Annotated[
    str | None,
    typer.Option(
        "--tag", envvar="RELEASEGATE_TAG", help="Release tag; in GitHub Actions, default: from the event."
    ),
]
ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster", help="With several clusters (clusters:): answer for this one only (default: every one)."
    ),
]
LocalProdOption = Annotated[
    bool, typer.Option("--allow-local-prod", help="Allow a protected environment outside CI.")
]
OverrideFreezeOption = Annotated[
    str | None,
    typer.Option(
        "--override-freeze",
        metavar="REASON",
        help="Go ahead during a freeze window (freeze: in releasegate.yaml); the reason is recorded in "
        "the ledger, the JSON result, the GitHub deployment and the notification.",
    ),
]
# deploy's own options, declared here to keep app.py a list of commands
ConfirmOption = Annotated[
    str | None,
    typer.Option(
        "--confirm",
        envvar="RELEASEGATE_CONFIRM",
        help="y: deploy; n: skip cleanly (exit 0). Protected environments need y without a terminal.",
    ),
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check and render, print the skaffold command.")
]
DeployTimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=1,
        help="Seconds each wait for pods may take (skaffold and the rollout, a canary's "
        "re-scale, its promotion, a restore); a canary's pauses come on top.",
    ),
]
NoRollbackOption = Annotated[
    bool, typer.Option("--no-rollback", help="On failure leave the cluster as it is, for debugging (exit 5).")
]
DowngradeOption = Annotated[
    bool, typer.Option("--allow-downgrade", help="Allow a lower version than the one serving.")
]
SkipPromotionOption = Annotated[
    bool,
    typer.Option("--skip-promotion-check", help="Deploy even if the tag was not verified in promote_from."),
]


@dataclass
class Globals:
    as_json: bool
    verbose: bool
    project_dir: Path


def from_event(
    project: Project, env: str | None, tag: str | None, confirm: str | None, console: Console
) -> tuple[str, str, str | None]:
    """--env/--tag/--confirm, filled in from the GitHub Actions event when not given."""
    from releasegate.core.config import load_environments
    from releasegate.github.actions import decide_from_environment, in_actions

    if env is not None and tag is not None:
        return env, tag, confirm
    if not in_actions():
        raise BadInput("--env and --tag are required outside GitHub Actions", "pass --env ENV --tag TAG")
    decision = decide_from_environment(load_environments(project))
    console.detail("event", f"{decision.reason}: {decision.tag or '(no tag)'} to {decision.env}")
    return env or decision.env, tag or decision.tag, confirm if confirm is not None else decision.confirm


def load(options: Globals, env: str) -> tuple[Project, Environment]:
    from releasegate.core.config import load_environment, load_project

    project = load_project(options.project_dir)
    return project, load_environment(project, env)


def confirm_value(value: str | None) -> str | None:
    if value is None:
        return None
    answer = value.strip().lower()
    if answer in ("y", "yes"):
        return "y"
    if answer in ("n", "no"):
        return "n"
    raise BadInput(f"--confirm must be y or n, not {value[:20]!r}", "pass --confirm y to deploy or n to skip")


def confirmed(environment: Environment, tag: str, answer: str | None, allow_local_prod: bool) -> bool:
    """Whether to go on. Protected environments need CI (or --allow-local-prod) and a yes."""
    if not environment.protected:
        return True
    outside_ci_allowed(environment, allow_local_prod)
    if answer == "y":
        return True
    if not sys.stdin.isatty():
        raise BadInput(
            f"deploying to {environment.name} needs --confirm y when there is no terminal to ask",
            "pass --confirm y (or RELEASEGATE_CONFIRM=y)",
        )
    return typer.confirm(f"Deploy {tag} to {environment.name} ({environment.namespace})?", default=False)


def decide_event(options: Globals) -> Result:
    """`releasegate event`: what this Actions run's event asks for, as step outputs."""
    from releasegate.core.config import load_environments, load_project
    from releasegate.core.version import parse_tag
    from releasegate.github.actions import ActionsReport, decide_from_environment, in_actions
    from releasegate.run import Result

    if not in_actions():
        raise BadInput("`releasegate event` reads a GitHub Actions event", "run it inside GitHub Actions")
    project = load_project(options.project_dir)
    decision = decide_from_environment(load_environments(project))
    parse_tag(decision.tag, project.tag_prefix)  # a malformed tag never reaches the outputs
    chosen = {"environment": decision.env, "tag": decision.tag, "confirm": decision.confirm}
    ActionsReport().outputs(chosen)
    message = f"{decision.reason}: {decision.tag} to {decision.env} (confirm {decision.confirm})"
    return Result(command="event", outcome="decided", env=decision.env, tag=decision.tag, message=message)


def freeze_gate(
    project: Project, environment: Environment, reason: str | None, console: Console
) -> Override | None:
    """Before any network call: refuse a frozen environment (exit 3), or let it through with
    --override-freeze and say so."""
    from datetime import UTC, datetime

    from releasegate.core.freeze import gate

    override = gate(project.freeze, environment.name, datetime.now(UTC), reason)
    if override is not None:
        console.warning(f"{environment.name} is frozen by {override.window} until {override.until}: "
                        f"going ahead, --override-freeze {override.reason!r}")  # fmt: skip
    return override


def frozen_fails(project: Project, environment: Environment, checked: Result) -> Result:
    """`check`: every check passed, but a deploy now would be refused (exit 3, saying until when)."""
    held = frozen_said(project, environment, checked)
    if held is None:
        return checked
    failure = Refused(
        f"{checked.tag} passes every check, but {environment.name} is {held.describe()}",
        'deploy after it ends, or with --override-freeze "REASON"',
    )
    failure.result = checked
    raise failure


def frozen_said(project: Project, environment: Environment, result: Result) -> Frozen | None:
    """`status`, `check`: the freeze ENV is in now, in the JSON result and the message."""
    from datetime import UTC, datetime

    from releasegate.core.freeze import frozen

    held = frozen(project.freeze, environment.name, datetime.now(UTC))
    if held is not None:
        result.freeze = held.as_json()
        result.message += f"; {held.describe()}"
    return held


def outside_ci_allowed(environment: Environment, allow_local_prod: bool) -> None:
    if environment.protected and not in_ci() and not allow_local_prod:
        raise Refused(
            f"{environment.name} is protected and this is not CI",
            "run it through the GitHub workflow, or pass --allow-local-prod",
        )


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("GITHUB_ACTIONS") == "true"


def run_command(options: Globals, command: str, body: Callable[[Console], Result]) -> None:
    from releasegate.report import Console
    from releasegate.run import Result as PipelineResult

    console = Console(as_json=options.as_json, verbose=options.verbose)
    # SIGTERM (a cancelled CI job) is handled like Ctrl-C: stop, restore, release the lock. And
    # SIGINT always is Ctrl-C: Python leaves it ignored when the parent ignored it (a job started
    # in the background of a non-interactive shell), and a deploy must not ignore it.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = _settled(body, console)
        console.result(result)
    except ReleasegateError as error:
        console.failure(error, command, error.result if isinstance(error.result, PipelineResult) else None)
        raise typer.Exit(error.exit_code) from None
    except KeyboardInterrupt:
        console.failure(ReleasegateError("interrupted", "run the command again when ready"), command)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as error:  # a bug: one line, the traceback only when asked for
        if options.verbose:
            traceback.print_exc()
        console.failure(
            ReleasegateError(
                f"internal error in {command}: {error.__class__.__name__}: {error}".replace("\n", " "),
                "run again with --verbose and report the traceback",
            ),
            command,
        )
        raise typer.Exit(1) from None


def _settled(body: Callable[[Console], Result], console: Console) -> Result:
    """``body``'s result, once every GitHub deployment status it posts in the background has
    been posted (or has failed with a warning): what is reported is what GitHub shows."""
    from releasegate.github.deployments import settle_all

    try:
        return body(console)
    finally:
        settle_all()


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_app(app: typer.Typer) -> None:
    """Run the command line; a usage error is one line and exit 2, like every other bad input."""
    # typer carries its own copy of click; its usage errors are not exported under a public name.
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    try:
        # standalone_mode=False: usage errors come back here, to be said in one line.
        code = app(prog_name="releasegate", standalone_mode=False)
    except NoArgsIsHelpError as error:
        print(error.format_message(), file=sys.stderr)
        print("error: no command given. Next: pick one of the commands above", file=sys.stderr)
        sys.exit(BadInput.exit_code)
    except UsageError as error:
        where = error.ctx.command_path if error.ctx else "releasegate"
        message = error.format_message().rstrip(".")
        print(f"error: {message}. Next: see `{where} --help`", file=sys.stderr)
        sys.exit(BadInput.exit_code)
    except typer.Abort:  # Ctrl-C or end of input at a prompt
        print("error: interrupted. Next: run the command again when ready", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
