"""`releasegate metrics` through the real CLI: the four DORA keys from a ledger with known deploys,
failures and restores (written into the Kubernetes emulator as the ledger's ConfigMaps), and the
tags' commit times from the GitHub emulator's GraphQL API, against values computed by hand; the
request count for 100 releases; several clusters; a ledger shorter than --since."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from releasegate.core.errors import BadInput
from releasegate.core.metrics import band, since_hours
from tests.emulators.fleet import Fleet
from tests.emulators.kube import KubeEmulator
from tests.emulators.stack import Stack
from tests.test_waves import deploy as wave_deploy
from tests.test_waves import fleet  # noqa: F401 (a fixture)

NAMESPACE = "model-api-nonprod"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def now_is_when_the_test_starts() -> None:
    """Each test's records are written relative to its own start (the module may be imported
    minutes before a test runs)."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def ago(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours, minutes=minutes)


def record(
    kube: KubeEmulator, revision: int, tag: str, outcome: str, at: datetime, finished: datetime | None,
    restore: str = "", rollout: str = "", namespace: str = NAMESPACE,
) -> None:  # fmt: skip
    """One ledger record, written as the ConfigMap releasegate keeps it in."""
    data = dict(revision=str(revision), tag=tag, image=f"repo@sha256:{revision:064x}", commit="",
                actor="octocat", at=stamp(at), outcome=outcome, manifest_hash="sha256:00",
                finished=stamp(finished) if finished else "", restore=restore, rollout=rollout)  # fmt: skip
    labels = {"releasegate.dev/ledger": "model-api", "releasegate.dev/outcome": outcome}
    name = f"releasegate.model-api.v{revision}"
    kube.put({"apiVersion": "v1", "kind": "ConfigMap", "data": data,
              "metadata": {"name": name, "namespace": namespace, "labels": labels}})  # fmt: skip


def known_history(stack: Stack) -> None:
    """Nine records; by hand (window: the last 30 days):
    verified deploys v1.0.0 v1.2.0 v1.3.0 v1.4.0 = 4 → 4/30 per day (0.133, medium), 0.933/week;
    lead times 24.17 h, 2.1 h, 12.1 h, 24.08 h → median (12.1 + 24.083)/2 = 18.09 h (elite),
    p90 (nearest rank 4 of 4) 24.17 h; changed 6 (v1.6.0 still pending), failed 3 (v1.1.0 failed,
    v1.3.0 rolled back, v1.5.0 aborted) → 0.5 (low); restores 8 min, 23.9 h (v1.3.0 live
    at 5 d − 6 min, rolled back at 4 d), 30 min (the abort) → median 0.5 h (elite)."""
    kube = stack.kube
    record(kube, 1, "v0.9.0", "deployed", ago(days=40), ago(days=40))  # before the window
    record(kube, 2, "v1.0.0", "deployed", ago(days=20), ago(days=20, minutes=-10))
    record(kube, 3, "v1.1.0", "failed", ago(days=15), ago(days=15, minutes=-5))
    record(kube, 4, "v1.0.0", "deployed", ago(days=15, minutes=-8), ago(days=15, minutes=-8), "after-failure")
    record(kube, 5, "v1.2.0", "deployed", ago(days=10), ago(days=10, minutes=-6))
    record(kube, 6, "v1.3.0", "deployed", ago(days=5), ago(days=5, minutes=-6))
    record(kube, 7, "v1.2.0", "deployed", ago(days=4), ago(days=4), "rollback")
    record(kube, 8, "v1.4.0", "deployed", ago(days=2), ago(days=2, minutes=-5))
    record(kube, 9, "v1.5.0", "aborted", ago(days=1), ago(days=1, minutes=-30))
    record(kube, 10, "v1.6.0", "pending", ago(hours=1), None)
    commits = {"v1.0.0": ago(days=21), "v1.2.0": ago(days=10, hours=2), "v1.3.0": ago(days=5, hours=12),
               "v1.4.0": ago(days=3), "v1.1.0": ago(days=16), "v1.5.0": ago(days=2)}  # fmt: skip
    for tag, when in commits.items():
        stack.github.add_release(tag, committed=stamp(when), annotated=tag == "v1.2.0")


@pytest.mark.e2e
def test_the_four_keys_match_the_hand_computed_values(stack: Stack) -> None:
    known_history(stack)
    run = stack.releasegate("--json", "metrics", "--env", "nonprod", "--since", "30d")
    assert run.exit_code == 0, run.stderr
    found = json.loads(run.stdout)
    assert found["deployment_frequency"] == {
        "verified": 4,
        "per_day": 0.133,
        "per_week": 0.933,
        "band": "medium",
    }
    lead = found["lead_time_hours"]
    assert (lead["median"], lead["p90"], lead["measured"], lead["band"]) == (18.09, 24.17, 4, "elite")
    assert found["change_failure_rate"] == {"rate": 0.5, "failed": 3, "deploys": 6, "band": "low"}
    restore = found["time_to_restore_hours"]
    assert (restore["median"], restore["restored"], restore["band"]) == (0.5, 3, "elite")
    assert [(d["tag"], d["outcome"]) for d in found["deploys"]] == [
        ("v1.0.0", "deployed"), ("v1.1.0", "failed"), ("v1.2.0", "deployed"), ("v1.3.0", "rolled-back"),
        ("v1.4.0", "deployed"), ("v1.5.0", "aborted"), ("v1.6.0", "pending"),
    ]  # fmt: skip
    window_from = datetime.fromisoformat(found["window"]["from"].replace("Z", "+00:00"))
    assert abs(window_from - ago(days=30)) < timedelta(minutes=1)
    assert found["window"]["covered_from"] == found["window"]["from"]
    assert len(stack.github.graphql_requests()) == 1  # every tag's commit in one request
    text = stack.releasegate("metrics", "--env", "nonprod")
    assert "4 verified deploys (0.933/week, medium)" in text.stdout
    assert "change failure rate 50% (low)" in text.stdout


