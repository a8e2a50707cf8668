"""The release ledger: pure encoding, and the Ledger against the Kubernetes emulator."""

from __future__ import annotations

import kubernetes_validate
import pytest

from releasegate.kube.api import Cluster
from releasegate.kube.ledger import (
    DEPLOYED,
    FAILED,
    KEEP,
    PENDING,
    Ledger,
    Record,
    from_config_map,
    serving,
    to_config_map,
)
from tests.emulators.kube import KubeEmulator

IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@sha256:" + "ab" * 32


def record(revision: int, tag: str = "v1.0.0", outcome: str = DEPLOYED) -> Record:
    return Record(revision, tag, IMAGE, "abc123", "octocat", "2026-11-22T10:00:00Z", outcome, "sha256:00", "")


def test_a_record_round_trips_through_a_valid_config_map() -> None:
    original = record(7, "v1.4.2+build.1", FAILED)
    config_map = to_config_map(original, "model-api", "model-api-prod")
    kubernetes_validate.validate(config_map, "1.33.0", strict=True)
    assert config_map["metadata"]["name"] == "releasegate.model-api.v7"
    assert from_config_map(config_map) == original
    assert original.digest == "sha256:" + "ab" * 32


def test_serving_is_the_newest_deployed_record() -> None:
    records = [record(4, "v1.3.0", PENDING), record(3, "v1.2.0", FAILED), record(2, "v1.1.0"), record(1)]
    assert serving(records) == records[2]
    assert serving([record(1, outcome=FAILED)]) is None


@pytest.fixture
def ledger(kube: KubeEmulator, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    return Ledger(Cluster(None), "model-api-prod", "model-api")


def test_append_numbers_revisions_and_keeps_the_last_hundred(ledger: Ledger) -> None:
    for n in range(KEEP + 3):
        ledger.append(tag=f"v1.0.{n}", image=IMAGE, commit="", outcome=DEPLOYED, manifest_hash="sha256:00")
    revisions = [r.revision for r in ledger.records()]
    assert KEEP == 100 and revisions == list(range(KEEP + 3, 3, -1))
    assert ledger.records()[0].actor == "octocat"


def test_mark_updates_the_outcome(ledger: Ledger) -> None:
    pending = ledger.append(tag="v1.0.0", image=IMAGE, commit="", outcome=PENDING, manifest_hash="sha256:00")
    ledger.mark(pending, FAILED, "CrashLoopBackOff")
    (stored,) = ledger.records()
    assert (stored.outcome, stored.note) == (FAILED, "CrashLoopBackOff")
