"""End to end: the real `releasegate` process against the emulators, one case per contract row."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys
import time

import pytest

from releasegate.core.config import load_environment, load_project
from releasegate.kube.permissions import needed
from tests.emulators.stack import Stack, ledger_records

pytestmark = pytest.mark.e2e
NONPROD, PROD = "model-api-nonprod", "model-api-prod"


def pods(stack: Stack, namespace: str) -> list[dict]:
    return stack.kube.list("Pod", namespace)


def serving_images(stack: Stack, namespace: str) -> set[str]:
    return {p["spec"]["containers"][0]["image"] for p in pods(stack, namespace)}


def assert_one_line_failure(run, *words: str) -> None:
    """The last stderr line names the cause and the next step."""
    assert run.last_line.startswith("error: "), run.stderr
    assert "Next: " in run.last_line, run.last_line
    for word in words:
        assert word in run.last_line, run.last_line


def test_nonprod_happy_path_pins_the_digest_and_proves_pods_ready(stack: Stack) -> None:
    digest = stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    assert "v1.4.2 is live in nonprod (2/2 pods Ready)" in run.stdout
    deployment = stack.kube.get("Deployment", NONPROD, "model-api")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@{digest}"
    running = pods(stack, NONPROD)
    assert len(running) == 2
    assert all(
        c["status"] == "True" for p in running for c in p["status"]["conditions"] if c["type"] == "Ready"
    )
    for stage in ("validate", "image", "render", "cluster", "deploy", "verify"):
        assert f"✓ {stage}" in run.stderr
    # What kubectl prints under skaffold (the real tier checks the same line).
    assert "skaffold |  - deployment.apps/model-api created" in run.stderr


def test_prod_happy_path_in_ci_with_confirm(stack: Stack) -> None:
    stack.publish("v2.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v2.0.0").exit_code == 0  # promotion
    run = stack.releasegate("--json", "deploy", "--env", "prod", "--tag", "v2.0.0", "--confirm", "y")
    assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["outcome"] == "deployed" and result["namespace"] == PROD and result["pods_ready"] == "3/3"
    assert result["digest"].startswith("sha256:") and result["exit_code"] == 0
    assert len(pods(stack, PROD)) == 3


def test_second_release_replaces_the_first(stack: Stack) -> None:
    stack.publish("v1.0.0")
    second = stack.publish("v1.1.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert serving_images(stack, NONPROD) == {
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api@{second}"
    }


def test_confirm_n_skips_without_touching_anything(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "prod", "--tag", "v1.4.2", "--confirm", "n")
    assert run.exit_code == 0
    assert "skipped" in run.stdout
    assert stack.kube.requests == [] and stack.github.requests == []


def test_confirm_from_environment_variable(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate(
        "deploy", RELEASEGATE_ENV="prod", RELEASEGATE_TAG="v1.4.2", RELEASEGATE_CONFIRM="n"
    )
    assert run.exit_code == 0 and "skipped: v1.4.2 was not deployed to prod" in run.stdout


@pytest.mark.parametrize("confirm", ["maybe", "yes please", ""])
def test_confirm_other_than_y_or_n_is_bad_input(stack: Stack, confirm: str) -> None:
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2", "--confirm", confirm)
    assert run.exit_code == 2
    assert_one_line_failure(run, "--confirm")


@pytest.mark.parametrize(
    "tag", ["1.4.2", "v1.4", "v1.4.2;rm -rf /", "v01.4.2", "v1.4.2\nkind: Secret", "{{ x }}"]
)
def test_malformed_tag_exits_2_before_any_network_call(stack: Stack, tag: str) -> None:
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", tag, "--confirm", "y")
    assert run.exit_code == 2, run.stderr
    assert_one_line_failure(run, "tag")
    assert stack.github.requests == [] and stack.kube.requests == []


def test_unknown_environment_is_bad_input(stack: Stack) -> None:
    run = stack.releasegate("deploy", "--env", "staging", "--tag", "v1.4.2")
    assert run.exit_code == 2
    assert_one_line_failure(run, "unknown environment staging", "nonprod, prod")


def test_unknown_tag_is_refused_with_the_nearest_releases(stack: Stack) -> None:
    for tag in ("v1.3.0", "v1.4.0", "v1.4.1", "v2.0.0"):
        stack.publish(tag)
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.3")
    assert run.exit_code == 3
    assert_one_line_failure(run, "v1.4.3 is not a published release", "v1.4.1", "v1.4.0")
    assert stack.kube.writes() == []


def test_draft_release_is_refused(stack: Stack) -> None:
    stack.publish("v1.5.0", draft=True)
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.5.0")
    assert run.exit_code == 3
    assert_one_line_failure(run, "draft", "publish")
    assert stack.kube.writes() == []


def test_prerelease_to_prod_is_refused_but_nonprod_takes_it(stack: Stack) -> None:
    stack.publish("v2.0.0-rc.1", prerelease=True)
    refused = stack.releasegate("deploy", "--env", "prod", "--tag", "v2.0.0-rc.1", "--confirm", "y")
    assert refused.exit_code == 3
    assert_one_line_failure(refused, "prerelease", "prod")
    assert stack.kube.writes() == []
    accepted = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v2.0.0-rc.1")
    assert accepted.exit_code == 0, accepted.stderr


def test_image_missing_in_ecr_is_refused_before_any_cluster_change(stack: Stack) -> None:
    stack.publish("v1.4.2", push=False)
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 3
    assert_one_line_failure(run, "not found in ECR", "push the image")
    assert stack.kube.requests == []


def test_ecr_credentials_denied_is_refused_with_a_hint(stack: Stack) -> None:
    stack.publish("v1.4.2")
    # No credentials at all: boto3 finds none (HOME is empty, instance metadata disabled).
    run = stack.releasegate(
        "deploy", "--env", "nonprod", "--tag", "v1.4.2", AWS_ACCESS_KEY_ID=None, AWS_SECRET_ACCESS_KEY=None
    )
    assert run.exit_code == 3
    assert_one_line_failure(run, "AWS credentials")
    assert stack.kube.requests == []


def test_skaffold_failing_exits_5_with_its_output(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2", STANDIN_SKAFFOLD_EXIT="1")
    assert run.exit_code == 5
    assert "injected" in run.stderr
    assert_one_line_failure(run, "skaffold deploy", "exited with 1")


def test_skaffold_hanging_past_the_timeout_is_killed(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate(
        "deploy", "--env", "nonprod", "--tag", "v1.4.2", "--timeout", "3", STANDIN_SKAFFOLD_HANG="60"
    )
    assert run.exit_code == 5
    assert_one_line_failure(run, "skaffold still running", "stopped")


def test_image_pull_backoff_fails_fast_naming_pod_and_reason(stack: Stack) -> None:
    stack.publish("v1.4.2")
    stack.kube.controller.scenarios["v1.4.2"] = "pull_error"
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2", "--timeout", "60")
    assert run.exit_code == 5
    assert_one_line_failure(run, "did not become Ready", "could not be pulled")
    assert "ErrImagePull" in run.last_line or "ImagePullBackOff" in run.last_line
    assert "Failed to pull image" in run.stderr  # the pod's message, from its status or its events


def test_crash_loop_fails_fast_with_events_and_log_tail(stack: Stack) -> None:
    stack.publish("v1.4.2")
    stack.kube.controller.scenarios["v1.4.2"] = "crashloop"
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2", "--timeout", "60")
    assert run.exit_code == 5
    assert_one_line_failure(run, "CrashLoopBackOff")
    assert "event: BackOff: Back-off restarting failed container" in run.stderr
    assert "log: RuntimeError: MODEL_URI is not set" in run.stderr


def test_never_ready_waits_for_the_timeout_then_shows_probe_failures(stack: Stack) -> None:
    stack.publish("v1.4.2")
    stack.kube.controller.scenarios["v1.4.2"] = "never_ready"
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2", "--timeout", "4")
    assert run.exit_code == 5
    assert_one_line_failure(run, "timed out")
    assert "Readiness probe failed" in run.stderr


def test_dry_run_makes_no_write_request_to_the_cluster(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2", "--dry-run")
    assert run.exit_code == 0, run.stderr
    assert "would run: skaffold deploy" in run.stdout and "--profile nonprod" in run.stdout
    assert stack.kube.writes() == []  # it reads, to say what pruning would delete; it changes nothing


def test_prod_from_a_laptop_is_refused_unless_allowed(stack: Stack) -> None:
    stack.publish("v1.4.2")
    refused = stack.releasegate("deploy", "--env", "prod", "--tag", "v1.4.2", "--confirm", "y", CI=None)
    assert refused.exit_code == 3
    assert_one_line_failure(refused, "protected", "--allow-local-prod")
    allowed = stack.releasegate(
        "deploy",
        "--env",
        "prod",
        "--tag",
        "v1.4.2",
        "--confirm",
        "y",
        "--allow-local-prod",
        "--skip-promotion-check",
        CI=None,
    )
    assert allowed.exit_code == 0, allowed.stderr


def test_prod_without_a_terminal_needs_confirm(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "prod", "--tag", "v1.4.2")
    assert run.exit_code == 2
    assert_one_line_failure(run, "--confirm y")
    assert stack.kube.requests == []


def test_no_registry_credential_is_fetched_or_written_for_skaffold(stack: Stack) -> None:
    # Skaffold's kubectl deployer pulls nothing (nodes pull with their role): a credential
    # handed to it would only be a secret on disk that nothing reads.
    stack.publish("v1.4.2")
    record = stack.workdir / "skaffold-argv.json"
    run = stack.releasegate(
        "--verbose", "deploy", "--env", "nonprod", "--tag", "v1.4.2", STANDIN_SKAFFOLD_RECORD=str(record)
    )
    assert run.exit_code == 0, run.stderr
    recorded = json.loads(record.read_text())
    assert recorded["docker_config"] is None and recorded["docker_config_auths"] == []
    token = stack.ecr.authorization_token()
    for text in (run.stdout, run.stderr, json.dumps(recorded["argv"])):
        assert token not in text
    assert stack.files_left_behind() == []


def test_programs_releasegate_starts_get_no_github_token(stack: Stack) -> None:
    stack.publish("v1.4.2")
    record = stack.workdir / "skaffold-argv.json"
    secrets = {"GH_TOKEN": "ghp_other", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc"}
    run = stack.releasegate(
        "deploy", "--env", "nonprod", "--tag", "v1.4.2", STANDIN_SKAFFOLD_RECORD=str(record), **secrets
    )
    assert run.exit_code == 0, run.stderr
    names = set(json.loads(record.read_text())["environment"])
    assert not names & {"GITHUB_TOKEN", "GH_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"}
    assert {"KUBECONFIG", "AWS_ACCESS_KEY_ID", "PATH"} <= names  # what kubectl and its plugins need


def test_a_failure_after_the_first_write_ends_in_recovery_not_a_pending_record(stack: Stack) -> None:
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    stack.publish("v1.1.0")
    # The build folder cannot be written (a file stands where it should be): this fails after
    # the ledger record and the GitHub deployment exist, and again when restoring.
    shutil.rmtree(stack.project / "build" / "nonprod")
    (stack.project / "build" / "nonprod").write_text("not a folder")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 5, run.stderr
    assert_one_line_failure(run, "restoring v1.0.0 failed too", "a person must look")
    ledger = [c for c in ledger_records(stack, NONPROD) if c["data"]["tag"] == "v1.1.0"]
    assert [c["data"]["outcome"] for c in ledger] == ["failed"]
    assert stack.kube.get("Lease", NONPROD, "releasegate-model-api") is None
    (deployment,) = [d for d in stack.github.deployments if d["ref"] == "v1.1.0"]
    states = [s["state"] for s in stack.github.statuses[deployment["id"]]]  # newest first
    assert states[0] == "failure" and "in_progress" in states


def test_github_token_never_appears_even_when_github_rejects_it(stack: Stack) -> None:
    run = stack.releasegate(
        "deploy", "--env", "nonprod", "--tag", "v1.4.2", GITHUB_TOKEN="ghp_wrongTokenValue123"
    )
    assert run.exit_code == 3
    assert_one_line_failure(run, "rejected the token (401)", "GITHUB_TOKEN")
    assert "ghp_wrongTokenValue123" not in run.stdout + run.stderr


def test_releases_lists_published_semver_releases_newest_first(stack: Stack) -> None:
    for tag in ("v1.2.0", "v1.10.0", "v1.9.0"):
        stack.publish(tag, push=False)
    stack.publish("v2.0.0", draft=True, push=False)
    stack.github.add_release("nightly-2026-11-01")
    run = stack.releasegate("--json", "releases")
    assert run.exit_code == 0, run.stderr
    assert [r["tag"] for r in json.loads(run.stdout)["releases"]] == ["v1.10.0", "v1.9.0", "v1.2.0"]


def test_check_runs_every_preflight_check_and_changes_nothing(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate("check", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    assert "v1.4.2 can be deployed to nonprod" in run.stdout
    # The namespace, Deployments, then one SelfSubjectAccessReview per permission (a question,
    # stored nowhere): nothing else.
    reviews = [r for r in stack.kube.requests if r.path.endswith("/selfsubjectaccessreviews")]
    assert len(reviews) == len(needed(load_environment(load_project(stack.project), "nonprod")))
    assert stack.kube.writes() == []
    assert len(stack.kube.requests) == 2 + len(reviews)


def test_render_writes_the_build_folder_byte_identically(stack: Stack) -> None:
    stack.publish("v1.4.2")
    out = stack.workdir / "out"
    first = stack.releasegate("render", "--env", "prod", "--tag", "v1.4.2", "--out", str(out))
    assert first.exit_code == 0, first.stderr
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = stack.releasegate("render", "--env", "prod", "--tag", "v1.4.2", "--out", str(out))
    assert again.exit_code == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    kinds = ["deployment", "horizontalpodautoscaler", "poddisruptionbudget", "service", "serviceaccount"]
    assert sorted(before) == [f"{kind}.yaml" for kind in kinds]
    assert stack.kube.requests == []


def test_ecr_denying_the_credentials_is_refused_before_any_cluster_change(
    stack: Stack, denying_ecr: str
) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2", AWS_ENDPOINT_URL=denying_ecr)
    assert run.exit_code == 3
    assert_one_line_failure(run, "AWS denied the ECR request", "refresh the AWS credentials")
    assert "emulator-secret-key" not in run.stdout + run.stderr
    assert stack.kube.requests == []


def test_prod_asks_on_a_terminal(stack: Stack) -> None:
    stack.publish("v1.4.2")
    for answer, code, expected in (("n\n", 0, "skipped"), ("y\n", 0, "v1.4.2 is live in prod")):
        primary, secondary = pty.openpty()
        argv = stack.argv(
            "deploy", "--env", "prod", "--tag", "v1.4.2", "--allow-local-prod", "--skip-promotion-check"
        )
        process = subprocess.Popen(
            argv,
            stdin=secondary,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=stack.env(CI=None),
            text=True,
        )
        os.close(secondary)
        os.write(primary, answer.encode())
        out, err = process.communicate(timeout=120)
        os.close(primary)
        assert process.returncode == code, err
        assert "Deploy v1.4.2 to prod (model-api-prod)?" in out and expected in out


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["check", "--tag", "v1.4.2"], ["Missing option '--env'", "releasegate check --help"]),
        (["deploy", "--tag", "v1.4.2"], ["--env and --tag are required outside GitHub Actions"]),
        (["deploy", "--env", "nonprod", "--tag", "v1.4.2", "--timeout", "soon"], ["--timeout", "--help"]),
        (["launch"], ["No such command 'launch'", "releasegate --help"]),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(stack: Stack, args: list[str], words: list[str]) -> None:
    run = stack.releasegate(*args)
    assert run.exit_code == 2
    assert run.stderr.strip().count("\n") == 0
    assert_one_line_failure(run, *words)


def test_start_up_imports_no_sdk() -> None:
    probe = "import sys, releasegate.app; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    for heavy in ("github", "boto3", "botocore", "kubernetes", "kubernetes_validate", "jinja2", "sh", "rich"):
        assert f"'{heavy}'" not in loaded


def test_a_value_beyond_the_basic_multilingual_plane_reaches_the_cluster_exactly(stack: Stack) -> None:
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    banner = "model 🚀 ready — 𝔘"
    path.write_text(
        path.read_text().replace("    LOG_LEVEL: debug\n", f"    LOG_LEVEL: debug\n    BANNER: {banner}\n")
    )
    stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    deployment = stack.kube.get("Deployment", NONPROD, "model-api")
    variables = {
        e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert variables["BANNER"] == banner


def test_redeploying_the_serving_release_changes_no_pod_template(stack: Stack) -> None:
    stack.publish("v1.4.2")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2").exit_code == 0
    before = stack.kube.get("Deployment", NONPROD, "model-api")
    names = {p["metadata"]["name"] for p in pods(stack, NONPROD)}
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    after = stack.kube.get("Deployment", NONPROD, "model-api")
    # Skaffold labels pod templates with its run-id: releasegate fixes it per environment.
    assert after["spec"]["template"] == before["spec"]["template"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert {p["metadata"]["name"] for p in pods(stack, NONPROD)} == names  # no pod restarted
    run_id = after["spec"]["template"]["metadata"]["labels"]["skaffold.dev/run-id"]
    assert run_id == "releasegate-nonprod"


def test_a_restore_scales_the_previous_pods_back_instead_of_starting_new_ones(stack: Stack) -> None:
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    serving = {p["metadata"]["name"] for p in pods(stack, NONPROD)}
    stack.publish("v1.1.0")
    stack.kube.controller.scenarios["v1.1.0"] = "crashloop"
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert {p["metadata"]["name"] for p in pods(stack, NONPROD)} == serving


def test_a_restore_renders_the_previous_release_with_the_values_it_was_deployed_with(stack: Stack) -> None:
    """A values change that breaks the release (on a real cluster: requests no node can hold)
    is undone by the restore too: the last good release comes back as it was."""
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text().replace("LOG_LEVEL: debug", "LOG_LEVEL: trace"))
    stack.publish("v1.1.0")
    stack.kube.controller.scenarios["v1.1.0"] = "crashloop"
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 4, run.stderr
    assert "v1.0.0 is rendered with the values it was deployed with" in run.stderr
    container = stack.kube.get("Deployment", NONPROD, "model-api")["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert {"name": "LOG_LEVEL", "value": "debug"} in container["env"], container["env"]
    # The restore's own record keeps those values too, for any later restore of it.
    records = [c["data"] for c in ledger_records(stack, NONPROD) if c["data"]["tag"] == "v1.0.0"]
    assert len(records) == 2 and all(json.loads(r["values"])["env"]["LOG_LEVEL"] == "debug" for r in records)


def test_skaffold_missing_from_path_is_refused_before_any_change(stack: Stack) -> None:
    stack.publish("v1.4.2")
    run = stack.releasegate(
        "deploy",
        "--env",
        "nonprod",
        "--tag",
        "v1.4.2",
        PATH=f"{os.path.dirname(sys.executable)}:/usr/bin:/bin",
    )
    assert run.exit_code == 3, run.stderr
    assert_one_line_failure(run, "skaffold not found on PATH")
    assert stack.kube.writes() == []


def _staging(stack: Stack, extra: str = "") -> None:
    text = (stack.project / "k8s/environments/nonprod.yaml").read_text()
    text = text.replace("model-api-nonprod", "model-api-staging").replace(
        "branches: [develop]", "branches: []"
    )
    text = text.replace("deploy_on_release: true", "deploy_on_release: false")
    (stack.project / "k8s/environments/staging.yaml").write_text(text + extra)
    skaffold = stack.project / "skaffold.yaml"
    skaffold.write_text(skaffold.read_text() + "  - name: staging\n    manifests:\n      rawYaml:\n"
                        "        - build/staging/*.yaml\n")  # fmt: skip
    path = stack.project / "k8s/environments/staging.yaml"
    path.write_text(path.read_text().replace("skaffold_profile: nonprod", "skaffold_profile: staging"))


def test_a_missing_namespace_is_refused_in_preflight_naming_it(stack: Stack) -> None:
    _staging(stack)
    stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "staging", "--tag", "v1.4.2")
    assert run.exit_code == 3, run.stderr
    assert_one_line_failure(
        run, "namespace model-api-staging does not exist", "kubectl create namespace model-api-staging",
        "create_namespace: true",
    )  # fmt: skip
    assert stack.kube.writes() == []


def test_create_namespace_creates_it_before_the_first_deploy(stack: Stack) -> None:
    _staging(stack, "create_namespace: true\n")
    stack.publish("v1.4.2")
    run = stack.releasegate("deploy", "--env", "staging", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    assert "model-api-staging" in stack.kube.namespaces
    assert len(pods(stack, "model-api-staging")) == 2


def scale_like_an_autoscaler(stack: Stack, namespace: str, replicas: int) -> None:
    """What the HorizontalPodAutoscaler does: write spec.replicas (through the API)."""
    import requests

    response = requests.patch(
        f"{stack.kube.url}/apis/apps/v1/namespaces/{namespace}/deployments/model-api",
        json={"spec": {"replicas": replicas}},
        headers={
            "Authorization": f"Bearer {stack.kube.token}",
            "Content-Type": "application/merge-patch+json",
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_a_deploy_keeps_the_autoscalers_replica_count(stack: Stack) -> None:
    stack.publish("v1.0.0")
    run = stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.0.0")
    assert run.exit_code == 0, run.stderr
    assert json.loads(run.stdout)["pods_ready"] == "2/2"  # the initial count, on creation
    scale_like_an_autoscaler(stack, NONPROD, 4)
    stack.publish("v1.1.0")
    run = stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert stack.kube.get("Deployment", NONPROD, "model-api")["spec"]["replicas"] == 4
    assert json.loads(run.stdout)["pods_ready"] == "4/4"  # verified against the live count
    # A restore keeps it too.
    stack.publish("v1.2.0")
    stack.kube.controller.scenarios["v1.2.0"] = "crashloop"
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.2.0").exit_code == 4
    assert stack.kube.get("Deployment", NONPROD, "model-api")["spec"]["replicas"] == 4


def test_an_environment_deployed_with_replicas_before_migrates_without_a_drop(stack: Stack) -> None:
    # Deployed by an earlier releasegate whose manifests set spec.replicas: kubectl's
    # last-applied annotation holds it, and an apply without it would reset the count to 1.
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    deployment = stack.kube.get("Deployment", NONPROD, "model-api")
    annotation = "kubectl.kubernetes.io/last-applied-configuration"
    applied = json.loads(deployment["metadata"]["annotations"][annotation])
    applied["spec"]["replicas"] = 2
    deployment["metadata"]["annotations"][annotation] = json.dumps(applied)
    stack.kube.put(deployment)
    scale_like_an_autoscaler(stack, NONPROD, 3)
    stack.publish("v1.1.0")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0")
    assert run.exit_code == 0, run.stderr
    assert stack.kube.get("Deployment", NONPROD, "model-api")["spec"]["replicas"] == 3


@pytest.mark.parametrize(
    ("scenario", "timeout", "words"),
    [
        ("unschedulable", "3", "Unschedulable: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu."),
        ("no_scale_up", "300", "NotTriggerScaleUp: the cluster autoscaler will not add a node for it"),
    ],
)
def test_pods_no_node_can_take_are_named_at_once_and_fail_the_rollout(
    stack: Stack, scenario: str, timeout: str, words: str
) -> None:
    """A model server asking for a GPU the cluster has none of once waited out all of --timeout."""
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0").exit_code == 0
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + f"unschedulable_timeout: {timeout}\n")
    stack.publish("v1.1.0")
    stack.kube.controller.scenarios["v1.1.0"] = scenario
    started = time.monotonic()
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.1.0", "--timeout", "120")
    assert run.exit_code == 4, run.stderr
    assert time.monotonic() - started < 30, "waited for the timeout"
    assert "cannot be scheduled: 0/3 nodes are available: 3 Insufficient nvidia.com/gpu." in run.stderr
    assert words in run.stderr and "v1.0.0 was restored" in run.last_line


@pytest.mark.e2e
def test_a_slow_github_holds_no_step_of_the_deploy_back(stack: Stack) -> None:
    """The GitHub deployment and its statuses are posted in the background, in order: with every
    write there taking 1 s, the apply follows the lock at once, and every status is posted by
    the time the process ends."""
    stack.github.faults.deployment_write_seconds = 1.0
    stack.publish("v1.4.2")
    run = stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.4.2")
    assert run.exit_code == 0, run.stderr
    stages = {s["name"]: s for s in json.loads(run.stdout)["stages"]}
    locked = stages["lock"]["started"] + stages["lock"]["seconds"]
    assert stages["deploy"]["started"] - locked < 0.5  # not the 2 s of the deployment and its first status
    posted = stack.github.statuses[stack.github.deployments[0]["id"]]
    assert [s["state"] for s in reversed(posted)] == ["in_progress", "success"]
