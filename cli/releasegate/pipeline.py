"""The release pipeline: validate → render → ECR → lock → skaffold deploy → verify → record,
and on failure, restore the last good release.

Each command is a function that returns a ``Result`` or raises a ``ReleasegateError``; it
knows nothing about the command line. The outside world is reached only through the
adapters in ``Clients``, which are built once per run and create their SDK clients lazily.
``recovery.py`` holds what puts a known release back (automatic restore and ``rollback``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from . import render as renderer
from .config import Environment, Project
from .deployments import DeploymentRecord
from .errors import Interrupted, NeedsAttention, Refused, ReleasegateError, RolledBack
from .kube import Cluster
from .ledger import DEPLOYED, FAILED, INTERRUPTED, PENDING, Ledger, Record, actor, manifest_hash, serving
from .lock import DeployLock
from .registry import Image, Registry
from .releases import Release, ReleaseSource, list_releases, validate_release
from .skaffold import SkaffoldDeploy
from .skaffold import deploy as skaffold_deploy
from .version import ReleaseTag, parse_tag


class Progress(Protocol):
    def stage(self, name: str, message: str, seconds: float) -> None: ...
    def detail(self, source: str, text: str) -> None: ...
    def warning(self, text: str) -> None: ...
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
    revision: int | None = None
    files: list[str] = field(default_factory=list)
    skaffold: list[str] = field(default_factory=list)
    releases: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    pods_ready: str | None = None
    drift: str | None = None
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
    release: Release | None
    image: str  # repository@sha256:…
    manifests: list[renderer.Manifest]


@dataclass(frozen=True)
class DeployOptions:
    dry_run: bool = False
    timeout: float = 600.0
    rollback: bool = True
    allow_downgrade: bool = False
    skip_promotion_check: bool = False


class Stages:
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


@dataclass
class Run:
    """One command's shared state: what it works on and how it reports."""

    project: Project
    env: Environment
    clients: Clients
    stages: Stages
    progress: Progress

    @classmethod
    def start(cls, command: str, project: Project, env: Environment, progress: Progress) -> Run:
        result = Result(command=command, outcome="failed", env=env.name, namespace=env.namespace)
        clients = Clients.for_environment(project, env, progress)
        return cls(project, env, clients, Stages(result, progress), progress)

    @property
    def result(self) -> Result:
        return self.stages.result

    @contextmanager
    def reporting_failures(self) -> Iterator[None]:
        """Attach what is known so far to any error, for the step summary."""
        try:
            yield
        except ReleasegateError as error:
            error.result = self.result
            raise

    def ledger(self) -> Ledger:
        return Ledger(self.clients.cluster, self.env.namespace, self.project.app)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the environment's deploy lock for the body (the stage times only taking it)."""
        name = f"releasegate-{self.project.app}"
        identity = f"{actor()} pid {os.getpid()}"
        lock = DeployLock(self.clients.cluster, self.env.namespace, name, identity, self.progress.warning)
        with ExitStack() as held:
            with self.stages.run("lock") as done:
                held.enter_context(lock)
                done.append(f"holding the {self.env.namespace} deploy lock as {identity}")
            yield

    def plan_from_record(self, record: Record) -> Plan:
        tag = parse_tag(record.tag, self.project.tag_prefix)
        return Plan(tag, None, record.image, renderer.render(self.project, self.env, tag, record.image))

    def apply(self, plan: Plan, timeout: float, stage: str = "deploy") -> str:
        """Write, skaffold deploy and verify one release; NeedsAttention when it is not Ready."""
        started = time.monotonic()
        renderer.write_for_deploy(self.project, self.env, plan.tag, plan.image, plan.manifests)
        spec = skaffold_spec(self.project, self.env, plan.image)
        with self.stages.run(stage) as done, self.clients.registry.docker_config() as docker_config:
            skaffold_deploy(
                spec,
                docker_config=docker_config,
                timeout=timeout,
                on_line=lambda line: self.progress.detail("skaffold", line),
                cwd=self.project.root,
            )
            done.append(
                f"skaffold applied {len(plan.manifests)} objects for {plan.tag} to {self.env.namespace}"
            )
        remaining = max(timeout - (time.monotonic() - started), 1.0)
        with self.stages.run("verify") as done:
            verdict = self.clients.cluster.wait_for_rollout(
                self.env.namespace,
                self.project.app,
                plan.image,
                remaining,
                on_progress=lambda text: self.progress.detail("rollout", text),
            )
            if verdict.state != "complete":
                raise NeedsAttention(
                    f"{plan.tag} did not become Ready in {self.env.name}: {verdict.summary}",
                    "fix the release and deploy again",
                    details=tuple(self.clients.cluster.diagnose(self.env.namespace, verdict, plan.image)),
                )
            done.append(verdict.summary)
        return f"{verdict.ready}/{verdict.desired}"


def skaffold_spec(project: Project, env: Environment, image: str) -> SkaffoldDeploy:
    return SkaffoldDeploy(
        skaffold_file=project.skaffold_file,
        profile=env.skaffold_profile,
        namespace=env.namespace,
        image=image,
        kube_context=env.kube_context,
        run_id=f"releasegate-{env.name}",
    )


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


