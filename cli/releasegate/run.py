"""One command's shared state: what it works on, the clients it talks through, how it reports.

``pipeline.py`` (check, render, deploy) and ``recovery.py`` (restore, rollback, status,
history) both build on this module, and it on neither, so the dependency runs one way.
``Run.apply`` is the one way a release is put into the cluster: write the manifests,
``skaffold deploy``, verify the rollout.

Layer: one command's state, above the adapters, below the strategies and the commands.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from releasegate import deployers
from releasegate.aws.registry import Registry
from releasegate.core import placement
from releasegate.core.applyset import members
from releasegate.core.config import Environment, Project
from releasegate.core.errors import NeedsAttention, Refused, ReleasegateError
from releasegate.core.freeze import Override
from releasegate.core.notify_config import NotifyTarget
from releasegate.core.version import ReleaseTag, parse_tag
from releasegate.deploy import render as renderer
from releasegate.deployers import Deployer, Rendered
from releasegate.github.releases import Release, ReleaseSource
from releasegate.kube import autoscaling, permissions
from releasegate.kube.api import SERVICES, Cluster, translated_errors
from releasegate.kube.applyset import ApplySet
from releasegate.kube.ledger import Ledger, Record
from releasegate.kube.lock import DeployLock, holder_identity
from releasegate.kube.permissions import Permission
from releasegate.kube.verify import diagnose, wait_for_endpoints, wait_for_rollout

# Seconds, at least, for a Service's endpoints to follow a change before the smoke checks.
ENDPOINTS_SECONDS = 30


class Progress(Protocol):
    def stage(self, name: str, message: str, seconds: float) -> None: ...
    def detail(self, source: str, text: str) -> None: ...
    def warning(self, text: str) -> None: ...
    def secret(self, value: str) -> None: ...
    def notify_with(self, targets: tuple[NotifyTarget, ...]) -> None: ...


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
    smoke: list[dict[str, Any]] = field(default_factory=list)  # one entry per smoke check
    compare: dict[str, Any] | None = None  # the candidate's answers against the serving one's
    analysis: list[dict[str, Any]] = field(default_factory=list)  # canary: one entry per evaluation
    strategy: str | None = None  # how the release was put in service
    slot: str | None = None  # blue/green: the slot the release runs in
    step: str | int | None = None  # a paused release: the step it waits at (canary: its number)
    weight: int | None = None  # canary: the share of traffic the release has
    weights: list[int] = field(default_factory=list)  # canary: the weight of each step this run took
    stages: list[dict[str, Any]] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)  # Kind/name deleted (or, --dry-run, to delete)
    clusters: list[dict[str, Any]] = field(default_factory=list)  # several clusters: one entry each
    message: str = ""
    failed_tag: str | None = None  # a failure restored: the release that failed (tag: the one restored)
    freeze_override: dict[str, str] | None = None  # deployed during a freeze: window, until, reason
    freeze: dict[str, str] | None = None  # check, status: the freeze the environment is in now
    # metrics: the four DORA keys, the window they cover, and the deploys counted
    deployment_frequency: dict[str, Any] | None = None
    lead_time_hours: dict[str, Any] | None = None
    change_failure_rate: dict[str, Any] | None = None
    time_to_restore_hours: dict[str, Any] | None = None
    window: dict[str, Any] | None = None
    deploys: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Clients:
    releases: ReleaseSource
    registry: Registry
    cluster: Cluster

    @classmethod
    def for_environment(cls, project: Project, env: Environment, progress: Progress) -> Clients:
        releases = ReleaseSource(project.github_repository)
        progress.secret(releases.token)  # never printed, even inside an SDK's error message
        return cls(
            releases=releases,
            registry=Registry(env.aws_region),
            cluster=Cluster(env.kube_context),
        )


@dataclass(frozen=True)
class Plan:
    """Everything the pre-flight checks established: what exactly would be deployed."""

    tag: ReleaseTag
    release: Release | None
    image: str  # repository@sha256:…
    manifests: list[placement.Manifest]
    slots: placement.Placement = None  # blue/green's slot or canary's track the manifests are for


@dataclass(frozen=True)
class DeployOptions:
    dry_run: bool = False
    timeout: float = 600.0
    rollback: bool = True
    allow_downgrade: bool = False
    skip_promotion_check: bool = False
    freeze_override: Override | None = None  # let through a freeze window, with the reason


class Stages:
    def __init__(self, result: Result, progress: Progress) -> None:
        self.result, self.progress = result, progress
        self.began = time.monotonic()  # each stage's start is kept from here, for the time line

    @contextmanager
    def run(self, name: str) -> Iterator[list[str]]:
        """Times one stage; the body appends the message to report when it succeeds."""
        started = time.monotonic()
        message: list[str] = []
        yield message
        seconds = time.monotonic() - started
        text = message[0] if message else "done"
        self.result.stages.append({"name": name, "seconds": round(seconds, 3), "message": text,
                                   "started": round(started - self.began, 3)})  # fmt: skip
        self.progress.stage(name, text, seconds)


@dataclass
class Run:
    """One command's shared state: what it works on and how it reports."""

    project: Project
    env: Environment
    clients: Clients
    stages: Stages
    progress: Progress
    lock: DeployLock | None = None  # while the deploy lock is held
    # Called at a strategy's milestones ("testing in green", "switched to green"): the deploy
    # posts them as GitHub deployment statuses.
    milestone: Callable[[str], None] = lambda text: None
    # --timeout, once a strategy knows it: what each wait for pods may take (a rollout, a
    # canary scaled for its step, a promotion, a restore); a canary's pauses come on top.
    pod_timeout: float | None = None
    # The command must end as soon as traffic is where it belongs (an interrupt, `rollback`,
    # `abort`): what traffic left is taken down by the next run (strategies/draining.py).
    must_end_now: bool = False
    _reviews: Future[list[Permission]] | None = None  # access reviews started ahead (start_cluster_checks)

    @classmethod
    def start(cls, command: str, project: Project, env: Environment, progress: Progress) -> Run:
        result = Result(command=command, outcome="failed", env=env.name, namespace=env.namespace)
        result.strategy = env.strategy.type
        progress.notify_with(env.notify)  # before anything can fail: a failure is announced too
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

    def start_cluster_checks(self) -> None:
        """Ask the API server the access reviews in the background while the pre-flight talks to
        GitHub and ECR and renders (they wait on the network; `check_cluster` collects them)."""
        from concurrent.futures import ThreadPoolExecutor

        cluster, env = self.clients.cluster, self.env
        # Every import the reviews need happens here, in this thread: two threads importing the
        # same packages at once can see one half-initialised (requests, under both SDKs).
        cluster.prepare()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cluster-checks")
        self._reviews = pool.submit(
            lambda: permissions.missing(cluster, env.namespace, permissions.needed(env))
        )
        pool.shutdown(wait=False)

    def check_cluster(self, create_namespace: bool = True) -> None:
        """Before the first change: the cluster answers, the namespace is there (or is created
        when the environment says so), and skaffold is there to deploy with."""
        namespace, cluster = self.env.namespace, self.clients.cluster
        with self.stages.run("cluster") as done:
            self.deployer().require()
            exists = cluster.namespace_exists(namespace)
            if exists is False and not self.env.create_namespace:
                raise Refused(
                    f"namespace {namespace} does not exist in the cluster",
                    f"create it (`kubectl create namespace {namespace}`), "
                    f"or set create_namespace: true in k8s/environments/{self.env.name}.yaml",
                )
            if exists is False and create_namespace:
                cluster.create_namespace(namespace)
                self.progress.warning(f"created namespace {namespace} (create_namespace: true)")
            cluster.check_access(namespace)
            with translated_errors("cannot ask the API server what may be done in", namespace, Refused):
                lacking = self._reviews.result() if self._reviews is not None else None
                granted = permissions.require(cluster, self.env, lacking)
            done.append(f"Deployments in {namespace} are readable; {granted} permissions granted")

    def deployer(self) -> Deployer:
        """What puts this environment's objects in the cluster (``deployer:``)."""
        return deployers.for_environment(self.project, self.env, self.clients.cluster)

    def ledger(self) -> Ledger:
        return Ledger(self.clients.cluster, self.env.namespace, self.project.app, self.ensure_lock)

    def abort_requested(self) -> str | None:
        """Who ran `releasegate abort` while this run holds the lock (None: nobody)."""
        return self.lock.abort_requested_by() if self.lock is not None else None

    def ensure_lock(self) -> None:
        """Before a change while the lock is held: stop if another deploy took it over."""
        if self.lock is not None:
            self.lock.ensure_held()

    @contextmanager
    def locked(self, take_over_this_run: bool = False) -> Iterator[None]:
        """Hold the environment's deploy lock for the body (the stage times only taking it)."""
        name = f"releasegate-{self.project.app}"
        identity = holder_identity()
        lock = DeployLock(
            self.clients.cluster,
            self.env.namespace,
            name,
            identity,
            self.progress.warning,
            take_over_this_run=take_over_this_run,
        )
        with ExitStack() as held:
            with self.stages.run("lock") as done:
                held.enter_context(lock)
                done.append(f"holding the {self.env.namespace} deploy lock as {identity}")
            self.lock = lock
            try:
                yield
            finally:
                self.lock = None

    def _count_to_set(self, plan: Plan, workload: str) -> int | None:
        """When an autoscaler owns the count: the count to set once the deployer has created the
        Deployment, or started a blue/green slot that was scaled to 0 (None: nothing to set)."""
        initial = autoscaling.initial_replicas(_deployment(plan, workload))
        if initial is None:
            return None
        with translated_errors("cannot read the Deployment in", self.env.namespace, NeedsAttention):
            live = autoscaling.live_deployment(self.clients.cluster, self.env.namespace, workload)
        return initial if live is None or live["spec"].get("replicas") == 0 else None

    def smoke_check(
        self, image: str, service: str | None = None, stage: str = "smoke", just_changed: bool = True
    ) -> None:
        """The environment's smoke checks against ``image`` through ``service`` (default: the
        app's own Service); nothing when the environment has none. ``just_changed``: the
        Service's pods or selector changed just now, so its endpoints are awaited first."""
        from releasegate.kube.smoke import SmokeFailed, run_checks

        if self.env.smoke is None:
            return
        with self.stages.run(stage) as done:
            if just_changed and not self.env.smoke.each_pod:
                self._await_endpoints(service or self.project.app, image)
            try:
                results = run_checks(
                    self.clients.cluster,
                    self.env.namespace,
                    service or self.project.app,
                    self.env.smoke,
                    image,
                    on_progress=lambda text: self.progress.detail("smoke", text),
                )
            except SmokeFailed as failed:
                self.result.smoke = [r.as_dict() for r in failed.results]
                raise
            self.result.smoke = [r.as_dict() for r in results]
            through = service or self.project.app
            done.append(f"{len(results)} checks passed through the API server's proxy to {through}")

    def _await_endpoints(self, service: str, image: str) -> None:
        """Checks through a Service reach what its EndpointSlices list, which follow a change a
        moment late: wait until they list only Ready pods on ``image``, so that a check is never
        answered by the release before (or refused with "no endpoints available")."""
        found = self.clients.cluster.get_or_none(f"{SERVICES.format(namespace=self.env.namespace)}/{service}")
        selector = (found or {}).get("spec", {}).get("selector")
        if not selector:
            return  # no such Service, or one without a selector: the checks say so themselves
        smoke = self.env.smoke
        assert smoke is not None
        budget = max(smoke.attempts * smoke.interval, ENDPOINTS_SECONDS)
        wait_for_endpoints(
            self.clients.cluster, self.env.namespace, service, selector, image, budget,
            lambda text: self.progress.detail("smoke", text),
        )  # fmt: skip

    def plan_from_record(self, record: Record, slots: placement.Placement = None) -> Plan:
        """A recorded release rendered again as it was: with the template values it was
        deployed with, so a restore also undoes a values change that broke the release."""
        env = self.recorded_env(record)
        if env.values != self.env.values:
            self.progress.warning(
                f"{record.tag} is rendered with the values it was deployed with; "
                f"the environment's values have changed since"
            )
        return self.plan_for(record.tag, record.image, slots, env)

    def recorded_env(self, record: Record) -> Environment:
        """The environment with the template values ``record`` was deployed with."""
        if record.values and self.env.renderer == "templates":
            return dataclasses.replace(self.env, values=json.loads(record.values))
        return self.env

    def plan_for(
        self, tag_text: str, image: str, slots: placement.Placement = None, env: Environment | None = None
    ) -> Plan:
        """A release already validated (recorded, or paused): rendered again."""
        tag = parse_tag(tag_text, self.project.tag_prefix)
        manifests = renderer.render(self.project, env or self.env, tag, image, slots)
        return Plan(tag, None, image, manifests, slots)

    def apply(self, plan: Plan, timeout: float, stage: str = "deploy") -> str:
        """Deploy (the environment's deployer) and verify one release; NeedsAttention when it
        is not Ready."""
        started = time.monotonic()
        self.ensure_lock()
        workload = placement.workload_name(self.project.app, plan.slots)
        deployer = self.deployer()
        with self.stages.run(stage) as done:
            # The ApplySet covers every kind applied before anything is: an interrupted run
            # leaves no member the next prune would not look for.
            with translated_errors("cannot write the ApplySet parent in", self.env.namespace, NeedsAttention):
                ApplySet(self.clients.cluster, self.env.namespace, self.project.app).cover(
                    {m.group_kind for m in members(m.obj for m in plan.manifests)}
                )
            initial = self._count_to_set(plan, workload)
            rendered = Rendered(plan.tag, plan.image, plan.manifests, plan.slots)
            done.append(
                deployer.put(rendered, timeout, lambda line: self.progress.detail(deployer.name, line))
            )
            if initial is not None:  # created just now, with the API server's default of 1
                self.ensure_lock()
                namespace = self.env.namespace
                with translated_errors("cannot set the initial replica count in", namespace, NeedsAttention):
                    autoscaling.set_replicas(self.clients.cluster, namespace, workload, initial)
        remaining = max(timeout - (time.monotonic() - started), 1.0)
        with self.stages.run("verify") as done:
            verdict = wait_for_rollout(
                self.clients.cluster,
                self.env.namespace,
                workload,
                plan.image,
                remaining,
                on_progress=lambda text: self.progress.detail("rollout", text),
                unschedulable_timeout=self.env.unschedulable_timeout,
            )
            if verdict.state != "complete":
                raise NeedsAttention(
                    f"{plan.tag} did not become Ready in {self.env.name}: {verdict.summary}",
                    "fix the release and deploy again",
                    details=tuple(diagnose(self.clients.cluster, self.env.namespace, verdict, plan.image)),
                )
            done.append(verdict.summary)
        return f"{verdict.ready}/{verdict.desired}"


def _deployment(plan: Plan, app: str) -> placement.Manifest:
    return next(m for m in plan.manifests if m.kind == "Deployment" and m.name == app)


def describe(result: Result, tag: str, image: str) -> None:
    result.tag, result.image, result.digest = tag, image, image.partition("@")[2]
