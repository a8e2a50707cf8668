"""GitHub Actions: the event decides (pure, with real-shaped payloads), and the tool reports
like a native step (step summary, outputs, annotations, masks) through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from releasegate.core.config import load_environments, load_project
from releasegate.core.errors import BadInput
from releasegate.github.actions import ActionsReport, decide
from tests.emulators.stack import Stack

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = {"id": 42, "full_name": "acme/model-api", "name": "model-api", "owner": {"login": "acme"}}
SENDER = {"login": "octocat", "id": 1, "type": "User"}


def dispatch(tag: str, confirm: str, branch: str) -> dict[str, Any]:
    inputs = {"confirm": confirm, "tag": tag}
    workflow = ".github/workflows/deploy.yml"
    return {
        "inputs": inputs,
        "ref": f"refs/heads/{branch}",
        "repository": REPOSITORY,
        "sender": SENDER,
        "workflow": workflow,
    }


def released(tag: str, action: str = "published") -> dict[str, Any]:
    url = f"https://github.com/acme/model-api/releases/tag/{tag}"
    release = {"id": 1, "tag_name": tag, "name": tag, "draft": False, "prerelease": False, "html_url": url}
    return {"action": action, "release": release, "repository": REPOSITORY, "sender": SENDER}


ENVIRONMENTS = load_environments(load_project(ROOT))


def test_dispatch_on_main_goes_to_prod_with_its_inputs() -> None:
    decision = decide("workflow_dispatch", dispatch("v1.4.2", "y", "main"), "main", ENVIRONMENTS)
    assert (decision.env, decision.tag, decision.confirm) == ("prod", "v1.4.2", "y")


def test_dispatch_on_develop_goes_to_nonprod() -> None:
    assert (
        decide("workflow_dispatch", dispatch("v1.4.2", "n", "develop"), "develop", ENVIRONMENTS).env
        == "nonprod"
    )


def test_release_published_goes_to_nonprod_confirmed() -> None:
    decision = decide("release", released("v1.5.0"), "v1.5.0", ENVIRONMENTS)
    assert (decision.env, decision.tag, decision.confirm) == ("nonprod", "v1.5.0", "y")


@pytest.mark.parametrize(
    ("event", "payload", "branch", "message"),
    [
        ("workflow_dispatch", dispatch("v1.4.2", "y", "feature/x"), "feature/x", "maps to no environment"),
        ("release", released("v1.5.0", action="created"), "v1.5.0", "action 'created'"),
        ("push", {"ref": "refs/heads/main"}, "main", "the push event does not say what to deploy"),
    ],
)
def test_other_events_are_bad_input(event: str, payload: dict[str, Any], branch: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        decide(event, payload, branch, ENVIRONMENTS)


def actions_env(stack: Stack, event: str, payload: dict[str, Any], branch: str) -> dict[str, str]:
    event_file = stack.workdir / "event.json"
    event_file.write_text(json.dumps(payload))
    for name in ("summary.md", "output.txt"):
        (stack.workdir / name).write_text("")
    return {
        "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": event, "GITHUB_EVENT_PATH": str(event_file),
        "GITHUB_REF_NAME": branch, "GITHUB_STEP_SUMMARY": str(stack.workdir / "summary.md"),
        "GITHUB_OUTPUT": str(stack.workdir / "output.txt"), "GITHUB_REPOSITORY": "acme/model-api",
        "GITHUB_RUN_ID": "4242", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_ACTOR": "octocat",
    }  # fmt: skip


def outputs(stack: Stack) -> dict[str, str]:
    lines = (stack.workdir / "output.txt").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


@pytest.mark.e2e
def test_dispatch_y_on_main_deploys_prod_and_reports_like_a_step(stack: Stack) -> None:
    digest = stack.publish("v1.4.2")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 0  # promotion
    run = stack.releasegate(
        "deploy", **actions_env(stack, "workflow_dispatch", dispatch("v1.4.2", "y", "main"), "main")
    )
    assert run.exit_code == 0, run.stderr
    assert "workflow_dispatch on main: v1.4.2 to prod" in run.stderr
    assert len(stack.kube.list("Pod", "model-api-prod")) == 3
    assert outputs(stack) == {
        "tag": "v1.4.2",
        "digest": digest,
        "namespace": "model-api-prod",
        "outcome": "success",
    }
    summary = (stack.workdir / "summary.md").read_text()
    for expected in ("| Environment | prod (`model-api-prod`) |", f"`{digest}`", "| Pods ready | 3/3 |",
                     "✅ success", "https://github.com/acme/model-api/actions/runs/4242"):  # fmt: skip
        assert expected in summary
    token = stack.ecr.authorization_token()
    for written in (run.stdout, run.stderr, summary, (stack.workdir / "output.txt").read_text()):
        assert token not in written and (stack.github.token or "") not in written


def test_workflow_commands_go_to_stderr_and_outputs_are_single_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # `--json` must print exactly one object on stdout, in Actions too: the runner reads
    # workflow commands from both streams.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "output.txt"))
    report = ActionsReport()
    report.mask("s3cr3t")
    report.error("it failed")
    report.outputs({"outcome": "failed\r\nforged=1"})
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["::add-mask::s3cr3t", "::error title=releasegate::it failed"]
    assert (tmp_path / "output.txt").read_text() == "outcome=failed  forged=1\n"


@pytest.mark.e2e
def test_dispatch_n_changes_nothing(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate(
        "deploy", **actions_env(stack, "workflow_dispatch", dispatch("v1.4.2", "n", "main"), "main")
    )
    assert run.exit_code == 0 and "skipped" in run.stdout
    assert stack.kube.requests == [] and stack.github.requests == []


@pytest.mark.e2e
def test_dispatch_on_an_unmapped_branch_exits_2(stack: Stack) -> None:
    env = actions_env(stack, "workflow_dispatch", dispatch("v1.4.2", "y", "feature/x"), "feature/x")
    run = stack.releasegate("deploy", **env)
    assert run.exit_code == 2
    assert "branch 'feature/x' maps to no environment" in run.last_line and "Next: " in run.last_line
    assert "::error title=releasegate::branch 'feature/x' maps to no environment" in run.stderr


@pytest.mark.e2e
def test_release_published_deploys_nonprod(stack: Stack) -> None:
    stack.publish("v1.5.0")
    run = stack.releasegate("deploy", **actions_env(stack, "release", released("v1.5.0"), "v1.5.0"))
    assert run.exit_code == 0, run.stderr
    assert "release published: v1.5.0 to nonprod" in run.stderr
    assert outputs(stack)["namespace"] == "model-api-nonprod"


@pytest.mark.e2e
def test_a_failed_deploy_annotates_and_summarises_the_failure(stack: Stack) -> None:
    stack.publish("v1.4.2")
    stack.kube.controller.scenarios["v1.4.2"] = "crashloop"
    env = actions_env(stack, "release", released("v1.4.2"), "v1.4.2")
    run = stack.releasegate("deploy", **env)
    assert run.exit_code == 5
    assert "::error title=releasegate::v1.4.2 did not become Ready in nonprod" in run.stderr
    assert outputs(stack)["outcome"] == "failure"
    summary = (stack.workdir / "summary.md").read_text()
    assert "❌ failure" in summary and "CrashLoopBackOff" in summary


@pytest.mark.e2e
def test_event_command_writes_the_environment_for_the_deploy_job(stack: Stack) -> None:
    run = stack.releasegate(
        "event", **actions_env(stack, "workflow_dispatch", dispatch("v2.0.0", "y", "main"), "main")
    )
    assert run.exit_code == 0, run.stderr
    assert outputs(stack) == {"environment": "prod", "tag": "v2.0.0", "confirm": "y"}
    assert stack.github.requests == [] and stack.kube.requests == []
    outside = stack.releasegate("event")
    assert outside.exit_code == 2 and "GitHub Actions" in outside.last_line


def deployment_states(stack: Stack) -> list[tuple[str, str, list[str]]]:
    github = stack.github
    return [(d["ref"], d["environment"], [s["state"] for s in reversed(github.statuses[d["id"]])])
            for d in reversed(github.deployments)]  # fmt: skip


@pytest.mark.e2e
def test_each_deploy_is_recorded_as_a_github_deployment(stack: Stack) -> None:
    stack.publish("v1.4.2")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 0
    run = stack.releasegate(
        "deploy", **actions_env(stack, "workflow_dispatch", dispatch("v1.4.2", "y", "main"), "main")
    )
    assert run.exit_code == 0, run.stderr
    assert deployment_states(stack) == [
        ("v1.4.2", "nonprod", ["in_progress", "success"]),
        ("v1.4.2", "prod", ["in_progress", "success"]),
    ]
    latest = stack.github.statuses[stack.github.deployments[0]["id"]][0]
    assert latest["log_url"] == "https://github.com/acme/model-api/actions/runs/4242"


@pytest.mark.e2e
def test_a_rolled_back_deploy_is_failure_then_inactive(stack: Stack) -> None:
    stack.publish("v1.0.0")
    stack.publish("v1.1.0")
    stack.kube.controller.scenarios["v1.1.0"] = "crashloop"
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0").exit_code == 4
    assert deployment_states(stack) == [
        ("v1.0.0", "nonprod", ["in_progress", "success"]),
        ("v1.1.0", "nonprod", ["in_progress", "failure", "inactive"]),
    ]


@pytest.mark.e2e
def test_a_token_without_deployments_permission_warns_once_and_deploys(stack: Stack) -> None:
    stack.publish("v1.4.2")
    stack.github.faults.deployments_forbidden = True
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    assert run.stderr.count("could not record a GitHub deployment (403)") == 1
    assert "deployments: write" in run.stderr


def dispatched(client_payload: Any, event_type: str = "deploy") -> dict[str, Any]:
    """A repository_dispatch payload as GitHub sends it: the event_type is the action."""
    return {"action": event_type, "branch": "main", "client_payload": client_payload,
            "repository": REPOSITORY, "sender": SENDER, "installation": {"id": 7}}  # fmt: skip


@pytest.mark.e2e
def test_a_registry_dispatch_deploys_the_tag_to_the_environment_it_names(stack: Stack) -> None:
    stack.publish("v1.4.2")
    event = dispatched({"tag": "v1.4.2", "environment": "nonprod"})
    decided = stack.releasegate("event", **actions_env(stack, "repository_dispatch", event, "main"))
    assert decided.exit_code == 0, decided.stderr
    assert outputs(stack) == {"environment": "nonprod", "tag": "v1.4.2", "confirm": "y"}
    run = stack.releasegate("deploy", **actions_env(stack, "repository_dispatch", event, "main"))
    assert run.exit_code == 0, run.stderr
    assert "repository_dispatch deploy: v1.4.2 to nonprod" in run.stderr
    assert len(stack.kube.list("Pod", "model-api-nonprod")) == 2


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("event", "said"),
    [
        (dispatched({"tag": "v1.4.2", "environment": "nonprod"}, "ping"), "event_type 'ping'"),
        (dispatched(None), "must hold exactly tag and environment, not NoneType"),
        (dispatched({"tag": "v1.4.2"}), "must hold exactly tag and environment, not ['tag']"),
        (dispatched({"tag": "v1.4.2", "environment": "nonprod", "run": "x"}), "not ['environment', 'run'"),
        (dispatched({"tag": "v1.4.2", "environment": "staging"}), "environment 'staging' is not one of"),
        (dispatched({"tag": "v1.4.2", "environment": ["prod"]}), "environment list is not one of"),
        (dispatched({"tag": "v1.4.2; rm -rf /", "environment": "nonprod"}), "is not a semantic version"),
        (dispatched({"tag": "$(id)", "environment": "nonprod"}), "is not a semantic version"),
        (dispatched({"tag": "v1.4.2\nconfirm=y", "environment": "nonprod"}), "must be a release tag"),
        (dispatched({"tag": 142, "environment": "nonprod"}), "must be a release tag"),
    ],
)
def test_a_malformed_dispatch_is_exit_2_and_reaches_nothing(stack: Stack, event: Any, said: str) -> None:
    for command in ("event", "deploy"):
        run = stack.releasegate(command, **actions_env(stack, "repository_dispatch", event, "main"))
        assert run.exit_code == 2, run.stderr
        assert said in run.stderr
    assert (stack.workdir / "output.txt").read_text() == ""  # no step output for the deploy job
    assert stack.github.requests == [] and stack.kube.requests == []
