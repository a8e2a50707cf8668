from __future__ import annotations

import json

import pytest

from releasegate.core.errors import NeedsAttention
from releasegate.report import Console
from releasegate.run import Result


def test_secrets_are_masked_on_every_stream(capsys: pytest.CaptureFixture[str]) -> None:
    console = Console()
    console.secret("s3cr3t-token")
    console.detail("skaffold", "auth s3cr3t-token used")
    console.failure(NeedsAttention("failed with s3cr3t-token", "rotate s3cr3t-token"), "deploy")
    out, err = capsys.readouterr()
    assert "s3cr3t-token" not in out + err and err.count("***") == 3


def test_json_mode_prints_exactly_one_object(capsys: pytest.CaptureFixture[str]) -> None:
    console = Console(as_json=True)
    console.stage("validate", "ok", 0.1)
    console.result(Result(command="deploy", outcome="deployed", env="nonprod", tag="v1.0.0"))
    out, err = capsys.readouterr()
    assert json.loads(out) == {**json.loads(out), "outcome": "deployed", "exit_code": 0}
    assert out.count("\n") == 1 and "validate" in err


def test_failure_ends_with_one_line_cause_and_next_step(capsys: pytest.CaptureFixture[str]) -> None:
    Console().failure(NeedsAttention("pods crash", "fix it", details=("pod a: CrashLoopBackOff",)), "deploy")
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "error: pods crash. Next: fix it" and err[0] == "  pod a: CrashLoopBackOff"


def test_json_failure_is_one_object_with_cause_hint_and_details(capsys: pytest.CaptureFixture[str]) -> None:
    Console(as_json=True).failure(NeedsAttention("pods crash", "fix it", details=("pod a",)), "deploy")
    out = json.loads(capsys.readouterr().out)
    assert out == {"command": "deploy", "outcome": "failed", "exit_code": 5,
                   "error": {"cause": "pods crash", "hint": "fix it", "details": ["pod a"]}}  # fmt: skip
