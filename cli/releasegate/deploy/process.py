"""The one door through which releasegate starts a program (skaffold, helm), via ``sh``.

``run_program`` takes an argument list, never a shell string; it streams each output line to
a callback, enforces a deadline (the process is killed past it), stops the program when
releasegate itself is interrupted, and turns failures into ``ProgramFailed`` carrying the
command line, the program's exit code and its last output lines. The program's environment
is releasegate's own without the GitHub tokens: nothing it starts needs them.

Layer: adapter for what deploys: templates, helm, skaffold, programs (imports only core and deploy/).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from releasegate.core.errors import NeedsAttention, Refused

OUTPUT_TAIL = 10
# Credentials for GitHub that a child process (or a plugin it loads) could leak or misuse.
WITHHELD_VARIABLES = (
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "GH_ENTERPRISE_TOKEN",
    "GITHUB_ENTERPRISE_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
)


class ProgramFailed(NeedsAttention):
    def __init__(
        self, cause: str, hint: str, argv: list[str], exit_code: int | None, tail: list[str]
    ) -> None:
        super().__init__(cause, hint, details=tuple(tail))
        # The program's own exit code; `exit_code` stays releasegate's (5).
        self.argv, self.program_exit = argv, exit_code


def run_program(
    program: str,
    argv: list[str],
    *,
    extra_env: Mapping[str, str] | None = None,
    timeout: float,
    on_line: Callable[[str], None],
    cwd: Path,
    on_error_line: Callable[[str], None] | None = None,
    stdin: str | None = None,
) -> None:
    """Run ``program`` with ``argv``; each output line goes to ``on_line`` (standard error to
    ``on_error_line`` when given, so that a program's data and its complaints stay apart).
    ``stdin`` is written to the program's standard input: the way to hand it a secret."""
    import sh

    try:
        command = sh.Command(program)
    except sh.CommandNotFound as exc:
        raise Refused(f"{program} not found on PATH", f"install {program} and put it on PATH") from exc
    tail: deque[str] = deque(maxlen=OUTPUT_TAIL)

    def collector(callback: Callable[[str], None]) -> Callable[[str], None]:
        def line(text: str) -> None:
            text = text.rstrip("\n")
            tail.append(text)
            callback(text)

        return line

    process = command(
        *argv,
        _env=child_environment(extra_env or {}),
        _out=collector(on_line),
        _err=collector(on_error_line or on_line),
        _tty_out=False,
        _cwd=str(cwd),
        _in=stdin,
        _bg=True,  # waited for below, so that an interrupt can stop it
        _bg_exc=False,
        _timeout=max(timeout, 0.1),  # sh kills it past the deadline
    )
    try:
        # A plain wait: unlike wait(timeout=...), it also waits for the output threads, so the
        # last lines are never lost.
        process.wait()
    except sh.TimeoutException as exc:
        _stop(process)
        raise ProgramFailed(
            f"{program} still running after {timeout:.0f}s and was stopped",
            "raise --timeout, or look at the cluster events",
            [program, *argv],
            None,
            list(tail),
        ) from exc
    except sh.ErrorReturnCode as exc:
        raise ProgramFailed(
            f"`{program} {' '.join(argv)}` exited with {exc.exit_code}",
            f"read the {program} output above",
            [program, *argv],
            exc.exit_code,
            list(tail),
        ) from exc
    except BaseException:  # SIGINT/SIGTERM: never leave the program running behind us
        _stop(process)
        raise
    finally:
        _cancel_deadline(process)


def _cancel_deadline(process: Any) -> None:
    """sh enforces ``_timeout`` with a non-daemon threading.Timer that it cancels only when it
    sees the process end; one left running would keep the interpreter alive at exit for the
    rest of --timeout. Cancelling a finished Timer does nothing."""
    timer = getattr(getattr(process, "process", None), "_timeout_timer", None)
    if timer is not None:
        timer.cancel()


def _stop(process: Any) -> None:
    import sh

    # It may have exited already, or exit with an error on SIGTERM: neither matters here.
    with contextlib.suppress(Exception):
        process.terminate()
        try:
            process.wait(timeout=5)
        except sh.TimeoutException:
            process.kill()


def require_program(program: str) -> None:
    """Refuse before any change when ``program`` is not on PATH (rather than half-way)."""
    if shutil.which(program) is None:
        raise Refused(f"{program} not found on PATH", f"install {program} and put it on PATH")


def child_environment(extra_env: Mapping[str, str]) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in WITHHELD_VARIABLES}
    return {**environment, **extra_env}
