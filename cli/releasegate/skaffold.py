"""Build and run ``skaffold deploy`` through ``sh``, with an argument list, never a shell.

``run_program`` is the one door through which releasegate starts a program: it streams
each output line to a callback, enforces a deadline (the process is killed past it), and
turns failures into errors that carry the command line, exit code and last output lines.
Deploying and waiting are separate: Skaffold applies; ``kube.py`` proves the rollout.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import BadInput, NeedsAttention, Refused

OUTPUT_TAIL = 10
RUN_ID_LABEL = "skaffold.dev/run-id"


@dataclass(frozen=True)
class SkaffoldDeploy:
    skaffold_file: Path
    profile: str
    namespace: str
    image: str
    kube_context: str | None = None
    # Skaffold labels every object and pod template with `skaffold.dev/run-id`, a new UUID per
    # run: a redeploy of the same release, or a restore, would then change the pod template and
    # start new pods. A run-id fixed per environment keeps the template the release's own.
    run_id: str = ""
    # Off by default: releasegate's own verifier watches the rollout and fails fast with a
    # diagnosis, where Skaffold's status check would wait out its deadline first.
    status_check: bool = False

    def argv(self) -> list[str]:
        args = [
            "deploy",
            "--filename",
            str(self.skaffold_file),
            "--profile",
            self.profile,
            "--namespace",
            self.namespace,
            "--images",
            self.image,
            f"--status-check={str(self.status_check).lower()}",
            "--tail=false",
            "--interactive=false",
            "--update-check=false",
        ]
        if self.run_id:
            args += ["--label", f"{RUN_ID_LABEL}={self.run_id}"]
        if self.kube_context:
            args += ["--kube-context", self.kube_context]
        return args


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
    extra_env: Mapping[str, str],
    timeout: float,
    on_line: Callable[[str], None],
    cwd: Path,
    on_error_line: Callable[[str], None] | None = None,
) -> None:
    """Run ``program`` with ``argv``; each output line goes to ``on_line`` (standard error to
    ``on_error_line`` when given, so that a program's data and its complaints stay apart)."""
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
        _env={**os.environ, **extra_env},
        _out=collector(on_line),
        _err=collector(on_error_line or on_line),
        _tty_out=False,
        _cwd=str(cwd),
        _in=None,
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


def _stop(process: Any) -> None:
    import sh

    # It may have exited already, or exit with an error on SIGTERM: neither matters here.
    with contextlib.suppress(Exception):
        process.terminate()
        try:
            process.wait(timeout=5)
        except sh.TimeoutException:
            process.kill()


def profile_manifests(skaffold_file: Path, profile: str) -> dict[str, Any]:
    """The ``manifests`` section Skaffold uses with ``profile`` (the base one when it has none)."""
    import yaml

    try:
        config = yaml.safe_load(skaffold_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"{skaffold_file} cannot be read as YAML", "fix skaffold.yaml") from exc
    if not isinstance(config, dict):
        raise BadInput(f"{skaffold_file} must hold a Skaffold config", "fix skaffold.yaml")
    profiles = {p.get("name"): p for p in config.get("profiles", []) if isinstance(p, dict)}
    if profile not in profiles:
        raise BadInput(
            f"{skaffold_file.name} has no profile {profile!r}",
            f"add it, or fix skaffold_profile (profiles: {', '.join(map(str, profiles))})",
        )
    manifests = profiles[profile].get("manifests", config.get("manifests", {}))
    return manifests if isinstance(manifests, dict) else {}


def deploy(
    spec: SkaffoldDeploy, *, docker_config: Path, timeout: float, on_line: Callable[[str], None], cwd: Path
) -> None:
    run_program(
        "skaffold",
        spec.argv(),
        extra_env={"DOCKER_CONFIG": str(docker_config)},
        timeout=timeout,
        on_line=on_line,
        cwd=cwd,
    )
