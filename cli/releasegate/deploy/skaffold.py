"""Build and run ``skaffold deploy`` (through ``process.run_program``), and read the profile
a Skaffold config gives an environment.

Deploying and waiting are separate: Skaffold applies; ``kube.py`` proves the rollout.

Layer: adapter for what deploys: templates, helm, skaffold, programs (imports only core and deploy/).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from releasegate.core.errors import BadInput
from releasegate.deploy.process import run_program

RUN_ID_LABEL = "skaffold.dev/run-id"


@dataclass(frozen=True)
class SkaffoldDeploy:
    skaffold_file: Path
    profile: str
    namespace: str
    image: str
    kube_context: str | None = None
    # Skaffold labels every object and pod template with `skaffold.dev/run-id`, a new UUID per
    # run: a redeploy of the same release, or a restore, would then change the pod template and
    # start new pods. A run-id fixed per environment keeps the template the release's own.
    run_id: str = ""
    # Off by default: releasegate's own verifier watches the rollout and fails fast with a
    # diagnosis, where Skaffold's status check would wait out its deadline first.
    status_check: bool = False

    def argv(self) -> list[str]:
        args = [
            "deploy",
            "--filename",
            str(self.skaffold_file),
            "--profile",
            self.profile,
            "--namespace",
            self.namespace,
            "--images",
            self.image,
            f"--status-check={str(self.status_check).lower()}",
            "--tail=false",
            "--interactive=false",
            "--update-check=false",
        ]
        if self.run_id:
            args += ["--label", f"{RUN_ID_LABEL}={self.run_id}"]
        if self.kube_context:
            args += ["--kube-context", self.kube_context]
        return args


def profile_manifests(skaffold_file: Path, profile: str) -> dict[str, Any]:
    """The ``manifests`` section Skaffold uses with ``profile`` (the base one when it has none)."""
    import yaml

    try:
        config = yaml.safe_load(skaffold_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadInput(f"{skaffold_file} cannot be read as YAML", "fix skaffold.yaml") from exc
    if not isinstance(config, dict):
        raise BadInput(f"{skaffold_file} must hold a Skaffold config", "fix skaffold.yaml")
    profiles = {p.get("name"): p for p in config.get("profiles", []) if isinstance(p, dict)}
    if profile not in profiles:
        raise BadInput(
            f"{skaffold_file.name} has no profile {profile!r}",
            f"add it, or fix skaffold_profile (profiles: {', '.join(map(str, profiles))})",
        )
    manifests = profiles[profile].get("manifests", config.get("manifests", {}))
    return manifests if isinstance(manifests, dict) else {}


def deploy(spec: SkaffoldDeploy, *, timeout: float, on_line: Callable[[str], None], cwd: Path) -> None:
    # No registry credential: the kubectl deployer pulls nothing; the nodes pull with their role.
    run_program(
        "skaffold",
        spec.argv(),
        timeout=timeout,
        on_line=on_line,
        cwd=cwd,
    )
