"""Load and validate ``releasegate.yaml`` and ``k8s/environments/<env>.yaml``.

Every problem becomes a ``BadInput`` naming the file and the key, so a typo in an
environment file is exit 2 before anything talks to GitHub, AWS or the cluster.

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from releasegate.core.clusters_config import ClusterTarget, Waves, read_clusters, read_waves
from releasegate.core.compare_config import Compare, read_compare
from releasegate.core.config_reader import DNS_LABEL, Reader, read_mapping
from releasegate.core.errors import BadInput
from releasegate.core.freeze import Window, read_freeze
from releasegate.core.notify_config import NotifyTarget, read_notify
from releasegate.core.strategy_config import StrategySettings, read_strategy
from releasegate.core.version import PrefixPolicy

ENV_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
# Kubernetes DNS-1123 label: namespaces, and the ECR repository name's allowed characters.
ECR_REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
GITHUB_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# How an environment's objects are described: Jinja templates in k8s/templates, or the Helm
# chart in helm/ (through the Skaffold profile's manifests.helm release).
RENDERERS = ("templates", "chart")
# What puts them in the cluster: `skaffold deploy`, or releasegate's own server-side apply.
DEPLOYERS = ("skaffold", "apply")

# Every key the files may hold: anything else is a typo that would otherwise be ignored
# silently (`protectd: true` leaving prod unprotected).
PROJECT_KEYS = ("app", "github_repository", "tag_prefix", "notify", "freeze")
ENVIRONMENT_KEYS = (
    "namespace",
    "create_namespace",
    "protected",
    "aws",
    "renderer",
    "deployer",
    "skaffold_profile",
    "kube_context",
    "allow_prerelease",
    "branches",
    "deploy_on_release",
    "promote_from",
    "smoke",
    "strategy",
    "unschedulable_timeout",
    "compare",
    "notify",
    "values",
    "clusters",
    "waves",
)
AWS_KEYS = ("region", "ecr_repository")
SMOKE_KEYS = ("service_port", "attempts", "interval", "each_pod", "checks")
CHECK_KEYS = ("name", "method", "path", "json", "json_file", "expect_status", "expect_json", "max_ms")
SMOKE_METHODS = ("GET", "POST", "PUT")


@dataclass(frozen=True)
class Project:
    root: Path
    app: str
    github_repository: str
    tag_prefix: PrefixPolicy
    notify: tuple[NotifyTarget, ...] = ()  # every environment's notifications
    freeze: tuple[Window, ...] = ()  # when deploys and promotions are refused

    @property
    def environments_dir(self) -> Path:
        return self.root / "k8s" / "environments"

    @property
    def templates_dir(self) -> Path:
        return self.root / "k8s" / "templates"

    @property
    def skaffold_file(self) -> Path:
        return self.root / "skaffold.yaml"

    def build_dir(self, env: str) -> Path:
        return self.root / "build" / env


@dataclass(frozen=True)
class SmokeCheck:
    name: str
    path: str  # starts with /
    method: str = "GET"
    body: Any = None  # the JSON request body, from `json:` or `json_file:`
    expect_status: int = 200
    expect_json: dict[str, Any] | None = None  # every key given must be in the answer, equal
    max_ms: int | None = None  # slower than this is a failed try


@dataclass(frozen=True)
class Smoke:
    """Requests to the new release through the API server's service proxy (smoke.py)."""

    checks: tuple[SmokeCheck, ...]
    service_port: int | str | None = None  # None: the Service's first port
    attempts: int = 30
    interval: float = 3.0
    each_pod: bool = False  # every check against every new pod, not one endpoint of the Service


