"""Bad input never crashes and never reaches skaffold or the cluster.

Hypothesis drives the CLI in-process (typer's runner, the real command code, the emulators
over HTTP); the injection corpus runs through the real `releasegate` process.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from releasegate.app import app
from tests.emulators.stack import Stack
from tests.test_version import INJECTIONS

RUNNER = CliRunner()
ENVS = st.one_of(st.sampled_from(["nonprod", "prod"]), st.text(max_size=20))
TAGS = st.one_of(
    st.text(max_size=40), st.from_regex(r"v[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}(-rc\.[0-9])?", fullmatch=True)
)
CONFIRMS = st.one_of(st.none(), st.sampled_from(["y", "n", "Y", "no"]), st.text(max_size=8))


def invoke(stack: Stack, *args: str) -> int:
    environment = {k: v for k, v in stack.env().items() if k != "HOME"}
    result = RUNNER.invoke(app, ["--project-dir", str(stack.project), *args], env=environment)
    return int(result.exit_code)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=ENVS, tag=TAGS, confirm=CONFIRMS)
def test_deploy_inputs_never_crash_and_never_touch_the_cluster(
    stack: Stack, env: str, tag: str, confirm: str | None
) -> None:
    args = ["deploy", "--env", env, "--tag", tag] + (["--confirm", confirm] if confirm is not None else [])
    code = invoke(stack, *args)
    assert code in (0, 2, 3), (args, code)  # nothing published: at best skipped or refused
    assert stack.kube.writes() == []
    assert not (stack.workdir / "project" / "build").exists() or code == 3


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=ENVS, to=st.one_of(st.none(), TAGS))
def test_rollback_inputs_never_crash(stack: Stack, env: str, to: str | None) -> None:
    code = invoke(stack, "rollback", "--env", env, *(["--to", to] if to is not None else []))
    assert code in (2, 3)
    assert stack.kube.writes() == []


@pytest.mark.e2e
@pytest.mark.parametrize("attempt", [i for i in INJECTIONS if "\x00" not in i])
@pytest.mark.parametrize("flag", ["--tag", "--env", "--confirm"])
def test_injection_attempts_exit_2_through_the_real_cli(stack: Stack, flag: str, attempt: str) -> None:
    values = {"--env": "nonprod", "--tag": "v1.0.0", "--confirm": "y", flag: attempt}
    run = stack.releasegate("deploy", *[part for item in values.items() for part in item])
    assert run.exit_code == 2, (flag, attempt, run.stderr)
    assert run.last_line.startswith("error: ") and "Next: " in run.last_line
    assert stack.github.requests == [] and stack.kube.requests == []
