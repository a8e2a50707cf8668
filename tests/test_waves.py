"""One release across several clusters, in waves: through the real CLI, against one
Kubernetes emulator per cluster (each its own API server) and ECR in each cluster's region."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.fleet import Fleet
from tests.emulators.stack import Stack
from tests.emulators.webhooks import WebhookReceiver
from tests.test_faults import SAME_RUN, interrupted
from tests.test_notify import notified, receiver  # noqa: F401 (fixture)
from tests.test_pictures import BLOCK, parse
from tests.test_smoke import quick_checks

pytestmark = pytest.mark.e2e
NS = "model-api-nonprod"
THREE = [
    ("eu-west-1", "eu-west-1", 1),
    ("us-east-1", "us-east-1", 2),
    ("ap-southeast-1", "ap-southeast-1", 2),
]


@pytest.fixture
def fleet(stack: Stack) -> Iterator[Fleet]:
    quick_checks(stack)
    running = Fleet(stack, THREE, {"max_parallel": 0, "on_failure": "rollback"})
    yield running
    running.stop()


def deploy(fleet: Fleet, tag: str, *args: str, **env: str) -> Any:
    return fleet.stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag, *args, **env)


def v1_live_then_v1_1_slow_in(fleet: Fleet, name: str, seconds: float) -> str:
    """v1.0.0 live everywhere (its digest returned); v1.1.0 published, its pods in cluster
    ``name`` Ready only ``seconds`` after they start."""
    old = fleet.publish("v1.0.0")
    assert deploy(fleet, "v1.0.0").exit_code == 0
    fleet.publish("v1.1.0")
    slow = fleet.member(name).kube.controller
    slow.scenarios["v1.1.0"], slow.slow_seconds = "slow", seconds
    return old


def image_in(fleet: Fleet, name: str) -> str:
    deployment = fleet.member(name).kube.get("Deployment", NS, "model-api")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def pinned(region: str, digest: str) -> str:
    return f"123456789012.dkr.ecr.{region}.amazonaws.com/model-api@{digest}"


def outcomes(result: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["outcome"] for c in result["clusters"]}


def test_a_release_reaches_every_cluster_wave_by_wave_pinned_to_its_region(fleet: Fleet) -> None:
    digest = fleet.publish("v1.0.0")
    run = deploy(fleet, "v1.0.0")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert outcomes(result) == dict.fromkeys(("eu-west-1", "us-east-1", "ap-southeast-1"), "deployed")
    assert [(c["name"], c["wave"], c["revision"]) for c in result["clusters"]] == [
        ("eu-west-1", 1, 1), ("us-east-1", 2, 1), ("ap-southeast-1", 2, 1),
    ]  # fmt: skip
    for member in fleet.members:  # each cluster pulls from its own region's registry, same digest
        assert image_in(fleet, member.name) == pinned(member.region, digest)
    rollouts = {r["data"]["rollout"] for m in fleet.members for r in ledger_records_of(m.kube)}
    assert len(rollouts) == 1 and rollouts != {""}  # one deploy's records share its id
    environments = sorted(d["environment"] for d in fleet.stack.github.deployments)
    assert environments == ["nonprod/ap-southeast-1", "nonprod/eu-west-1", "nonprod/us-east-1"]
    lines = run.stderr.splitlines()
    assert any(line.startswith("✓ [us-east-1] verify") for line in lines), run.stderr
    wave_two = next(n for n, line in enumerate(lines) if "wave 2 (2 of 2)" in line)
    first_in_two = next(n for n, line in enumerate(lines) if line.startswith("✓ [us-east-1] deploy"))
    last_in_one = max(n for n, line in enumerate(lines) if line.startswith("✓ [eu-west-1] smoke"))
    assert last_in_one < wave_two < first_in_two  # wave 2 starts once wave 1 is verified


def ledger_records_of(kube: Any) -> list[dict[str, Any]]:
    return [
        c for c in kube.list("ConfigMap", NS) if "releasegate.dev/ledger" in c["metadata"].get("labels", {})
    ]


def test_a_crash_loop_in_wave_two_puts_back_wave_two_and_wave_one(fleet: Fleet) -> None:
    old = fleet.publish("v1.0.0")
    assert deploy(fleet, "v1.0.0").exit_code == 0
    fleet.publish("v1.1.0")
    fleet.member("ap-southeast-1").kube.controller.scenarios["v1.1.0"] = "crashloop"
    run = deploy(fleet, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    failure = json.loads(run.stdout)
    assert outcomes(failure) == {
        "eu-west-1": "rolled_back",
        "us-east-1": "rolled_back",
        "ap-southeast-1": "failed",
    }
    assert "ap-southeast-1:" in run.last_line and "every changed cluster was put back" in run.last_line
    for member in fleet.members:  # each verified again on its own cluster
        assert image_in(fleet, member.name) == pinned(member.region, old)
        assert member.kube.get("Lease", NS, "releasegate-model-api") is None
    put_back = [line for line in run.stderr.splitlines() if "putting back" in line]
    # wave 2's other cluster (put back after the failure, or stopped mid-rollout), then wave 1
    assert put_back[-1].startswith("! putting back eu-west-1:"), put_back


def test_on_failure_halt_leaves_the_earlier_waves_on_the_release(fleet: Fleet) -> None:
    path = fleet.stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text().replace("on_failure: rollback", "on_failure: halt"))
    fleet.publish("v1.0.0")
    assert deploy(fleet, "v1.0.0").exit_code == 0
    new = fleet.publish("v1.1.0")
    fleet.member("us-east-1").kube.controller.scenarios["v1.1.0"] = "crashloop"
    run = deploy(fleet, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert outcomes(json.loads(run.stdout)) == {
        "eu-west-1": "deployed", "us-east-1": "failed", "ap-southeast-1": "rolled_back",
    }  # fmt: skip
    assert image_in(fleet, "eu-west-1") == pinned("eu-west-1", new)


def test_a_lock_held_on_one_cluster_refuses_the_whole_run_before_any_change(fleet: Fleet) -> None:
    fleet.publish("v1.0.0")
    held = fleet.member("us-east-1").kube
    held.put({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
              "metadata": {"name": "releasegate-model-api", "namespace": NS},
              "spec": {"holderIdentity": "someone@elsewhere", "leaseDurationSeconds": 3600,
                       "renewTime": "2099-01-01T00:00:00.000000Z"}})  # fmt: skip
    run = deploy(fleet, "v1.0.0")
    assert run.exit_code == 3, run.stderr
    assert "us-east-1:" in run.last_line and "someone@elsewhere" in run.last_line
    for member in fleet.members:
        assert ledger_records_of(member.kube) == []
        assert member.kube.get("Deployment", NS, "model-api") is None
    for name in ("eu-west-1", "ap-southeast-1"):  # the locks it took are given back
        assert fleet.member(name).kube.get("Lease", NS, "releasegate-model-api") is None


def test_a_region_still_replicating_is_waited_for(fleet: Fleet) -> None:
    digest = fleet.publish("v1.0.0", skip_regions=("ap-southeast-1",))
    replicated = threading.Timer(2.0, lambda: fleet.stack.ecr.push("model-api", "v1.0.0", "ap-southeast-1"))
    replicated.start()
    run = deploy(fleet, "v1.0.0")
    replicated.join()
    assert run.exit_code == 0, run.stderr
    assert "not in ap-southeast-1 yet (replicating?)" in run.stderr
    assert image_in(fleet, "ap-southeast-1") == pinned("ap-southeast-1", digest)


def without_smoke(text: str) -> str:
    return re.sub(r"\nsmoke:\n(  .*\n)+", "\n", text)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda t: t.replace("name: ap-southeast-1", "name: us-east-1"), "clusters[2].name"),
        (
            lambda t: t.replace("kube_context: eks-us-east-1", "kube_context: eks-nowhere"),
            "clusters[1].kube_context",
        ),
        (lambda t: t.replace("wave: 2", "wave: 0", 1), "clusters[1].wave"),
        (lambda t: t.replace("max_parallel: 0", "max_parallel: -1"), "waves.max_parallel"),
        (lambda t: t + "strategy: {type: bluegreen, pause_before_switch: true}\n", "strategy"),
        (lambda t: without_smoke(t).replace("max_parallel: 0", "max_parallel: 0\n  bake: 60"), "waves.bake"),
    ],
)
def test_a_malformed_cluster_list_is_exit_2_naming_the_key(fleet: Fleet, edit: Any, named: str) -> None:
    path = fleet.stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(edit(path.read_text()))
    fleet.publish("v1.0.0")
    run = deploy(fleet, "v1.0.0")
    assert run.exit_code == 2, run.stderr
    assert named in run.last_line, run.last_line
    for member in fleet.members:
        assert member.kube.get("Deployment", NS, "model-api") is None


def test_sigint_in_wave_two_puts_back_every_cluster_and_exits_130(fleet: Fleet) -> None:
    old = v1_live_then_v1_1_slow_in(fleet, "ap-southeast-1", 30.0)  # still rolling out when interrupted
    run = interrupted(
        fleet.stack, ["--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0"],
        when=lambda line: line.startswith("  [ap-southeast-1] rollout |"),
    )  # fmt: skip
    assert run.exit_code == 130, run.stderr
    assert run.after_signal < 15, run.after_signal  # not the 30 s the slow rollout would take
    assert set(outcomes(json.loads(run.stdout)).values()) == {"rolled_back"}
    for member in fleet.members:
        assert image_in(fleet, member.name) == pinned(member.region, old)
        assert member.kube.get("Lease", NS, "releasegate-model-api") is None


def test_status_history_smoke_and_rollback_answer_for_every_cluster_or_one(fleet: Fleet) -> None:
    old = fleet.publish("v1.0.0")
    assert deploy(fleet, "v1.0.0").exit_code == 0
    new = fleet.publish("v1.1.0")
    assert deploy(fleet, "v1.1.0").exit_code == 0
    status = fleet.stack.releasegate("--json", "status", "--env", "nonprod")
    assert status.exit_code == 0, status.stderr
    answered = json.loads(status.stdout)
    assert [c["name"] for c in answered["clusters"]] == ["eu-west-1", "ap-southeast-1", "us-east-1"]
    assert all("v1.1.0" in c["message"] for c in answered["clusters"])
    history = fleet.stack.releasegate("history", "--env", "nonprod", "--cluster", "us-east-1")
    assert history.exit_code == 0, history.stderr
    rows = history.stdout.splitlines()
    assert rows[0].startswith("CLUSTER") and len([r for r in rows if r.startswith("us-east-1 ")]) == 2
    assert not any(r.startswith(("eu-west-1", "ap-southeast-1")) for r in rows)
    smoke = fleet.stack.releasegate("--json", "smoke", "--env", "nonprod")
    assert smoke.exit_code == 0, smoke.stderr
    assert {c["cluster"] for c in json.loads(smoke.stdout)["smoke"]} == {m.name for m in fleet.members}
    fleet.member("us-east-1").kube.proxy.apps.behaviours["v1.1.0"] = "unhealthy"
    failing = fleet.stack.releasegate("smoke", "--env", "nonprod")
    assert failing.exit_code == 5 and "us-east-1:" in failing.last_line, failing.stderr
    back = fleet.stack.releasegate("--json", "rollback", "--env", "nonprod", "--cluster", "eu-west-1")
    assert back.exit_code == 0, back.stderr
    assert image_in(fleet, "eu-west-1") == pinned("eu-west-1", old)
    assert image_in(fleet, "us-east-1") == pinned("us-east-1", new)  # only the one asked for
    unknown = fleet.stack.releasegate("status", "--env", "nonprod", "--cluster", "mars-1")
    assert unknown.exit_code == 2 and "use one of: eu-west-1, us-east-1, ap-southeast-1" in unknown.last_line


def test_recover_after_sigkill_puts_back_every_cluster_the_killed_run_changed(fleet: Fleet) -> None:
    old = v1_live_then_v1_1_slow_in(fleet, "ap-southeast-1", 30.0)
    killed = interrupted(  # a cancelled Actions run: its `if: cancelled()` step recovers in the same run
        fleet.stack, ["deploy", "--env", "nonprod", "--tag", "v1.1.0"],
        when=lambda line: line.startswith("  [ap-southeast-1] rollout |"), sent=signal.SIGKILL, **SAME_RUN,
    )  # fmt: skip
    assert killed.exit_code == -signal.SIGKILL
    assert image_in(fleet, "eu-west-1") != pinned("eu-west-1", old)  # wave 1 finished on v1.1.0
    run = fleet.stack.releasegate("--json", "recover", "--env", "nonprod", timeout=180, **SAME_RUN)
    assert run.exit_code == 0, run.stderr
    assert set(outcomes(json.loads(run.stdout)).values()) == {"recovered"}
    for member in fleet.members:
        assert image_in(fleet, member.name) == pinned(member.region, old)
        assert member.kube.get("Lease", NS, "releasegate-model-api") is None
    again = fleet.stack.releasegate("--json", "recover", "--env", "nonprod", **SAME_RUN)
    assert set(outcomes(json.loads(again.stdout)).values()) == {"nothing-to-recover"}


def test_the_step_summary_draws_a_row_per_cluster_wave_by_wave(fleet: Fleet, tmp_path: Path) -> None:
    fleet.publish("v1.0.0")
    summary = tmp_path / "summary.md"
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_RUN_ID": "9",
               "GITHUB_OUTPUT": str(tmp_path / "out"), "GITHUB_REPOSITORY": "acme/model-api"}  # fmt: skip
    run = fleet.stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0", **actions)
    assert run.exit_code == 0, run.stderr
    [timeline] = BLOCK.findall(summary.read_text())
    assert "section wave 1" in timeline and "section wave 2" in timeline
    rows = [line for line in timeline.splitlines() if " : " in line]
    assert [row.split()[0] for row in rows] == ["eu-west-1", "us-east-1", "ap-southeast-1"]
    assert all(" deployed (" in row for row in rows)
    assert [r["ok"] for r in parse([timeline])] == [True], parse([timeline])


def test_one_notification_per_run_names_every_cluster(fleet: Fleet, receiver: WebhookReceiver) -> None:  # noqa: F811
    urls = notified(fleet.stack, receiver)
    fleet.publish("v1.0.0")
    assert deploy(fleet, "v1.0.0", **urls).exit_code == 0
    fleet.publish("v1.1.0")
    fleet.member("us-east-1").kube.controller.scenarios["v1.1.0"] = "crashloop"
    assert deploy(fleet, "v1.1.0", **urls).exit_code == 4
    first, second = receiver.bodies("slack")
    assert "clusters eu-west-1 deployed, us-east-1 deployed, ap-southeast-1 deployed" in first["text"]
    assert "us-east-1 failed" in second["text"] and "eu-west-1 rolled_back" in second["text"]
    webhooks = receiver.bodies("webhook")
    assert len(webhooks) == 2 and [c["outcome"] for c in webhooks[1]["clusters"]] == [
        "rolled_back", "failed", "rolled_back",
    ]  # fmt: skip


def test_check_runs_every_clusters_pre_flight_and_changes_nothing(fleet: Fleet) -> None:
    fleet.publish("v1.0.0", skip_regions=("us-east-1",))
    fleet.stack.ecr.push("model-api", "v1.0.0", "us-east-1")  # there before the check asks
    run = fleet.stack.releasegate("--json", "check", "--env", "nonprod", "--tag", "v1.0.0")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["outcome"] == "checked"
    assert {line.split("]")[0] for line in run.stderr.splitlines() if line.startswith("✓ [")} == {
        "✓ [eu-west-1", "✓ [us-east-1", "✓ [ap-southeast-1",
    }  # fmt: skip
    fleet.member("us-east-1").kube.stop()  # its API server goes away
    down = fleet.stack.releasegate("check", "--env", "nonprod", "--tag", "v1.0.0")
    assert down.exit_code == 3 and down.last_line.startswith("error: us-east-1: "), down.stderr
    for member in fleet.members:
        if member.name != "us-east-1":
            assert member.kube.get("Lease", NS, "releasegate-model-api") is None
            assert ledger_records_of(member.kube) == []


def test_a_cluster_unreachable_mid_wave_is_named_exit_5_and_the_others_put_back(fleet: Fleet) -> None:
    old = v1_live_then_v1_1_slow_in(fleet, "us-east-1", 30.0)
    gone = fleet.member("us-east-1").kube
    process = subprocess.Popen(
        fleet.stack.argv("--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0"),
        env=fleet.stack.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("  [us-east-1] rollout |"):
            gone.stop()  # its API server goes away mid-rollout
            break
    out, rest = process.communicate(timeout=120)
    assert process.returncode == 5, rest
    assert "not known-good: us-east-1" in rest.strip().splitlines()[-1]
    assert outcomes(json.loads(out)) == {"eu-west-1": "rolled_back", "us-east-1": "unknown",
                                         "ap-southeast-1": "rolled_back"}  # fmt: skip
    for name in ("eu-west-1", "ap-southeast-1"):
        assert image_in(fleet, name) == pinned(fleet.member(name).region, old)


def test_max_parallel_one_deploys_a_waves_clusters_one_after_the_other(fleet: Fleet) -> None:
    path = fleet.stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text().replace("max_parallel: 0", "max_parallel: 1"))
    fleet.publish("v1.0.0")
    run = deploy(fleet, "v1.0.0")
    assert run.exit_code == 0, run.stderr
    lines = run.stderr.splitlines()
    first_done = max(n for n, line in enumerate(lines) if line.startswith("✓ [us-east-1] prune"))
    second_starts = min(n for n, line in enumerate(lines) if line.startswith("✓ [ap-southeast-1] deploy"))
    assert first_done < second_starts


def test_a_wave_failing_its_bake_is_put_back_and_the_next_wave_never_starts(fleet: Fleet) -> None:
    path = fleet.stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text().replace("max_parallel: 0", "max_parallel: 0\n  bake: 2"))
    old = fleet.publish("v1.0.0")
    assert deploy(fleet, "v1.0.0").exit_code == 0
    new = fleet.publish("v1.1.0")
    apps = fleet.member("eu-west-1").kube.proxy.apps
    apps.behaviours["v1.1.0"], apps.degrade_after = "degrading", 2  # its deploy's 2 checks pass
    run = deploy(fleet, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "while baking" in run.last_line
    assert outcomes(json.loads(run.stdout)) == {"eu-west-1": "rolled_back", "us-east-1": "untouched",
                                                "ap-southeast-1": "untouched"}  # fmt: skip
    assert image_in(fleet, "eu-west-1") == pinned("eu-west-1", old)
    assert image_in(fleet, "us-east-1") != pinned("us-east-1", new)


def test_a_dry_run_plans_every_cluster_and_changes_nothing(fleet: Fleet) -> None:
    fleet.publish("v1.0.0")
    run = deploy(fleet, "v1.0.0", "--dry-run")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["outcome"] == "planned"
    assert "wave 1: eu-west-1; wave 2: us-east-1, ap-southeast-1; nothing was changed" in result["message"]
    for member in fleet.members:
        assert member.kube.get("Deployment", NS, "model-api") is None
        assert member.kube.get("Lease", NS, "releasegate-model-api") is None


def test_a_failure_stops_the_waves_other_clusters_mid_rollout(fleet: Fleet) -> None:
    old = v1_live_then_v1_1_slow_in(fleet, "us-east-1", 60.0)  # would still be rolling out
    fleet.member("ap-southeast-1").kube.controller.scenarios["v1.1.0"] = "crashloop"
    started = time.monotonic()
    run = deploy(fleet, "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert time.monotonic() - started < 40  # not the 60 s us-east-1's rollout would take
    result = json.loads(run.stdout)
    assert outcomes(result) == {
        "eu-west-1": "rolled_back",
        "us-east-1": "rolled_back",
        "ap-southeast-1": "failed",
    }
    stopped = next(c for c in result["clusters"] if c["name"] == "us-east-1")
    assert stopped["message"].startswith("stopped when ap-southeast-1: v1.1.0 did not become Ready")
    assert run.last_line.startswith("error: ap-southeast-1: ")
    for member in fleet.members:
        assert image_in(fleet, member.name) == pinned(member.region, old)
