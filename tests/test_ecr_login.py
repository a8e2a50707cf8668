"""`releasegate ecr-login`: the ECR credential goes to docker or helm on stdin, never argv or output."""

from __future__ import annotations

import base64
import json
import stat
import sys
from pathlib import Path

import pytest

from tests.emulators.stack import Stack

pytestmark = pytest.mark.e2e


def recording_tool(bin_dir: Path, name: str) -> Path:
    """A `docker`/`helm` stand-in that records its argv and what it read on stdin."""
    record = bin_dir / f"{name}.json"
    script = bin_dir / name
    script.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'stdin': sys.stdin.read()}}, open({str(record)!r}, 'w'))\n"
        "print('Login Succeeded')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return record


REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    ("tool", "argv"),
    [
        ("docker", ["login", "--username", "AWS", "--password-stdin", REGISTRY]),
        ("helm", ["registry", "login", REGISTRY, "--username", "AWS", "--password-stdin"]),
    ],
)
def test_the_credential_reaches_the_tool_on_stdin_only(stack: Stack, tool: str, argv: list[str]) -> None:
    tools = stack.workdir / "tools"
    tools.mkdir()
    record = recording_tool(tools, tool)
    path = f"{tools}:{stack.env()['PATH']}"
    run = stack.releasegate("ecr-login", "--env", "nonprod", "--tool", tool, PATH=path)
    assert run.exit_code == 0, run.stderr
    password = base64.b64decode(stack.ecr.authorization_token()).decode().partition(":")[2]
    seen = json.loads(record.read_text())
    assert seen["argv"] == argv and seen["stdin"] == password
    assert password not in run.stdout + run.stderr
    assert f"{tool} is logged in to {REGISTRY}" in run.stdout
    assert stack.files_left_behind() == []


def test_a_missing_tool_is_refused(stack: Stack) -> None:
    run = stack.releasegate("ecr-login", "--env", "nonprod", "--tool", "docker", PATH="/usr/bin:/bin")
    assert run.exit_code == 3
    assert "docker not found on PATH" in run.last_line and "Next: " in run.last_line