@dataclass(frozen=True)
class Environment:
    name: str
    namespace: str
    aws_region: str
    ecr_repository: str
    skaffold_profile: str
    kube_context: str | None
    create_namespace: bool  # create the namespace when it does not exist (else: refuse, exit 3)
    allow_prerelease: bool
    protected: bool
    branches: tuple[str, ...]
    deploy_on_release: bool
    promote_from: str | None  # only tags verified in this environment may be deployed here
    renderer: str  # one of RENDERERS
    values: dict[str, Any]  # the templates' values; a chart takes its own values files
    smoke: Smoke | None = None
    strategy: StrategySettings = field(default_factory=lambda: StrategySettings())
    # seconds a new pod may wait for a node (the cluster autoscaler adding one) before the
    # rollout fails; at once when the autoscaler says it will not help
    unschedulable_timeout: float = 300.0
    compare: Compare | None = None  # blue/green, canary: the release's answers against the serving one's
    # releasegate.yaml's notifications, then the environment file's own
    notify: tuple[NotifyTarget, ...] = ()
    deployer: str = DEPLOYERS[0]  # one of DEPLOYERS
    # Several clusters released to in waves (empty: the one kube_context)
    clusters: tuple[ClusterTarget, ...] = ()
    waves: Waves = field(default_factory=Waves)
    cluster: str = ""  # the one cluster of `clusters` this view of the environment is for

    @property
    def github_environment(self) -> str:
        """The GitHub deployment's environment: ``<env>``, or ``<env>/<cluster>`` for one of several."""
        return f"{self.name}/{self.cluster}" if self.cluster else self.name

    def for_cluster(self, target: ClusterTarget) -> Environment:
        """The environment as one of its clusters sees it: its context, its region's ECR."""
        return replace(self, kube_context=target.kube_context, aws_region=target.aws_region,
                       cluster=target.name, clusters=())  # fmt: skip


def load_project(root: Path) -> Project:
    path = root / "releasegate.yaml"
    data = read_mapping(path)
    reader = Reader(path, data)
    reader.only(PROJECT_KEYS)
    repository = reader.optional_str("github_repository") or os.environ.get("GITHUB_REPOSITORY", "")
    if not GITHUB_REPO.fullmatch(repository):
        raise BadInput(
            f"{path}: github_repository is missing or not OWNER/NAME",
            "set github_repository in releasegate.yaml or export GITHUB_REPOSITORY=owner/name",
        )
    prefix = reader.optional_str("tag_prefix") or "required"
    if prefix not in ("required", "optional", "forbidden"):
        raise BadInput(f"{path}: tag_prefix must be required, optional or forbidden", "fix releasegate.yaml")
    return Project(
        root=root,
        app=reader.name("app"),
        github_repository=repository,
        tag_prefix=cast(PrefixPolicy, prefix),
        notify=read_notify(reader),
        freeze=read_freeze(reader, sorted(p.stem for p in (root / "k8s" / "environments").glob("*.yaml"))),
    )


def available_environments(project: Project) -> list[str]:
    return sorted(p.stem for p in project.environments_dir.glob("*.yaml"))


def load_environments(project: Project) -> list[Environment]:
    return [load_environment(project, name) for name in available_environments(project)]


def load_environment(project: Project, name: str) -> Environment:
    known = available_environments(project)
    if not ENV_NAME.fullmatch(name) or name not in known:
        shown = name if ENV_NAME.fullmatch(name) else repr(name[:40])
        raise BadInput(
            f"unknown environment {shown}",
            f"use one of: {', '.join(known) or '(none: add k8s/environments/<env>.yaml)'}",
        )
    path = project.environments_dir / f"{name}.yaml"
    reader = Reader(path, read_mapping(path))
    reader.only(ENVIRONMENT_KEYS)
    aws = Reader(path, reader.mapping("aws"), prefix="aws.")
    aws.only(AWS_KEYS)
    region = aws.matching("region", AWS_REGION, "an AWS region such as eu-west-1")
    clusters = read_clusters(reader, region, AWS_REGION)
    strategy = read_strategy(reader)
    waves = read_waves(reader, clusters)
    if waves.bake and "smoke" not in reader.data:  # a bake that checks nothing would pass
        raise reader.fail("waves.bake", "0 without smoke: checks (baking runs them)")
    if len(clusters) > 1 and _has_approval(strategy):
        raise reader.fail(
            "strategy", "without approval pauses when there are several clusters (use waves.bake, and a "
            "GitHub environment per wave)",
        )  # fmt: skip
    return Environment(
        name=name,
        namespace=reader.matching("namespace", DNS_LABEL, "a DNS label such as model-api-prod"),
        aws_region=region,
        ecr_repository=aws.matching("ecr_repository", ECR_REPOSITORY, "an ECR repository name"),
        # Only skaffold reads its profile; releasegate renders the templates itself for `apply`.
        skaffold_profile=reader.name("skaffold_profile")
        if (deployer := reader.one_of("deployer", DEPLOYERS)) == "skaffold"
        or reader.data.get("renderer") == "chart"
        else reader.optional_str("skaffold_profile") or "",
        kube_context=reader.optional_str("kube_context"),
        create_namespace=reader.boolean("create_namespace", default=False),
        allow_prerelease=reader.boolean("allow_prerelease", default=False),
        protected=reader.boolean("protected", default=False),
        branches=tuple(reader.string_list("branches")),
        deploy_on_release=reader.boolean("deploy_on_release", default=False),
        promote_from=_promote_from(reader, known, name),
        renderer=(renderer := reader.one_of("renderer", RENDERERS)),
        values=reader.mapping("values") if renderer == "templates" else reader.optional_mapping("values"),
        smoke=_smoke(project, reader) if "smoke" in reader.data else None,
        strategy=strategy,
        compare=read_compare(project.root, reader, strategy.type),
        unschedulable_timeout=reader.seconds("unschedulable_timeout", 300.0),
        notify=project.notify + read_notify(reader),
        deployer=deployer,
        clusters=clusters,
        waves=waves,
    )


