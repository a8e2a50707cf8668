"""The release pipeline: validate → render → ECR → skaffold deploy → verify.

Each command is a function that returns a ``Result`` or raises a ``ReleasegateError``; it
knows nothing about the command line. The outside world is reached only through the
adapters in ``Clients``, which are built once per run and create their SDK clients lazily.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import render as renderer
from .config import Environment, Project
from .errors import NeedsAttention
from .kube import Cluster
from .registry import Image, Registry
from .releases import Release, ReleaseSource, list_releases, validate_release
from .skaffold import SkaffoldDeploy
from .skaffold import deploy as skaffold_deploy
from .version import ReleaseTag


class Progress(Protocol):
    def stage(self, name: str, message: str, seconds: float) -> None: ...
    def detail(self, source: str, text: str) -> None: ...
    def secret(self, value: str) -> None: ...


@dataclass
class Result:
    """What every command reports, as text or as one JSON object."""

    command: str
    outcome: str
    env: str | None = None
    tag: str | None = None
    namespace: str | None = None
    image: str | None = None
    digest: str | None = None
    files: list[str] = field(default_factory=list)
    skaffold: list[str] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    pods_ready: str | None = None
    stages: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""


@dataclass
class Clients:
    releases: ReleaseSource
    registry: Registry
    cluster: Cluster

    @classmethod
    def for_environment(cls, project: Project, env: Environment, progress: Progress) -> Clients:
        return cls(
            releases=ReleaseSource(project.github_repository),
            registry=Registry(env.aws_region, on_secret=progress.secret),
            cluster=Cluster(env.kube_context),
        )


@dataclass(frozen=True)
class Plan:
    """Everything the pre-flight checks established: what exactly would be deployed."""

    tag: ReleaseTag
    release: Release
    image: Image
    manifests: list[renderer.Manifest]


@dataclass(frozen=True)
class DeployOptions:
    dry_run: bool = False
    timeout: float = 600.0


class _Stages:
    def __init__(self, result: Result, progress: Progress) -> None:
        self.result, self.progress = result, progress

    @contextmanager
    def run(self, name: str) -> Iterator[list[str]]:
        """Times one stage; the body appends the message to report when it succeeds."""
        started = time.monotonic()
        message: list[str] = []
        yield message
        seconds = time.monotonic() - started
        text = message[0] if message else "done"
        self.result.stages.append({"name": name, "seconds": round(seconds, 3), "message": text})
        self.progress.stage(name, text, seconds)


def releases(project: Project, progress: Progress) -> Result:
    del progress
    found = list_releases(ReleaseSource(project.github_repository), project.tag_prefix)
    return Result(
        command="releases",
        outcome="listed",
        releases=[
            {"tag": t.text, "prerelease": r.prerelease, "published_at": r.published_at, "url": r.html_url}
            for t, r in found
        ],
        message=f"{len(found)} published semver releases of {project.github_repository}",
    )


def preflight(project: Project, env: Environment, tag_text: str, clients: Clients, stages: _Stages) -> Plan:
    """Every check that needs no change: the tag, the release, the image, the manifests."""
    with stages.run("validate") as done:
        tag, release = validate_release(
            clients.releases, tag_text, project.tag_prefix, env.allow_prerelease, env.name
        )
        kind = "prerelease" if release.prerelease else "release"
        done.append(f"{tag} is a published {kind} of {project.github_repository}")
    with stages.run("image") as done:
        image = clients.registry.find_image(env.ecr_repository, tag.text)
        done.append(f"{image.repository_uri}:{tag} is {image.digest}")
    with stages.run("render") as done:
        manifests = renderer.render(project, env, tag, image.pinned)
        done.append(
            f"{len(manifests)} objects for {env.namespace}, valid against Kubernetes "
            f"{renderer.KUBERNETES_VERSION} schemas"
        )
    return Plan(tag=tag, release=release, image=image, manifests=manifests)


def check(project: Project, env: Environment, tag_text: str, progress: Progress) -> Result:
    result = _result("check", env)
    stages = _Stages(result, progress)
    clients = Clients.for_environment(project, env, progress)
    plan = preflight(project, env, tag_text, clients, stages)
    with stages.run("cluster") as done:
        clients.cluster.check_access(env.namespace)
        done.append(f"Deployments in {env.namespace} are readable")
    _describe(result, plan)
    result.outcome, result.message = "checked", f"{plan.tag} can be deployed to {env.name}"
    return result


def render(
    project: Project, env: Environment, tag_text: str, out_dir: Path | None, progress: Progress
) -> Result:
    result = _result("render", env)
    stages = _Stages(result, progress)
    plan = preflight(project, env, tag_text, Clients.for_environment(project, env, progress), stages)
    target = out_dir or project.build_dir(env.name)
    result.files = [str(p) for p in renderer.write(plan.manifests, target)]
    _describe(result, plan)
    result.outcome, result.message = "rendered", f"{len(result.files)} manifests written to {target}"
    return result


def deploy(
    project: Project, env: Environment, tag_text: str, options: DeployOptions, progress: Progress
) -> Result:
    started = time.monotonic()
    result = _result("deploy", env)
    stages = _Stages(result, progress)
    clients = Clients.for_environment(project, env, progress)
    plan = preflight(project, env, tag_text, clients, stages)
    _describe(result, plan)
    result.files = [str(p) for p in renderer.write(plan.manifests, project.build_dir(env.name))]
    spec = SkaffoldDeploy(
        skaffold_file=project.skaffold_file,
        profile=env.skaffold_profile,
        namespace=env.namespace,
        image=plan.image.pinned,
        kube_context=env.kube_context,
    )
    result.skaffold = ["skaffold", *spec.argv()]
    if options.dry_run:
        result.outcome = "planned"
        result.message = f"dry run: would deploy {plan.tag} to {env.name}; nothing was changed"
        return result

    with stages.run("cluster") as done:
        clients.cluster.check_access(env.namespace)
        done.append(f"Deployments in {env.namespace} are readable")
    with stages.run("deploy") as done, clients.registry.docker_config() as docker_config:
        skaffold_deploy(
            spec,
            docker_config=docker_config,
            timeout=_remaining(started, options.timeout),
            on_line=lambda line: progress.detail("skaffold", line),
            cwd=project.root,
        )
        done.append(f"skaffold applied {len(plan.manifests)} objects to {env.namespace}")
    with stages.run("verify") as done:
        verdict = clients.cluster.wait_for_rollout(
            env.namespace,
            project.app,
            plan.image.pinned,
            _remaining(started, options.timeout),
            on_progress=lambda text: progress.detail("rollout", text),
        )
        result.pods_ready = f"{verdict.ready}/{verdict.desired}"
        if verdict.state != "complete":
            raise NeedsAttention(
                f"{plan.tag} did not become Ready in {env.name}: {verdict.summary}",
                "fix the release and deploy again; the cluster was left as it is (rollback is not enabled)",
                details=tuple(clients.cluster.diagnose(env.namespace, verdict, plan.image.pinned)),
            )
        done.append(verdict.summary)
    result.outcome = "deployed"
    result.message = f"{plan.tag} is live in {env.name} ({result.pods_ready} pods Ready)"
    return result


def _result(command: str, env: Environment) -> Result:
    return Result(command=command, outcome="failed", env=env.name, namespace=env.namespace)


def _describe(result: Result, plan: Plan) -> None:
    result.tag, result.image, result.digest = plan.tag.text, plan.image.pinned, plan.image.digest


def _remaining(started: float, timeout: float) -> float:
    return max(timeout - (time.monotonic() - started), 1.0)
