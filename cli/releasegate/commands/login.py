"""``releasegate ecr-login``: log a developer's docker or helm into the environment's ECR.

The credential (ECR authorization token, valid 12 hours) is fetched with the AWS credential
chain and handed to the tool on standard input (``--password-stdin``): never on a command
line, never printed, never written by releasegate; the tool keeps it as it keeps any login.

Layer: commands (above the strategies; the CLI calls them).
"""

from __future__ import annotations

from pathlib import Path

from releasegate.aws.registry import Registry
from releasegate.core.config import Environment, Project
from releasegate.core.errors import BadInput
from releasegate.deploy.process import require_program, run_program
from releasegate.run import Progress, Result

TOOLS = ("docker", "helm")


def login_argv(tool: str, registry: str, username: str) -> list[str]:
    if tool == "helm":
        return ["registry", "login", registry, "--username", username, "--password-stdin"]
    return ["login", "--username", username, "--password-stdin", registry]


def ecr_login(project: Project, env: Environment, tool: str, progress: Progress) -> Result:
    if tool not in TOOLS:
        raise BadInput(
            f"--tool must be docker or helm, not {tool[:20]!r}", "pass --tool docker or --tool helm"
        )
    require_program(tool)
    login = Registry(env.aws_region).login()
    progress.secret(login.password)
    run_program(
        tool,
        login_argv(tool, login.registry, login.username),
        timeout=60,
        on_line=lambda line: progress.detail(tool, line),
        cwd=Path(project.root),
        stdin=login.password,
    )
    return Result(
        command="ecr-login",
        outcome="logged-in",
        env=env.name,
        message=f"{tool} is logged in to {login.registry} for 12 hours (the ECR credential's lifetime)",
    )
