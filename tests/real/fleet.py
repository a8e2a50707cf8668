"""Several real clusters for one environment: the session's control plane and two more, each
its own etcd, kube-apiservers, controllers, scheduler, kwok and pod network; the stack's
nonprod lists the three as ``clusters:``, and the image is in each cluster's ECR region."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.emulators.fleet import list_clusters
from tests.emulators.stack import REPOSITORY

from .controlplane import ControlPlane, running
from .podnet import PodNetwork
from .stack import RealStack, prepare_namespace
from .stages import Kubelets


@dataclass(frozen=True)
class RealMember:
    name: str
    region: str
    wave: int
    plane: ControlPlane
    kubelets: Kubelets

    @property
    def context(self) -> str:
        return f"eks-{self.name}"


def more_planes(workdir: Path, count: int) -> Iterator[list[tuple[ControlPlane, PodNetwork, Kubelets]]]:
    """``count`` control planes besides the session's one, stopped at the end."""
    with ExitStack() as stack:
        planes = []
        for n in range(count):
            plane, network = stack.enter_context(running(workdir / f"plane-{n + 2}"))
            kubelets = Kubelets(plane)
            kubelets.install()
            network.kubelets = kubelets
            planes.append((plane, network, kubelets))
        yield planes


class RealFleet:
    """``real``'s nonprod across its own plane (the first cluster) and ``others``."""

    def __init__(
        self, real: RealStack, others: list[tuple[ControlPlane, PodNetwork, Kubelets]],
        clusters: list[tuple[str, str, int]], waves: dict[str, Any],
    ) -> None:  # fmt: skip
        self.real = real
        planes = [(real.plane, real.kubelets)] + [(plane, kubelets) for plane, _, kubelets in others]
        pairs = zip(clusters, planes, strict=False)
        self.members = [RealMember(name, region, wave, plane, kubelets)
                        for (name, region, wave), (plane, kubelets) in pairs]  # fmt: skip
        self.namespace = real.namespaces["nonprod"]
        for member in self.members[1:]:
            prepare_namespace(member.plane, self.namespace)
        for region in sorted({m.region for m in self.members} - {real.ecr.region}):
            if region not in self.regions_with_repository(real):
                real.ecr.create_repository(REPOSITORY, region)
        real.kubeconfig = real.workdir / "kubeconfig-fleet"
        real.kubeconfig.write_text(json.dumps(self._kubeconfig()))
        list_clusters(real.project, [(m.name, m.context, m.region, m.wave) for m in self.members], waves)

    @staticmethod
    def regions_with_repository(real: RealStack) -> set[str]:
        """Regions where an earlier test of the session created the repository (moto keeps it)."""
        found = set()
        for region in ("us-east-1", "ap-southeast-1"):
            names = [
                r["repositoryName"] for r in real.ecr.client(region).describe_repositories()["repositories"]
            ]
            if REPOSITORY in names:
                found.add(region)
        return found

    def _kubeconfig(self) -> dict[str, Any]:
        def server(plane: ControlPlane) -> dict[str, Any]:
            return {"server": plane.url, "certificate-authority": str(plane.workdir / "ca.crt")}

        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": m.name, "cluster": server(m.plane)} for m in self.members],
            "users": [{"name": m.name, "user": {"token": m.plane.deployer.token}} for m in self.members],
            "contexts": [
                {"name": m.context, "context": {"cluster": m.name, "user": m.name}} for m in self.members
            ],
            "current-context": self.members[0].context,
        }

    @staticmethod
    def _context(member: RealMember) -> dict[str, Any]:
        return {"name": member.context, "context": {"cluster": member.name, "user": member.name}}

    def publish(self, tag: str) -> str:
        self.real.github.add_release(tag)
        (digest,) = {self.real.ecr.push(REPOSITORY, tag, m.region) for m in self.members}
        return digest

    def pinned(self, member: RealMember, digest: str) -> str:
        return f"123456789012.dkr.ecr.{member.region}.amazonaws.com/model-api@{digest}"

    def behave(self, member: RealMember, digest: str, scenario: str) -> None:
        member.kubelets.behave(self.namespace, self.pinned(member, digest), scenario)

    def deployment(self, member: RealMember) -> dict[str, Any] | None:
        found: dict[str, Any] | None = member.plane.get(
            f"/apis/apps/v1/namespaces/{self.namespace}/deployments/model-api"
        )
        return found

    def ready_images(self, member: RealMember) -> set[str]:
        """The images of the Ready pods the real API server lists."""
        listed = member.plane.get(f"/api/v1/namespaces/{self.namespace}/pods")["items"]
        return {
            p["spec"]["containers"][0]["image"] for p in listed
            if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions") or [])
        }  # fmt: skip

    def member(self, name: str) -> RealMember:
        return next(m for m in self.members if m.name == name)

    def stop(self) -> None:
        for member in self.members[1:]:
            member.kubelets.forget(self.namespace)
            member.plane.kubectl("delete", "namespace", self.namespace, "--wait=false", "--ignore-not-found")


def stop_apiservers(plane: ControlPlane) -> None:
    """Every kube-apiserver of ``plane`` killed: the cluster is unreachable (its balancer has no
    backend left), as when a region's control plane goes away."""
    for which in range(len(plane.backends)):
        process = plane.processes.pop(f"kube-apiserver-{which}")
        process.kill()
        process.wait(timeout=10)


def start_apiservers(plane: ControlPlane) -> None:
    for which, port in enumerate(plane.backends):
        plane._start(f"kube-apiserver-{which}", plane._apiserver_args(port), binary="kube-apiserver")
    plane._wait_ready()
