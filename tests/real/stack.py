"""The project against the real tier: a real control plane, the real skaffold and kubectl.

Each stack gets namespaces of its own on the shared control plane (``model-api-nonprod-N``),
created by the admin identity with the README's Role bound to the *deployer* identity; the CLI
runs as the deployer, so a permission the README's Role lacks fails the test that needs it.
GitHub and ECR are the same emulators as in the fast tier.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

import yaml

from tests.emulators.ecr import EcrEmulator
from tests.emulators.proxy import Applications
from tests.emulators.stack import Project, readme_role

from .controlplane import ControlPlane
from .gateway import RealGateway
from .podnet import PodNetwork
from .stages import Kubelets

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/model-api"
ENVIRONMENTS = ("nonprod", "prod")
_numbers = itertools.count(1)


class RealStack(Project):
    def __init__(
        self,
        ecr: EcrEmulator,
        workdir: Path,
        plane: ControlPlane,
        network: PodNetwork,
        kubelets: Kubelets,
        deployer: str = "skaffold",
    ) -> None:
        super().__init__(ecr, workdir)
        self.deployer = deployer
        self.plane, self.network, self.kubelets = plane, network, kubelets
        self.gateway: RealGateway | None = None  # the run's gateway controller stand-in
        network.apps = Applications()  # this test's own scripted app, and its own record of calls
        suffix = f"{os.getpid() % 1000}-{next(_numbers)}"
        self.namespaces = {env: f"model-api-{env}-{suffix}" for env in ENVIRONMENTS}
        for env, namespace in self.namespaces.items():
            path = self.project / "k8s" / "environments" / f"{env}.yaml"
            path.write_text(
                path.read_text().replace(f"namespace: model-api-{env}\n", f"namespace: {namespace}\n")
                + f"deployer: {deployer}\n"
            )
            self._prepare(namespace)
        skaffold = self.project / "skaffold.yaml"  # the chart profiles name their namespace too
        text = skaffold.read_text()
        for env, namespace in self.namespaces.items():
            text = text.replace(f"namespace: model-api-{env}\n", f"namespace: {namespace}\n")
        skaffold.write_text(text)
        for tool in ("skaffold", "kubectl"):
            (self.bin / tool).symlink_to(plane.bin / tool)
        self.kubeconfig = plane.write_kubeconfig(workdir / "kubeconfig", plane.deployer)

    def _prepare(self, namespace: str) -> None:
        prepare_namespace(self.plane, namespace)

    def stop(self) -> None:
        super().stop()
        self.kubelets.forget(*self.namespaces.values())
        for namespace in self.namespaces.values():
            self.plane.kubectl("delete", "namespace", namespace, "--wait=false", "--ignore-not-found")

    # -- what the tests script and read -------------------------------------------------------

    def image(self, digest: str) -> str:
        return f"{REGISTRY}@{digest}"

    def behave(self, digest: str, scenario: str) -> None:
        """Pods of the image with ``digest`` follow ``scenario`` (see stages.py), in every env."""
        for namespace in self.namespaces.values():
            self.kubelets.behave(namespace, self.image(digest), scenario)

    def pods(self, env: str) -> list[dict[str, Any]]:
        listed = self.plane.get(f"/api/v1/namespaces/{self.namespaces[env]}/pods")
        return [p for p in listed["items"] if not p["metadata"].get("deletionTimestamp")]

    def serving_images(self, env: str) -> set[str]:
        return {p["spec"]["containers"][0]["image"] for p in self.pods(env)}

    def deployment(self, env: str, name: str = "model-api") -> dict[str, Any] | None:
        return self.plane.get(f"/apis/apps/v1/namespaces/{self.namespaces[env]}/deployments/{name}")


def prepare_namespace(plane: ControlPlane, namespace: str) -> None:
    """``namespace``, with the README's Role bound to the deployer identity, created as admin."""
    documents: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    ]
    for document in readme_role():
        document = {**document, "metadata": {**document["metadata"], "namespace": namespace}}
        documents.append(document)
    plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))