def preflight(run: Run, tag_text: str) -> Plan:
    """Every check that needs no change: the tag, the release, the image, the manifests."""
    project, env, clients = run.project, run.env, run.clients
    with run.stages.run("validate") as done:
        tag, release = validate_release(
            clients.releases, tag_text, project.tag_prefix, env.allow_prerelease, env.name
        )
        kind = "prerelease" if release.prerelease else "release"
        done.append(f"{tag} is a published {kind} of {project.github_repository}")
    with run.stages.run("image") as done:
        image: Image = clients.registry.find_image(env.ecr_repository, tag.text)
        done.append(f"{image.repository_uri}:{tag} is {image.digest}")
    with run.stages.run("render") as done:
        manifests = renderer.render(project, env, tag, image.pinned)
        done.append(
            f"{len(manifests)} objects from {renderer.describe(project, env)} for {env.namespace}, "
            f"valid against Kubernetes "
            f"{renderer.KUBERNETES_VERSION} schemas"
        )
    describe(run.result, tag.text, image.pinned)
    return Plan(tag=tag, release=release, image=image.pinned, manifests=manifests)


def promotion(run: Run, plan: Plan, skip: bool) -> None:
    """Protected environments take only tags verified where they are promoted from."""
    from .promotion import require_promotion

    if run.env.promote_from is None:
        return
    with run.stages.run("promote") as done:
        if skip:
            run.progress.warning(f"--skip-promotion-check: not checking that {plan.tag} was verified first")
            done.append("skipped (--skip-promotion-check)")
            return
        where = require_promotion(
            run.project, run.env, plan.tag.text, run.clients.releases, run.progress.warning
        )
        done.append(f"{plan.tag} was verified in {where}")


def check(project: Project, env: Environment, tag_text: str, progress: Progress) -> Result:
    run = Run.start("check", project, env, progress)
    plan = preflight(run, tag_text)
    promotion(run, plan, skip=False)
    with run.stages.run("cluster") as done:
        run.clients.cluster.check_access(env.namespace)
        done.append(f"Deployments in {env.namespace} are readable")
    run.result.outcome, run.result.message = "checked", f"{plan.tag} can be deployed to {env.name}"
    return run.result


def render(
    project: Project, env: Environment, tag_text: str, out_dir: Path | None, progress: Progress
) -> Result:
    run = Run.start("render", project, env, progress)
    plan = preflight(run, tag_text)
    target = out_dir or project.build_dir(env.name)
    run.result.files = [str(p) for p in renderer.write(plan.manifests, target)]
    run.result.outcome = "rendered"
    run.result.message = f"{len(run.result.files)} manifests written to {target}"
    return run.result


def deploy(
    project: Project, env: Environment, tag_text: str, options: DeployOptions, progress: Progress
) -> Result:
    from .recovery import recover

    run = Run.start("deploy", project, env, progress)
    run.result.tag = tag_text
    with run.reporting_failures():
        plan = preflight(run, tag_text)
        promotion(run, plan, options.skip_promotion_check)
        run.result.skaffold = ["skaffold", *skaffold_spec(project, env, plan.image).argv()]
        if options.dry_run:
            written = renderer.write_for_deploy(project, env, plan.tag, plan.image, plan.manifests)
            run.result.files = [str(p) for p in written]
            run.result.outcome = "planned"
            run.result.message = f"dry run: would deploy {plan.tag} to {env.name}; nothing was changed"
            return run.result

        with run.stages.run("cluster") as done:
            run.clients.cluster.check_access(env.namespace)
            done.append(f"Deployments in {env.namespace} are readable")
        with run.locked():
            ledger = run.ledger()
            current = serving(ledger.records())
            guard_downgrade(plan.tag, current, options.allow_downgrade, env, progress)
            record = ledger.append(
                tag=plan.tag.text,
                image=plan.image,
                commit=os.environ.get("GITHUB_SHA", ""),
                outcome=PENDING,
                manifest_hash=manifest_hash(plan.manifests),
            )
            run.result.revision = record.revision
            github = DeploymentRecord(run.clients.releases, progress.warning)
            if run.clients.releases.has_token:
                github.start(plan.tag.text, env.name, production=env.protected)
            try:
                try:
                    run.result.pods_ready = run.apply(plan, options.timeout)
                except NeedsAttention as failure:
                    ledger.mark(record, FAILED, failure.cause)
                    github.status("failure", failure.cause)
                    recover(run, failure, current, record, options)
                except KeyboardInterrupt:
                    ledger.mark(record, INTERRUPTED, "interrupted by SIGINT/SIGTERM")
                    github.status("failure", "interrupted")
                    recover(run, None, current, record, options)
            except (RolledBack, Interrupted) as restored:
                github.status("inactive", restored.cause)  # no longer live: the previous release is
                raise
            ledger.mark(record, DEPLOYED)
            github.status("success", f"{plan.tag} is live ({run.result.pods_ready} pods Ready)")
        run.result.outcome = "deployed"
        run.result.message = f"{plan.tag} is live in {env.name} ({run.result.pods_ready} pods Ready)"
        return run.result


def guard_downgrade(
    tag: ReleaseTag, current: Record | None, allowed: bool, env: Environment, progress: Progress
) -> None:
    if current is None:
        return
    try:
        serving_version = parse_tag(current.tag, "optional").version
    except Exception:  # a ledger record from another tag policy: nothing to compare
        return
    if tag.version < serving_version and not allowed:
        raise Refused(
            f"{tag} is older than {current.tag}, which is serving {env.name}",
            "pass --allow-downgrade to deploy an older release, or use `releasegate rollback`",
        )
    if tag.version == serving_version:
        progress.warning(f"{tag} is already the release serving {env.name}: redeploying it")


def describe(result: Result, tag: str, image: str) -> None:
    result.tag, result.image, result.digest = tag, image, image.partition("@")[2]
