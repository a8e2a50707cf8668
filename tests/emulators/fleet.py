"""Several clusters for one environment: the stack's own Kubernetes emulator and more, one
kubeconfig context each, and the image in every cluster's ECR region (as ECR replication
leaves it: the same digest in each region's registry)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .kube import KubeEmulator
from .stack import REPOSITORY, Stack


@dataclass(frozen=True)
class Member:
    name: str
    region: str
    wave: int
    kube: KubeEmulator

    @property
    def context(self) -> str:
        return f"eks-{self.name}"


def list_clusters(project: Path, clusters: list[tuple[str, str, str, int]], waves: dict[str, Any]) -> None:
    """nonprod's ``clusters:`` (name, kube_context, aws_region, wave) and ``waves:``, in its file."""
    path = project / "k8s" / "environments" / "nonprod.yaml"
    entries = [{"name": name, "kube_context": context, "aws_region": region, "wave": wave}
               for name, context, region, wave in clusters]  # fmt: skip
    text = path.read_text().replace("kube_context: null", "")
    path.write_text(text + yaml.safe_dump({"clusters": entries, "waves": waves}, sort_keys=False))


class Fleet:
    """``clusters`` as (name, region, wave): the first one is the stack's own emulator."""

    def __init__(self, stack: Stack, clusters: list[tuple[str, str, int]], waves: dict[str, Any]) -> None:
        self.stack = stack
        self.members = [
            Member(
                name,
                region,
                wave,
                stack.kube if n == 0 else KubeEmulator(registry_has=stack.ecr.has_image).start(),
            )
            for n, (name, region, wave) in enumerate(clusters)
        ]
        for region in sorted({m.region for m in self.members} - {stack.ecr.region}):
            stack.ecr.create_repository(REPOSITORY, region)
        stack.kubeconfig = stack.workdir / "kubeconfig-fleet"
        stack.kubeconfig.write_text(json.dumps(self.kubeconfig()))
        list_clusters(stack.project, [(m.name, m.context, m.region, m.wave) for m in self.members], waves)

    def kubeconfig(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": m.name, "cluster": {"server": m.kube.url}} for m in self.members],
            "users": [{"name": m.name, "user": {"token": m.kube.token}} for m in self.members],
            "contexts": [
                {"name": m.context, "context": {"cluster": m.name, "user": m.name}} for m in self.members
            ],
            "current-context": self.members[0].context,
        }

    def publish(self, tag: str, skip_regions: tuple[str, ...] = ()) -> str:
        """The GitHub release and its image in every region (but ``skip_regions``)."""
        self.stack.github.add_release(tag)
        digests = {
            self.stack.ecr.push(REPOSITORY, tag, m.region)
            for m in self.members
            if m.region not in skip_regions
        }
        (digest,) = digests
        return digest

    def member(self, name: str) -> Member:
        return next(m for m in self.members if m.name == name)

    def stop(self) -> None:
        for member in self.members[1:]:
            member.kube.stop()
