from __future__ import annotations

from pathlib import Path

import pytest

from releasegate.core.errors import Refused
from releasegate.deploy.process import ProgramFailed, run_program
from releasegate.deploy.skaffold import SkaffoldDeploy

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@sha256:" + "ab" * 32


def test_deploy_command_line_is_exact() -> None:
    spec = SkaffoldDeploy(Path("/p/skaffold.yaml"), "prod", "model-api-prod", IMAGE, kube_context="eks-prod")
    assert spec.argv() == [
        "deploy", "--filename", "/p/skaffold.yaml", "--profile", "prod", "--namespace", "model-api-prod",
        "--images", IMAGE, "--status-check=false", "--tail=false", "--interactive=false",
        "--update-check=false",
        "--kube-context", "eks-prod",
    ]  # fmt: skip


def test_no_kube_context_flag_when_none_is_configured() -> None:
    assert "--kube-context" not in SkaffoldDeploy(Path("s.yaml"), "nonprod", "ns", IMAGE).argv()


def test_output_is_streamed_line_by_line(tmp_path: Path) -> None:
    lines: list[str] = []
    run_program("printf", ["one\\ntwo\\n"], extra_env={}, timeout=10, on_line=lines.append, cwd=tmp_path)
    assert lines == ["one", "two"]


def test_extra_environment_reaches_the_program_not_its_argv(tmp_path: Path) -> None:
    lines: list[str] = []
    run_program("sh", ["-c", 'echo "$DOCKER_CONFIG"'], extra_env={"DOCKER_CONFIG": "/x"}, timeout=10,
                on_line=lines.append, cwd=tmp_path)  # fmt: skip
    assert lines == ["/x"]


def test_non_zero_exit_carries_command_exit_code_and_tail(tmp_path: Path) -> None:
    with pytest.raises(ProgramFailed) as caught:
        run_program(
            "sh", ["-c", "echo boom; exit 3"], extra_env={}, timeout=10, on_line=lambda _: None, cwd=tmp_path
        )
    assert caught.value.program_exit == 3 and caught.value.exit_code == 5
    assert caught.value.argv == ["sh", "-c", "echo boom; exit 3"] and caught.value.details == ("boom",)


def test_a_program_past_its_deadline_is_killed(tmp_path: Path) -> None:
    with pytest.raises(ProgramFailed, match="still running after 1s"):
        run_program("sleep", ["30"], extra_env={}, timeout=1, on_line=lambda _: None, cwd=tmp_path)


def test_missing_program_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Refused, match="not found on PATH"):
        run_program("no-such-skaffold", [], extra_env={}, timeout=1, on_line=lambda _: None, cwd=tmp_path)