@pytest.mark.e2e
def test_a_hundred_releases_cost_one_github_request(stack: Stack) -> None:
    for n in range(100):
        at = ago(days=25, hours=-n * 5)
        record(stack.kube, n + 1, f"v1.{n}.0", "deployed", at, at + timedelta(minutes=4))
        stack.github.add_release(f"v1.{n}.0", committed=stamp(at - timedelta(hours=3)))
    run = stack.releasegate("--json", "metrics", "--env", "nonprod", "--since", "30d")
    assert run.exit_code == 0, run.stderr
    found = json.loads(run.stdout)
    assert found["lead_time_hours"]["measured"] == 100
    assert found["lead_time_hours"]["median"] == pytest.approx(3.07, abs=0.01)
    assert len(stack.github.graphql_requests()) == 1
    assert stack.github.api_requests() == []  # nothing through REST, nothing per release


@pytest.mark.e2e
def test_a_ledger_shorter_than_since_says_how_far_it_reaches(stack: Stack) -> None:
    """A ledger holding as many records as it keeps has dropped older ones: the figures cover
    only what it holds, and the run says so."""
    from releasegate.kube.ledger import KEEP

    for n in range(KEEP):
        at = ago(days=10, hours=-n)
        record(stack.kube, n + 1, f"v2.{n}.0", "deployed", at, at)
    run = stack.releasegate("--json", "metrics", "--env", "nonprod", "--since", "90d", GITHUB_TOKEN="")
    assert run.exit_code == 0, run.stderr
    found = json.loads(run.stdout)
    assert found["window"]["covered_from"] == stamp(ago(days=10))
    assert f"the ledger reaches back only to {stamp(ago(days=10))} (it keeps the last {KEEP}" in run.stderr
    assert found["deployment_frequency"]["per_day"] == pytest.approx(KEEP / 10, abs=0.01)
    assert "lead time unknown: GitHub's GraphQL API needs GITHUB_TOKEN" in run.stderr
    assert stack.github.graphql_requests() == []


@pytest.mark.e2e
def test_bad_since_is_exit_2_before_any_request(stack: Stack) -> None:
    run = stack.releasegate("metrics", "--env", "nonprod", "--since", "a month")
    assert run.exit_code == 2
    assert "--since must be a length such as 30d" in run.stderr
    assert stack.github.requests == [] and stack.kube.requests == []


def test_since_and_bands_at_their_edges() -> None:
    assert since_hours("30d") == 720 and since_hours("2w") == 336 and since_hours("12h") == 12
    with pytest.raises(BadInput):
        since_hours("0d")
    assert band("deployment_frequency", 1.0, at_least=True) == "elite"
    assert band("deployment_frequency", 0.99, at_least=True) == "high"
    assert band("deployment_frequency", 1 / 30, at_least=True) == "medium"
    assert band("deployment_frequency", 1 / 31, at_least=True) == "low"
    assert band("lead_time_hours", 23.99) == "elite" and band("lead_time_hours", 24.0) == "high"
    assert band("change_failure_rate", 0.05) == "elite" and band("change_failure_rate", 0.0501) == "high"
    assert band("change_failure_rate", 0.15) == "medium" and band("change_failure_rate", 0.16) == "low"
    assert band("time_to_restore_hours", 0.99) == "elite" and band("time_to_restore_hours", 168.0) == "low"


@pytest.mark.e2e
def test_a_release_across_clusters_counts_once_and_its_failure_once(fleet: Fleet) -> None:  # noqa: F811
    """Real deploys in waves write the records: v1.0.0 everywhere, then v1.1.0 crash-looping in
    one cluster and put back in all three. One deploy each, not three; one failure."""
    fleet.publish("v1.0.0")
    assert wave_deploy(fleet, "v1.0.0").exit_code == 0
    fleet.publish("v1.1.0")
    fleet.member("ap-southeast-1").kube.controller.scenarios["v1.1.0"] = "crashloop"
    assert wave_deploy(fleet, "v1.1.0").exit_code == 4
    run = fleet.stack.releasegate("--json", "metrics", "--env", "nonprod")
    assert run.exit_code == 0, run.stderr
    found = json.loads(run.stdout)
    assert [(d["tag"], d["outcome"], len(d["clusters"])) for d in found["deploys"]] == [
        ("v1.0.0", "deployed", 3), ("v1.1.0", "failed", 3),
    ]  # fmt: skip
    assert found["change_failure_rate"]["rate"] == 0.5
    assert found["time_to_restore_hours"]["restored"] == 1
    assert 0 <= found["time_to_restore_hours"]["median"] < 0.1  # put back within the same run
    assert found["lead_time_hours"]["measured"] == 1


@pytest.mark.e2e
def test_in_actions_the_step_summary_holds_the_table(stack: Stack) -> None:
    known_history(stack)
    summary = stack.workdir / "summary.md"
    summary.write_text("")
    run = stack.releasegate(
        "metrics", "--env", "nonprod", GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary)
    )
    assert run.exit_code == 0, run.stderr
    written = summary.read_text()
    assert "| Key | Value | DORA band |" in written
    assert "| Change failure rate | 50% (3 of 6) | low |" in written
    assert "| Lead time for changes | median 18.09 h, p90 24.17 h | elite |" in written