def _has_approval(strategy: StrategySettings) -> bool:
    return strategy.pause_before_switch or any(step.approval for step in strategy.steps)


def _smoke(project: Project, reader: Reader) -> Smoke:
    section = Reader(reader.path, reader.mapping("smoke"), prefix="smoke.")
    section.only(SMOKE_KEYS)
    port = section.data.get("service_port")
    if port is not None and not (isinstance(port, int | str) and not isinstance(port, bool) and str(port)):
        raise section.fail("service_port", "a port number or name")
    checks = section.data.get("checks")
    if not isinstance(checks, list) or not checks:
        raise section.fail("checks", "a list of checks")
    return Smoke(
        checks=tuple(_smoke_check(project, reader.path, item, n) for n, item in enumerate(checks)),
        service_port=port,
        attempts=section.positive("attempts", default=30),
        interval=section.seconds("interval", default=3.0),
        each_pod=section.boolean("each_pod", default=False),
    )


def _smoke_check(project: Project, path: Path, item: Any, index: int) -> SmokeCheck:
    check = Reader(path, item if isinstance(item, dict) else {}, prefix=f"smoke.checks[{index}].")
    if not isinstance(item, dict):
        raise check.fail("", "a mapping with name and path")
    check.only(CHECK_KEYS)
    name = check.data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise check.fail("name", "a name for the check")
    target = check.data.get("path")
    if not isinstance(target, str) or not target.startswith("/"):
        raise check.fail("path", "a path starting with /")
    method = str(check.data.get("method", "GET")).upper()
    if method not in SMOKE_METHODS:
        raise check.fail("method", " or ".join(SMOKE_METHODS))
    expect_json = check.data.get("expect_json")
    if expect_json is not None and not isinstance(expect_json, dict):
        raise check.fail("expect_json", "a mapping of keys the answer must hold")
    return SmokeCheck(
        name=name,
        path=target,
        method=method,
        body=_request_body(project, check),
        expect_status=check.positive("expect_status", default=200),
        expect_json=expect_json,
        max_ms=check.positive("max_ms", default=None),
    )


def _request_body(project: Project, check: Reader) -> Any:
    if "json" in check.data and "json_file" in check.data:
        raise check.fail("json", "given alone: json or json_file, not both")
    if "json_file" not in check.data:
        return check.data.get("json")
    relative = check.data["json_file"]
    if not isinstance(relative, str):
        raise check.fail("json_file", "a path relative to the project")
    file = (project.root / relative).resolve()
    if not file.is_relative_to(project.root.resolve()):
        raise check.fail("json_file", "a path inside the project")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise check.fail("json_file", f"a readable JSON file ({relative}: {exc.__class__.__name__})") from exc


def _promote_from(reader: Reader, known: list[str], name: str) -> str | None:
    source = reader.optional_str("promote_from")
    if source is not None and (source not in known or source == name):
        raise reader.fail("promote_from", f"another environment ({', '.join(e for e in known if e != name)})")
    return source
