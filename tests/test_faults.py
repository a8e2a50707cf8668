"""The fault matrix: every fault in the engineering notes, through the real CLI process.

For each one: the contract's exit code, one line naming the cause and the next step, the
previous release still serving in the Kubernetes emulator (same image, pods Ready), the
deploy lock released, and no secret in any output or in any file left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tests.emulators.ecr import CREDENTIALS
from tests.emulators.stack import Project, Run, Stack, ledger_records
from tests.test_smoke import quick_checks

pytestmark = pytest.mark.e2e
NS = "model-api-nonprod"
LEASE = "releasegate-model-api"


@dataclass
class Baseline:
    tag: str
    image: str


@pytest.fixture
def baseline(stack: Stack) -> Baseline:
    """v1.0.0 deployed and Ready; v1.1.0 published, to be deployed under a fault."""
    digest = stack.publish("v1.0.0")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0")
    assert run.exit_code == 0, run.stderr
    stack.publish("v1.1.0")
    return Baseline("v1.0.0", f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@{digest}")


def assert_still_serving(stack: Stack, baseline: Baseline, deployment_name: str = "model-api") -> None:
    deployment = stack.kube.get("Deployment", NS, deployment_name)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == baseline.image
    ready = [
        p for p in stack.kube.list("Pod", NS)
        if p["spec"]["containers"][0]["image"] == baseline.image
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"]["conditions"])
    ]  # fmt: skip
    assert len(ready) >= deployment["spec"]["replicas"]


def assert_contract(
    stack: Stack, baseline: Baseline, run: Run, code: int, *words: str, serving: str = "model-api"
) -> None:
    assert run.exit_code == code, run.stderr
    last = run.last_line
    assert last.startswith("error: ") and "Next: " in last, last
    for word in words:
        assert word in last, last
    assert_still_serving(stack, baseline, serving)
    assert_lock_released_and_no_secret(stack, run)


def assert_lock_released_and_no_secret(stack: Stack, run: Run) -> None:
    assert stack.kube.get("Lease", NS, LEASE) is None
    secrets = [
        stack.ecr.authorization_token(),
        stack.github.token or "",
        CREDENTIALS["aws_secret_access_key"],
    ]
    for secret in secrets:
        assert secret not in run.stdout + run.stderr
    assert stack.files_left_behind() == []


@dataclass
class Fault:
    name: str
    code: int
    words: tuple[str, ...]
    arrange: Callable[[Stack], dict[str, str]] = lambda stack: {}
    args: tuple[str, ...] = ()
    tag: str = "v1.1.0"
    env: dict[str, str] = field(default_factory=dict)


def _github_5xx(stack: Stack) -> dict[str, str]:
    stack.github.fail_next(503, times=20)
    return {}


def _github_slow(stack: Stack) -> dict[str, str]:
    stack.github.faults.delay_seconds = 3
    return {"RELEASEGATE_GITHUB_TIMEOUT": "1"}


def _github_rate_limited(stack: Stack) -> dict[str, str]:
    stack.github.faults.rate_limited_until = int(time.time()) + 900
    return {}


def _scenario(name: str) -> Callable[[Stack], dict[str, str]]:
    def arrange(stack: Stack) -> dict[str, str]:
        stack.kube.controller.scenarios["v1.1.0"] = name
        return {}

    return arrange


def _smoke(behaviour: str, old: str = "", new: str = "") -> Callable[[Stack], dict[str, str]]:
    """v1.1.0's application misbehaves behind the service proxy; two quick tries per check."""

    def arrange(stack: Stack) -> dict[str, str]:
        stack.kube.proxy.apps.behaviours["v1.1.0"] = behaviour
        path = stack.project / "k8s" / "environments" / "nonprod.yaml"
        text = path.read_text().replace("attempts: 30", "attempts: 2").replace("interval: 3 ", "interval: 0 ")
        path.write_text(text.replace(old, new) if old else text)
        return {}

    return arrange


def _skaffold(**env: str) -> Callable[[Stack], dict[str, str]]:
    def arrange(stack: Stack) -> dict[str, str]:
        digest = stack.ecr.client().describe_images(
            repositoryName="model-api", imageIds=[{"imageTag": "v1.1.0"}]
        )
        return {"STANDIN_SKAFFOLD_FAULT_IMAGE": digest["imageDetails"][0]["imageDigest"], **env}

    return arrange


