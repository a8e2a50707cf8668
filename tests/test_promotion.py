"""The promotion gate: prod takes only a tag verified in nonprod (GitHub deployments, or the
nonprod ledger when GitHub cannot answer), through the real CLI."""

from __future__ import annotations

import pytest

from tests.emulators.stack import Stack

pytestmark = pytest.mark.e2e
PROD = ("deploy", "--env", "prod", "--tag", "v1.4.2", "--confirm", "y")


def test_a_tag_never_verified_in_nonprod_is_refused(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate(*PROD)
    assert run.exit_code == 3
    assert (
        "v1.4.2 has not been verified in nonprod, so it cannot go to prod: it was never deployed to nonprod"
        in run.last_line
    )
    assert "Next: deploy v1.4.2 to nonprod first, or pass --skip-promotion-check" in run.last_line
    assert stack.kube.writes() == []


def test_a_tag_verified_in_nonprod_goes_to_prod(stack: Stack) -> None:
    stack.publish("v1.4.2")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 0
    run = stack.releasegate(*PROD)
    assert run.exit_code == 0, run.stderr
    assert "✓ promote  v1.4.2 was verified in nonprod (GitHub deployment" in run.stderr


def test_a_tag_that_failed_in_nonprod_is_refused_saying_so(stack: Stack) -> None:
    stack.publish("v1.4.2")
    stack.kube.controller.scenarios["v1.4.2"] = "crashloop"
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 5
    run = stack.releasegate(*PROD)
    assert run.exit_code == 3
    assert "its last nonprod deployment ended in failure" in run.last_line


def test_without_github_deployments_the_nonprod_ledger_decides(stack: Stack) -> None:
    stack.publish("v1.4.2")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 0
    stack.github.faults.deployments_unavailable = True
    run = stack.releasegate(*PROD)
    assert run.exit_code == 0, run.stderr
    assert "checking the nonprod ledger instead" in run.stderr
    assert "was verified in nonprod (ledger revision 1" in run.stderr


def test_the_check_can_be_skipped_and_says_so(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate(*PROD, "--skip-promotion-check")
    assert run.exit_code == 0, run.stderr
    assert "--skip-promotion-check: not checking that v1.4.2 was verified first" in run.stderr


def test_check_command_applies_the_gate(stack: Stack) -> None:
    stack.publish("v1.4.2")
    assert stack.releasegate("check", "--env", "prod", "--tag", "v1.4.2").exit_code == 3
