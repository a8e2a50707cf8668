"""status, history and rollback through the real CLI, reading the ledger in the cluster."""

from __future__ import annotations

import json

import pytest

from tests.emulators.stack import Stack

pytestmark = pytest.mark.e2e
NS = "model-api-nonprod"


def image_of(digest: str) -> str:
    return f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@{digest}"


def live_image(stack: Stack) -> str:
    return stack.kube.get("Deployment", NS, "model-api")["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.fixture
def three_releases(stack: Stack) -> dict[str, str]:
    digests = {}
    for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
        digests[tag] = stack.publish(tag)
        run = stack.releasegate("deploy", "--env", "nonprod", "--tag", tag, GITHUB_ACTOR="octocat")
        assert run.exit_code == 0, run.stderr
    return digests


def test_history_lists_every_attempt_newest_first(stack: Stack, three_releases: dict[str, str]) -> None:
    stack.publish("v1.3.0")
    stack.kube.controller.scenarios["v1.3.0"] = "crashloop"
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.3.0").exit_code == 4
    run = stack.releasegate("--json", "history", "--env", "nonprod")
    rows = [(r["revision"], r["tag"], r["outcome"]) for r in json.loads(run.stdout)["history"]]
    assert rows == [
        (5, "v1.2.0", "deployed"), (4, "v1.3.0", "failed"), (3, "v1.2.0", "deployed"),
        (2, "v1.1.0", "deployed"), (1, "v1.0.0", "deployed"),
    ]  # fmt: skip
    table = stack.releasegate("history", "--env", "nonprod").stdout
    assert "restored after revision 4 (v1.3.0) failed" in table and "octocat" in table


def test_status_shows_the_serving_release_and_pods(stack: Stack, three_releases: dict[str, str]) -> None:
    run = stack.releasegate("--json", "status", "--env", "nonprod")
    assert run.exit_code == 0, run.stderr
    status = json.loads(run.stdout)
    assert (status["tag"], status["digest"], status["pods_ready"], status["drift"]) == (
        "v1.2.0", three_releases["v1.2.0"], "2/2", None
    )  # fmt: skip
    text = stack.releasegate("status", "--env", "nonprod").stdout
    assert "v1.2.0, deployed" in text and "by octocat" in text and "pods Ready: 2/2" in text


def test_status_shows_drift_after_an_out_of_band_change(stack: Stack, three_releases: dict[str, str]) -> None:
    deployment = stack.kube.get("Deployment", NS, "model-api")
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = image_of(three_releases["v1.0.0"])
    stack.kube.put(deployment)  # someone ran `kubectl set image`
    status = json.loads(stack.releasegate("--json", "status", "--env", "nonprod").stdout)
    assert status["drift"] and "ledger says v1.2.0" in status["drift"]
    assert "DRIFT" in stack.releasegate("status", "--env", "nonprod").stdout


def test_rollback_goes_back_to_the_previous_good_release(
    stack: Stack, three_releases: dict[str, str]
) -> None:
    run = stack.releasegate("rollback", "--env", "nonprod")
    assert run.exit_code == 0, run.stderr
    assert "v1.1.0 is live in nonprod again (2/2 pods Ready)" in run.stdout
    assert live_image(stack) == image_of(three_releases["v1.1.0"])
    assert "✓ restore" in run.stderr and "✓ verify" in run.stderr


def test_rollback_to_a_named_release(stack: Stack, three_releases: dict[str, str]) -> None:
    run = stack.releasegate("rollback", "--env", "nonprod", "--to", "v1.0.0")
    assert run.exit_code == 0, run.stderr
    assert live_image(stack) == image_of(three_releases["v1.0.0"])
    history = json.loads(stack.releasegate("--json", "history", "--env", "nonprod").stdout)["history"]
    assert history[0]["tag"] == "v1.0.0" and history[0]["note"] == "rollback to v1.0.0 (revision 1)"


def test_rollback_to_a_tag_not_in_the_ledger_is_refused(stack: Stack, three_releases: dict[str, str]) -> None:
    run = stack.releasegate("rollback", "--env", "nonprod", "--to", "v0.9.0")
    assert run.exit_code == 3
    assert "v0.9.0 is not a good release in the nonprod ledger" in run.last_line
    assert "good releases: v1.2.0, v1.1.0, v1.0.0" in run.last_line
    assert live_image(stack) == image_of(three_releases["v1.2.0"])


def test_rollback_with_nothing_recorded_is_refused(stack: Stack) -> None:
    run = stack.releasegate("rollback", "--env", "nonprod")
    assert run.exit_code == 3 and "no earlier good release" in run.last_line


def test_downgrade_is_refused_unless_allowed(stack: Stack, three_releases: dict[str, str]) -> None:
    refused = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0")
    assert refused.exit_code == 3
    assert "v1.0.0 is older than v1.2.0" in refused.last_line and "--allow-downgrade" in refused.last_line
    allowed = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0", "--allow-downgrade")
    assert allowed.exit_code == 0, allowed.stderr


def test_redeploying_the_serving_version_says_so(stack: Stack, three_releases: dict[str, str]) -> None:
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.2.0")
    assert run.exit_code == 0
    assert "v1.2.0 is already the release serving nonprod: redeploying it" in run.stderr
