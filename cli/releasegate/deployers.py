"""The two ways a release's objects reach the cluster, behind one small interface and chosen
once from the environment (``deployer:``), as Skaffold's own deployers are: ``skaffold`` runs
``skaffold deploy`` (client-side ``kubectl apply`` of the manifests written to the build
folder); ``apply`` sends the rendered objects with server-side apply (``kube/serverside.py``).
Either way ``run.py`` verifies the rollout afterwards: deploying and waiting stay separate.

Layer: between the adapters it chooses from and run.py, which uses it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from releasegate.core.config import Environment, Project
from releasegate.core.errors import NeedsAttention, Refused
from releasegate.core.placement import Manifest, Placement
from releasegate.core.version import ReleaseTag
from releasegate.deploy import render as renderer
from releasegate.deploy.process import require_program
from releasegate.deploy.skaffold import SkaffoldDeploy
from releasegate.deploy.skaffold import deploy as skaffold_deploy
from releasegate.kube import autoscaling
from releasegate.kube.api import Cluster, translated_errors


@dataclass(frozen=True)
class Rendered:
    """What a deployer puts in the cluster: one release's objects, rendered."""

    tag: ReleaseTag
    image: str  # repository@sha256:…
    manifests: list[Manifest]
    slots: Placement = None


class Deployer(Protocol):
    @property
    def name(self) -> str: ...

    def require(self) -> None:
        """Before any change: what it runs is there (exit 3 otherwise)."""
        ...

    def put(self, release: Rendered, timeout: float, on_line: Callable[[str], None]) -> str:
        """Put ``release``'s objects in the cluster; say what was done, in one line."""
        ...

    def dry_run(self, release: Rendered, on_line: Callable[[str], None]) -> str:
        """What ``put`` would do, changing nothing; in one line."""
        ...


# Skaffold reads an environment's manifests from one build folder (skaffold.yaml's profile names
# it): several clusters of one environment take turns writing it and running skaffold deploy on it
# (a few seconds each); the rollouts they verify afterwards still run side by side.
BUILD_FOLDER_TURN = threading.Lock()


@dataclass(frozen=True)
class Skaffold:
    project: Project
    env: Environment
    cluster: Cluster
    name: str = "skaffold"

    def require(self) -> None:
        require_program("skaffold")

    def put(self, release: Rendered, timeout: float, on_line: Callable[[str], None]) -> str:
        self._leave_replicas_to_the_autoscaler(release, on_line)
        with BUILD_FOLDER_TURN:
            renderer.write_for_deploy(
                self.project, self.env, release.tag, release.image, release.manifests, release.slots
            )
            skaffold_deploy(skaffold_spec(self.project, self.env, release.image), timeout=timeout,
                            on_line=on_line, cwd=self.project.root)  # fmt: skip
        return f"skaffold applied {len(release.manifests)} objects for {release.tag} to {self.env.namespace}"

    def dry_run(self, release: Rendered, on_line: Callable[[str], None]) -> str:
        argv = skaffold_spec(self.project, self.env, release.image).argv()
        return f"would run: skaffold {' '.join(argv)}"

    def _leave_replicas_to_the_autoscaler(self, release: Rendered, on_line: Callable[[str], None]) -> None:
        """kubectl's three-way merge would remove spec.replicas from a Deployment an autoscaler
        scales now (it was in the last applied configuration): forget it there first."""
        for manifest in release.manifests:
            if manifest.kind != "Deployment" or autoscaling.initial_replicas(manifest) is None:
                continue
            with translated_errors("cannot read the Deployment in", self.env.namespace, NeedsAttention):
                live = autoscaling.live_deployment(self.cluster, self.env.namespace, manifest.name)
                if live is not None and autoscaling.forget_applied_replicas(self.cluster, live):
                    on_line(
                        f"Deployment {manifest.name}: spec.replicas is now the autoscaler's: removed it from "
                        "kubectl's last-applied-configuration, so this apply keeps the live count"
                    )


@dataclass(frozen=True)
class ServerSideApply:
    env: Environment
    cluster: Cluster
    name: str = "apply"

    def require(self) -> None:
        return None  # only the API server: the pre-flight checks it already

    def put(self, release: Rendered, timeout: float, on_line: Callable[[str], None]) -> str:
        from releasegate.kube.serverside import apply_objects

        del timeout  # each request has the client's own timeout; the rollout's wait follows
        with translated_errors("cannot apply the release's objects in", self.env.namespace, NeedsAttention):
            applied = apply_objects(self.cluster, self.env.namespace, [m.obj for m in release.manifests],
                                    run_id=run_id(self.env), on_line=on_line)  # fmt: skip
        moved = f"; took over {len(applied.taken_over)} from client-side apply" if applied.taken_over else ""
        return (
            f"server-side applied {len(applied.objects)} objects for {release.tag} to {self.env.namespace} "
            f"({len(applied.changed)} changed{moved})"
        )

    def dry_run(self, release: Rendered, on_line: Callable[[str], None]) -> str:
        from releasegate.kube.serverside import apply_objects

        with translated_errors(
            "the API server refused the release's objects in", self.env.namespace, Refused
        ):
            applied = apply_objects(self.cluster, self.env.namespace, [m.obj for m in release.manifests],
                                    run_id=run_id(self.env), dry_run=True, on_line=on_line)  # fmt: skip
        return (
            f"the API server accepted all {len(applied.objects)} objects of {release.tag} in a server-side "
            f"dry run (admission and validation ran, nothing changed); {len(applied.changed)} would change"
        )


def for_environment(project: Project, env: Environment, cluster: Cluster) -> Deployer:
    if env.deployer == "apply":
        return ServerSideApply(env, cluster)
    return Skaffold(project, env, cluster)


def run_id(env: Environment) -> str:
    """Skaffold's run-id label, fixed per environment: an unchanged release rolls no pod."""
    return f"releasegate-{env.name}"


def skaffold_spec(project: Project, env: Environment, image: str) -> SkaffoldDeploy:
    return SkaffoldDeploy(
        skaffold_file=project.skaffold_file,
        profile=env.skaffold_profile,
        namespace=env.namespace,
        image=image,
        kube_context=env.kube_context,
        run_id=run_id(env),
    )
