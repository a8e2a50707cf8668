"""All the emulators together, a scratch copy of the project, and the real CLI process.

Used by the end-to-end tests, the demo and the benchmarks. The CLI is configured for the
emulators only through the standard variables, as a user would point it at GitHub
Enterprise, another AWS endpoint or another cluster.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .ecr import CREDENTIALS, EcrEmulator
from .github import GitHubEmulator
from .kube import KubeEmulator
from .skaffold_standin import install

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ["releasegate.yaml", "skaffold.yaml", "k8s", "helm"]
# The real helm binary `make setup` installs; the CLI and the skaffold stand-in find it on PATH.
HELM = ROOT / "tools" / "bin" / "helm"
APP, REPOSITORY = "model-api", "model-api"


@dataclass
class Run:
    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    after_signal: float = 0.0  # an interrupted run: seconds from the signal to its exit

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""


def ledger_records(stack: Stack, namespace: str) -> list[dict[str, Any]]:
    """The ledger's ConfigMaps (by its label: the ApplySet's parent and the drains are others)."""
    return [
        c
        for c in stack.kube.list("ConfigMap", namespace)
        if "releasegate.dev/ledger" in c["metadata"].get("labels", {})
    ]


class Project:
    """What every stack shares: GitHub's emulator, a scratch copy of the project, a HOME and
    TMPDIR of its own, and the real CLI process. Subclasses bring the cluster."""

    kubeconfig: Path

    def __init__(self, ecr: EcrEmulator, workdir: Path) -> None:
        self.ecr = ecr
        self.workdir = workdir
        self.github = GitHubEmulator(repository="acme/model-api").start()
        self.project = workdir / "project"
        for name in PROJECT_FILES:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, self.project / name)
            else:
                self.project.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, self.project / name)
        self.bin = workdir / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        if HELM.exists():
            (self.bin / "helm").symlink_to(HELM)
        self.home = workdir / "home"
        self.home.mkdir()
        self.tmp = workdir / "tmp"  # TMPDIR of the CLI: whatever it leaves behind is here
        self.tmp.mkdir()
        ecr.reset()
        ecr.create_repository(REPOSITORY)

    def stop(self) -> None:
        self.github.stop()

    def publish(
        self, tag: str, *, draft: bool = False, prerelease: bool = False, push: bool = True
    ) -> str | None:
        """A GitHub release for ``tag`` and (unless ``push=False``) its image in ECR."""
        self.github.add_release(tag, draft=draft, prerelease=prerelease)
        return self.ecr.push(REPOSITORY, tag) if push else None

    def describe_with_chart(self, env: str) -> None:
        describe_with_chart(self.project, env)

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            "PATH": os.pathsep.join(
                [str(self.bin), str(Path(sys.executable).parent), os.environ.get("PATH", "")]
            ),
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "GITHUB_API_URL": self.github.url,
            "GITHUB_TOKEN": self.github.token or "",
            "AWS_ENDPOINT_URL": self.ecr.url,
            "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
            "AWS_EC2_METADATA_DISABLED": "true",
            "KUBECONFIG": str(self.kubeconfig),
            "CI": "true",
        }
        env.update(extra)
        return {k: v for k, v in env.items() if v is not None}

    def argv(self, *args: str) -> list[str]:
        return [str(Path(sys.executable).parent / "releasegate"), "--project-dir", str(self.project), *args]

    def releasegate(self, *args: str, timeout: float = 120, stdin: str | None = None, **env: Any) -> Run:
        done = subprocess.run(
            self.argv(*args),
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=stdin,
            check=False,
        )
        return Run(list(args), done.returncode, done.stdout, done.stderr)

    def releasegate_live(self, *args: str, **env: Any) -> int:
        """Run with the terminal's own stdout and stderr, as a person would see it."""
        return subprocess.run(
            self.argv(*args), env=self.env(**env), check=False, stdin=subprocess.DEVNULL
        ).returncode

    def files_left_behind(self) -> list[Path]:
        return [p for p in self.tmp.rglob("*") if p.is_file()]


class Stack(Project):
    """The project against the emulators: the Kubernetes API emulator and the skaffold stand-in."""

    def __init__(self, ecr: EcrEmulator, workdir: Path) -> None:
        super().__init__(ecr, workdir)
        self.kube = KubeEmulator(registry_has=ecr.has_image).start()
        install(self.bin)
        self.kubeconfig = self.kube.write_kubeconfig(workdir / "kubeconfig")

    def stop(self) -> None:
        super().stop()
        self.kube.stop()


def describe_with_chart(project: Path, env: str) -> None:
    """Switch ``env`` to the Helm chart, as the README tells a user to."""
    path = project / "k8s" / "environments" / f"{env}.yaml"
    text = path.read_text()
    for old, new in (
        ("renderer: templates", "renderer: chart"),
        (f"skaffold_profile: {env}\n", f"skaffold_profile: {env}-chart\n"),
    ):
        assert old in text, f"{path} has no {old!r}"
        text = text.replace(old, new)
    path.write_text(text)


def new_stack(ecr: EcrEmulator) -> Stack:
    return Stack(ecr, Path(tempfile.mkdtemp(prefix="releasegate-stack-")))


ROLE_PAGE = ROOT / "docs" / "eks.md"  # "Real use on EKS", which the README links for the Role


def readme_role() -> list[dict[str, Any]]:
    """The Role (and its binding) the documentation gives the deploying identity."""
    text = ROLE_PAGE.read_text()
    found = re.search(r"<!-- deployer-role -->\n```yaml\n(.*?)```", text, re.DOTALL)
    if found is None:
        raise AssertionError(f"{ROLE_PAGE} has no ```yaml block after <!-- deployer-role -->")
    return [d for d in yaml.safe_load_all(found.group(1)) if d]