FAULTS = [
    Fault("github 5xx", 3, ("answered 503", "retry later"), _github_5xx),
    Fault("github timeout", 3, ("did not answer in time", "RELEASEGATE_GITHUB_TIMEOUT"), _github_slow),
    Fault("github rate limit", 3, ("rate limit exhausted until",), _github_rate_limited),
    Fault(
        "github 401",
        3,
        ("rejected the token (401)", "GITHUB_TOKEN"),
        env={"GITHUB_TOKEN": "ghp_revoked0000000000"},
    ),
    Fault("ecr missing image", 3, ("not found in ECR", "push the image"), tag="v1.2.0"),
    Fault(
        "skaffold failing",
        4,
        ("exited with 1", "v1.0.0 was restored and verified"),
        _skaffold(STANDIN_SKAFFOLD_EXIT="1"),
    ),
    Fault(
        "skaffold hanging",
        4,
        ("skaffold still running", "v1.0.0 was restored"),
        _skaffold(STANDIN_SKAFFOLD_HANG="60"),
        args=("--timeout", "5"),
    ),
    Fault(
        "pods crash-looping",
        4,
        ("CrashLoopBackOff", "v1.0.0 was restored and verified"),
        _scenario("crashloop"),
    ),
    Fault("pods failing to pull", 4, ("could not be pulled", "v1.0.0 was restored"), _scenario("pull_error")),
    Fault(
        "pods never ready",
        4,
        ("timed out", "v1.0.0 was restored"),
        _scenario("never_ready"),
        args=("--timeout", "4"),
    ),
    Fault("pods out of memory", 4, ("OOMKilled", "v1.0.0 was restored"), _scenario("oom")),
    Fault(
        "smoke check failing",
        4,
        ("smoke check 'health'", "answered 503", "v1.0.0 was restored"),
        _smoke("unhealthy"),
    ),
    Fault(
        "smoke check timing out",
        4,
        ("smoke check 'health'", "more than max_ms", "v1.0.0 was restored"),
        _smoke("slow", "      path: /health/ready\n", "      path: /health/ready\n      max_ms: 50\n"),
    ),
    Fault(
        "smoke check answering garbage",
        4,
        ("smoke check 'sample prediction'", "not JSON", "v1.0.0 was restored"),
        _smoke("garbage"),
    ),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault(stack: Stack, baseline: Baseline, fault: Fault) -> None:
    if fault.tag == "v1.2.0":
        stack.publish("v1.2.0", push=False)
    env = {**fault.arrange(stack), **fault.env}
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", fault.tag, *fault.args, **env)
    assert_contract(stack, baseline, run, fault.code, *fault.words)


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"])
def test_ecr_denied_or_expired_credentials(
    stack: Stack, baseline: Baseline, denying_ecr: str, variable: str
) -> None:
    # moto, enforcing IAM, answers both unknown keys and an expired session with a 403.
    env = {"AWS_ENDPOINT_URL": denying_ecr}
    if variable == "AWS_SESSION_TOKEN":
        env["AWS_SESSION_TOKEN"] = "FwoGZXIvYXdzEXPIRED"
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0", **env)
    assert_contract(stack, baseline, run, 3, "AWS denied the ECR request", "refresh the AWS credentials")


def _sigint_ignored() -> None:
    """What a non-interactive shell does for a job it starts in the background (`deploy &`)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("sent", "when", "ignored"),
    [
        (signal.SIGINT, "  rollout |", False),
        (signal.SIGTERM, "  skaffold | Starting deploy", False),
        (signal.SIGINT, "  skaffold | Starting deploy", False),
        (signal.SIGINT, "  rollout |", True),
    ],
    ids=[
        "SIGINT mid-rollout",
        "SIGTERM while skaffold runs",
        "SIGINT while skaffold runs",
        "SIGINT, started with SIGINT ignored",
    ],
)
def test_interrupt_stops_restores_and_exits_130(
    stack: Stack, baseline: Baseline, sent: int, when: str, ignored: bool
) -> None:
    stack.kube.controller.scenarios["v1.1.0"] = "slow"
    stack.kube.controller.slow_seconds = 60
    pid_file = stack.workdir / "skaffold.pid"
    env = {**_skaffold(STANDIN_SKAFFOLD_HANG="60")(stack)} if "skaffold" in when else {}
    argv = stack.argv("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    env = stack.env(STANDIN_SKAFFOLD_PID_FILE=str(pid_file), **env)
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_sigint_ignored if ignored else None,
    )  # fmt: skip
    assert process.stderr is not None and process.stdout is not None
    seen = []
    for line in process.stderr:
        seen.append(line)
        if line.startswith(when):
            skaffold_pid = int(pid_file.read_text())
            process.send_signal(sent)
            break
    last_line = time.monotonic()
    for line in process.stderr:
        seen.append(line)
        last_line = time.monotonic()
    process.wait(timeout=60)
    # Nothing may keep it alive after its last line (sh's deadline Timer once did, for --timeout).
    assert time.monotonic() - last_line < 5, (
        f"exited {time.monotonic() - last_line:.1f} s after its last line"
    )
    run = Run(["deploy"], process.returncode, process.stdout.read(), "".join(seen))
    assert_contract(stack, baseline, run, 130, "interrupted while deploying v1.1.0", "v1.0.0 was restored")
    with pytest.raises(ProcessLookupError):
        os.kill(skaffold_pid, 0)  # the interrupted skaffold is not left running
    history = json.loads(stack.releasegate("--json", "history", "--env", "nonprod").stdout)["history"]
    assert [(r["tag"], r["outcome"]) for r in history[:2]] == [
        ("v1.0.0", "deployed"),
        ("v1.1.0", "interrupted"),
    ]


def test_two_deploys_at_once_the_second_is_refused(stack: Stack, baseline: Baseline) -> None:
    stack.kube.controller.scenarios["v1.1.0"] = "slow"
    stack.kube.controller.slow_seconds = 4
    argv, env = (
        stack.argv("deploy", "--env", "nonprod", "--tag", "v1.1.0"),
        stack.env(GITHUB_ACTOR="first-deployer"),
    )
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    for line in first.stderr:
        if line.startswith("✓ lock"):
            break
    second = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0", "--allow-downgrade")
    first_err = first.stderr.read()
    first.wait(timeout=60)
    assert first.returncode == 0, first_err
    assert second.exit_code == 3
    assert "another deploy holds the model-api-nonprod lock: first-deployer (" in second.last_line
    assert "Next: wait for it to finish" in second.last_line
    assert stack.kube.get("Lease", NS, LEASE) is None


def test_no_rollback_leaves_the_failed_release_for_debugging(stack: Stack, baseline: Baseline) -> None:
    stack.kube.controller.scenarios["v1.1.0"] = "crashloop"
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0", "--no-rollback")
    assert run.exit_code == 5
    assert "--no-rollback" in run.last_line and "releasegate rollback --env nonprod" in run.last_line
    deployment = stack.kube.get("Deployment", NS, "model-api")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] != baseline.image
    assert stack.kube.get("Lease", NS, LEASE) is None


def test_failure_with_no_earlier_release_needs_a_person(stack: Stack) -> None:
    stack.publish("v1.0.0")
    stack.kube.controller.scenarios["v1.0.0"] = "crashloop"
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0")
    assert run.exit_code == 5
    assert "no earlier good release to restore" in run.last_line and "releasegate status" in run.last_line


def test_an_abandoned_lock_is_taken_over_with_a_warning(stack: Stack, baseline: Baseline) -> None:
    stale = "2026-01-01T00:00:00.000000Z"
    stack.kube.put({
        "kind": "Lease", "apiVersion": "coordination.k8s.io/v1",
        "metadata": {"name": LEASE, "namespace": NS},
        "spec": {"holderIdentity": "dead-runner pid 1", "leaseDurationSeconds": 2, "acquireTime": stale,
                 "renewTime": stale},
    })  # fmt: skip
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert "watching it for 2s before taking it over" in run.stderr
    assert "taking over the deploy lock from dead-runner pid 1" in run.stderr
    assert stack.kube.get("Lease", NS, LEASE) is None


def test_a_deploy_that_loses_its_lock_stops_before_its_next_change(stack: Stack, baseline: Baseline) -> None:
    stack.kube.controller.scenarios["v1.1.0"] = "slow"
    stack.kube.controller.slow_seconds = 2
    argv = stack.argv("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    first = subprocess.Popen(argv, env=stack.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    for line in first.stderr:
        if line.startswith("✓ deploy"):
            break
    # Another deploy takes the Lease over while this one waits for its pods.
    lease = stack.kube.get("Lease", NS, LEASE)
    lease["spec"]["holderIdentity"] = "intruder (run 7/1)"
    stack.kube.put(lease)
    rest = first.stderr.read()
    first.wait(timeout=60)
    assert first.returncode == 5, rest
    last = rest.strip().splitlines()[-1]
    assert "lost the model-api-nonprod deploy lock to intruder (run 7/1)" in last and "Next: " in last
    # It stopped: no ledger outcome written after losing the lock, the new holder's Lease kept.
    records = {c["data"]["tag"]: c["data"]["outcome"] for c in ledger_records(stack, NS)}
    assert records["v1.1.0"] == "pending"
    assert stack.kube.get("Lease", NS, LEASE)["spec"]["holderIdentity"] == "intruder (run 7/1)"
    # Its GitHub deployment is not left in_progress: it says the run stopped, and why.
    latest = stack.github.statuses[max(stack.github.statuses)][0]
    assert latest["state"] == "error" and "intruder (run 7/1)" in latest["description"], latest


# Faults of the API server that a healthy release must survive: the deploy succeeds, the
# release is recorded, the lock is released.
def _slow_release(stack: Stack) -> None:
    stack.kube.controller.scenarios["v1.1.0"] = "slow"
    stack.kube.controller.slow_seconds = 2.5


def _watches_closed(stack: Stack) -> None:
    _slow_release(stack)
    stack.kube.faults.watch_seconds = 0.4


def _watches_reset(stack: Stack) -> None:
    _watches_closed(stack)
    stack.kube.faults.reset = True


def _watches_gone(stack: Stack) -> None:
    _watches_closed(stack)
    stack.kube.faults.gone = 3  # a resumed watch answers ERROR 410: list again


def _ledger_write_fails_once(stack: Stack) -> None:
    stack.kube.fail_next(503, "PUT", "/configmaps/releasegate.model-api.v")
    stack.kube.fail_next(500, "POST", "/configmaps")


def _lease_write_fails_once(stack: Stack) -> None:
    stack.kube.fail_next(503, "POST", "/leases")
    stack.kube.fail_next(503, "DELETE", "/leases/")


SURVIVABLE = {
    "watch closed by the server": _watches_closed,
    "watch connection reset": _watches_reset,
    "watch answers 410 Gone": _watches_gone,
    "transient 5xx on ledger writes": _ledger_write_fails_once,
    "transient 5xx on lease writes": _lease_write_fails_once,
}


@pytest.mark.parametrize("arrange", SURVIVABLE.values(), ids=SURVIVABLE.keys())
def test_a_healthy_release_survives(
    stack: Stack, baseline: Baseline, arrange: Callable[[Stack], None]
) -> None:
    arrange(stack)
    started = time.monotonic()
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0", "--timeout", "30")
    assert run.exit_code == 0, run.stderr
    assert time.monotonic() - started < 20  # not the whole --timeout
    records = {c["data"]["tag"]: c["data"]["outcome"] for c in ledger_records(stack, NS)}
    assert records == {"v1.0.0": "deployed", "v1.1.0": "deployed"}
    assert stack.kube.get("Lease", NS, LEASE) is None


SAME_RUN = {"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_ACTOR": "octocat"}


def killed_deploy(stack: Project, tag: str) -> None:
    """``deploy`` of ``tag`` in nonprod as run SAME_RUN, SIGKILLed once skaffold has applied it."""
    argv = stack.argv("deploy", "--env", "nonprod", "--tag", tag)
    first = subprocess.Popen(argv, env=stack.env(**SAME_RUN), stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    for line in first.stderr:
        if line.startswith("✓ deploy"):
            break
    first.kill()
    first.wait(timeout=10)


def test_recover_puts_back_the_last_good_release_after_a_killed_deploy(
    stack: Stack, baseline: Baseline
) -> None:
    # A cancelled Actions run: SIGKILL to the whole tree once the grace period is over, then
    # the workflow's `if: cancelled()` step runs `releasegate recover` in the same run.
    stack.kube.controller.scenarios["v1.1.0"] = "slow"
    stack.kube.controller.slow_seconds = 30
    killed_deploy(stack, "v1.1.0")
    assert stack.kube.get("Lease", NS, LEASE) is not None  # the killed holder never released it
    run = stack.releasegate("recover", "--env", "nonprod", **SAME_RUN)
    assert run.exit_code == 0, run.stderr
    assert "v1.0.0 was restored and verified" in run.stdout
    assert_still_serving(stack, baseline)
    records = {c["data"]["tag"]: c["data"]["outcome"] for c in ledger_records(stack, NS)}
    assert records["v1.1.0"] == "interrupted"
    assert stack.kube.get("Lease", NS, LEASE) is None
    again = stack.releasegate("recover", "--env", "nonprod", **SAME_RUN)
    assert again.exit_code == 0 and "nothing to recover" in again.stdout


def test_recover_from_another_run_respects_a_live_lock(stack: Stack, baseline: Baseline) -> None:
    stack.kube.controller.scenarios["v1.1.0"] = "slow"
    stack.kube.controller.slow_seconds = 4
    argv = stack.argv("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    first = subprocess.Popen(argv, env=stack.env(GITHUB_RUN_ID="1"), stderr=subprocess.PIPE, text=True)
    assert first.stderr is not None
    for line in first.stderr:
        if line.startswith("✓ deploy"):
            break
    run = stack.releasegate("recover", "--env", "nonprod", GITHUB_RUN_ID="2")
    first.wait(timeout=60)
    assert run.exit_code == 3, run.stderr
    assert "another deploy holds the model-api-nonprod lock" in run.last_line


def test_recover_with_nothing_unfinished_needs_no_skaffold(stack: Stack, baseline: Baseline) -> None:
    without_skaffold = f"{os.path.dirname(sys.executable)}:/usr/bin:/bin"
    run = stack.releasegate("recover", "--env", "nonprod", PATH=without_skaffold)
    assert run.exit_code == 0, run.stderr
    assert "nothing to recover in nonprod" in run.stdout


def interrupted_deploy(
    stack: Stack, tag: str, when: Callable[[str], bool], sent: int = signal.SIGINT, **env: str
) -> Run:
    """``deploy`` of ``tag`` in nonprod, sent ``sent`` at the first progress line ``when`` accepts."""
    return interrupted(stack, ["deploy", "--env", "nonprod", "--tag", tag], when, sent, **env)


def interrupted(
    stack: Stack, args: list[str], when: Callable[[str], bool], sent: int = signal.SIGINT, **env: str
) -> Run:
    """``releasegate args``, sent ``sent`` at the first progress line ``when`` accepts."""
    process = subprocess.Popen(
        stack.argv(*args), env=stack.env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None and process.stdout is not None
    seen = []
    signalled = time.monotonic()
    for line in process.stderr:
        seen.append(line)
        if when(line):
            process.send_signal(sent)
            signalled = time.monotonic()
            break
    last_line = time.monotonic()
    for line in process.stderr:
        seen.append(line)
        last_line = time.monotonic()
    process.wait(timeout=60)
    ended = time.monotonic()
    lingered = ended - last_line  # an interrupted run ends with its last line
    assert lingered < 5, f"releasegate exited {lingered:.1f} s after its last line"
    return Run(args, process.returncode, process.stdout.read(), "".join(seen), after_signal=ended - signalled)


def test_sigint_after_the_switch_switches_back_and_exits_130(stack: Stack) -> None:
    """Blue/green: interrupted while the live Service already sends traffic to the new slot."""
    quick_checks(stack)
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + "strategy: {type: bluegreen, scale_down_delay: 0}\n")
    digest = stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    baseline = Baseline("v1.0.0", f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@{digest}")
    stack.publish("v1.1.0")
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "slow"  # every check takes a while: time to interrupt
    stack.kube.proxy.apps.slow_ms = 700
    run = interrupted_deploy(stack, "v1.1.0", when=lambda line: line.startswith("✓ switch"))
    assert "Service model-api selects slot green" in run.stderr
    assert_contract(
        stack, baseline, run, 130, "interrupted while deploying v1.1.0", "v1.0.0 was restored",
        serving="model-api-blue",
    )  # fmt: skip
    assert stack.kube.get("Service", NS, "model-api")["spec"]["selector"]["releasegate.dev/slot"] == "blue"
    assert stack.kube.get("Deployment", NS, "model-api-green")["spec"]["replicas"] == 0
    history = json.loads(stack.releasegate("--json", "history", "--env", "nonprod").stdout)["history"]
    assert [(r["tag"], r["outcome"], r["slot"]) for r in history[:2]] == [
        ("v1.0.0", "deployed", "blue"), ("v1.1.0", "interrupted", "green")
    ]  # fmt: skip
