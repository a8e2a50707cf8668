"""Load and validate ``releasegate.yaml`` and ``k8s/environments/<env>.yaml``.

Every problem becomes a ``BadInput`` naming the file and the key, so a typo in an
environment file is exit 2 before anything talks to GitHub, AWS or the cluster.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from releasegate.core.errors import BadInput
from releasegate.core.version import PrefixPolicy

ENV_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")
# Kubernetes DNS-1123 label: namespaces, and the ECR repository name's allowed characters.
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
ECR_REPOSITORY = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*")
AWS_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d")
GITHUB_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
# How an environment's objects are described: Jinja templates in k8s/templates, or the Helm
# chart in helm/ (through the Skaffold profile's manifests.helm release).
RENDERERS = ("templates", "chart")

# Every key the files may hold: anything else is a typo that would otherwise be ignored
# silently (`protectd: true` leaving prod unprotected).
PROJECT_KEYS = ("app", "github_repository", "tag_prefix")
ENVIRONMENT_KEYS = (
    "namespace",
    "create_namespace",
    "protected",
    "aws",
    "renderer",
    "skaffold_profile",
    "kube_context",
    "allow_prerelease",
    "branches",
    "deploy_on_release",
    "promote_from",
    "smoke",
    "strategy",
    "unschedulable_timeout",
    "values",
)
AWS_KEYS = ("region", "ecr_repository")
SMOKE_KEYS = ("service_port", "attempts", "interval", "each_pod", "checks")
CHECK_KEYS = ("name", "method", "path", "json", "json_file", "expect_status", "expect_json", "max_ms")
SMOKE_METHODS = ("GET", "POST", "PUT")
# How a release is put in service (strategies/).
STRATEGIES = ("rolling", "bluegreen", "canary")
STRATEGY_KEYS = {
    "rolling": ("type",),
    "bluegreen": ("type", "keep_previous", "pause_before_switch", "scale_down_delay"),
    "canary": ("type", "traffic", "route", "steps", "analysis", "scale_down_delay"),
}
# Canary: where the weights are written (strategies/traffic.py).
TRAFFIC = ("gateway", "istio", "replicas")
STEP_KEYS = ("weight", "pause")
APPROVAL = "approval"  # a step's pause that waits for `releasegate promote`
ANALYSIS_KEYS = ("interval", "failure_limit", "error_limit", "prometheus")
PROMETHEUS_KEYS = ("url", "service", "query", "max", "sigv4")
# A Service reached through the API server's proxy: namespace/name:port.
SERVICE_REF = re.compile(
    r"(?P<namespace>[a-z0-9-]{1,63})/(?P<name>[a-z0-9-]{1,63}):(?P<port>[a-z0-9-]{1,15})"
)
HTTP_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
# Keys an older releasegate read under another name: old name (with its section) -> new name.
RENAMED: dict[str, str] = {}


@dataclass(frozen=True)
class Project:
    root: Path
    app: str
    github_repository: str
    tag_prefix: PrefixPolicy

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


@dataclass(frozen=True)
class StrategySettings:
    """How a release is put in service (``strategies/``)."""

    type: str = "rolling"  # one of STRATEGIES
    # bluegreen: the old slot keeps running after a good switch (rollback is a switch)
    keep_previous: bool = True
    # bluegreen: stop after the preview checks pass (outcome paused) until `releasegate promote`
    pause_before_switch: bool = False
    # canary: one of TRAFFIC, the route whose weights are written (gateway, istio), the steps
    # and the optional metric analysis run through every pause
    traffic: str = ""
    route: str = ""
    steps: tuple[CanaryStep, ...] = ()
    analysis: Analysis | None = None
    # bluegreen, canary: seconds traffic has been away from a Deployment before it is deleted or
    # scaled to 0 (gateways, meshes and load balancers apply a change seconds to minutes late)
    scale_down_delay: float = 30.0


@dataclass(frozen=True)
class CanaryStep:
    weight: int  # percent of the traffic the canary takes, 1-100
    pause: float | None  # seconds of checks before the next step; None: wait for approval

    @property
    def approval(self) -> bool:
        return self.pause is None


@dataclass(frozen=True)
class Prometheus:
    """An instant query whose result must stay at or below ``max`` while a canary pauses."""

    query: str
    max: float
    url: str | None = None  # queried directly (Amazon Managed Prometheus: with sigv4)
    service: str | None = None  # namespace/name:port, through the API server's service proxy
    sigv4: bool = False  # sign each query with boto3's credentials (service "aps")


@dataclass(frozen=True)
class Analysis:
    prometheus: Prometheus
    interval: float = 10.0  # seconds between queries (and smoke rounds) during a pause
    failure_limit: int = 0  # failed evaluations (above max, or no data) a step tolerates
    error_limit: int = 4  # consecutive query errors tolerated (Argo's consecutiveErrorLimit)


def load_project(root: Path) -> Project:
    path = root / "releasegate.yaml"
    data = _read_mapping(path)
    reader = _Reader(path, data)
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
    reader = _Reader(path, _read_mapping(path))
    reader.only(ENVIRONMENT_KEYS)
    aws = _Reader(path, reader.mapping("aws"), prefix="aws.")
    aws.only(AWS_KEYS)
    return Environment(
        name=name,
        namespace=reader.matching("namespace", DNS_LABEL, "a DNS label such as model-api-prod"),
        aws_region=aws.matching("region", AWS_REGION, "an AWS region such as eu-west-1"),
        ecr_repository=aws.matching("ecr_repository", ECR_REPOSITORY, "an ECR repository name"),
        skaffold_profile=reader.name("skaffold_profile"),
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
        strategy=_strategy(reader),
        unschedulable_timeout=reader.seconds("unschedulable_timeout", 300.0),
    )


def _strategy(reader: _Reader) -> StrategySettings:
    if "strategy" not in reader.data:
        return StrategySettings()
    section = _Reader(reader.path, reader.mapping("strategy"), prefix="strategy.")
    kind = section.data.get("type", STRATEGIES[0])
    if kind not in STRATEGIES:
        raise BadInput(
            f"{reader.path}: strategy.type {str(kind)[:20]!r} is not available in this version",
            f"use one of: {', '.join(STRATEGIES)}",
        )
    section.only(STRATEGY_KEYS[kind])
    if kind == "canary":
        return _canary(section)
    return StrategySettings(
        type=str(kind),
        keep_previous=section.boolean("keep_previous", default=True),
        pause_before_switch=section.boolean("pause_before_switch", default=False),
        scale_down_delay=section.seconds("scale_down_delay", default=30.0),
    )


def _canary(section: _Reader) -> StrategySettings:
    if "traffic" not in section.data:
        raise section._fail("traffic", " or ".join(TRAFFIC))
    traffic = section.one_of("traffic", TRAFFIC)
    if traffic == "replicas" and "route" in section.data:
        raise BadInput(
            f"{section.path}: strategy.route has no use with traffic: replicas "
            "(the pod count of each track sets the share)",
            f"remove strategy.route from {section.path.name}, or use traffic: gateway or istio",
        )
    route = "" if traffic == "replicas" else section.name("route")
    steps = section.data.get("steps")
    if not isinstance(steps, list) or not steps:
        raise section._fail("steps", "a list of steps, each with a weight and a pause")
    return StrategySettings(
        type="canary",
        traffic=traffic,
        route=route,
        steps=tuple(_canary_step(section.path, item, n) for n, item in enumerate(steps)),
        analysis=_analysis(section) if "analysis" in section.data else None,
        scale_down_delay=section.seconds("scale_down_delay", default=30.0),
    )


def _canary_step(path: Path, item: Any, index: int) -> CanaryStep:
    step = _Reader(path, item if isinstance(item, dict) else {}, prefix=f"strategy.steps[{index}].")
    if not isinstance(item, dict):
        raise step._fail("", "a mapping with weight and pause")
    step.only(STEP_KEYS)
    weight = step.data.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
        raise step._fail("weight", "a whole percentage from 1 to 100")
    if "pause" not in step.data:
        raise step._fail("pause", f"a number of seconds, or {APPROVAL}")
    pause = None if step.data["pause"] == APPROVAL else step.seconds("pause", default=0.0)
    return CanaryStep(weight=weight, pause=pause)


def _analysis(section: _Reader) -> Analysis:
    analysis = _Reader(section.path, section.mapping("analysis"), prefix="strategy.analysis.")
    analysis.only(ANALYSIS_KEYS)
    query = _Reader(section.path, analysis.mapping("prometheus"), prefix="strategy.analysis.prometheus.")
    query.only(PROMETHEUS_KEYS)
    if ("url" in query.data) == ("service" in query.data):
        raise query._fail("url", "given, or service instead (one of the two)")
    url = query.matching("url", HTTP_URL, "an http(s) URL") if "url" in query.data else None
    service = (
        query.matching("service", SERVICE_REF, "namespace/name:port") if "service" in query.data else None
    )
    sigv4 = query.boolean("sigv4", default=False)
    if sigv4 and url is None:
        raise query._fail("sigv4", "used with url (Amazon Managed Service for Prometheus), not service")
    text = query.data.get("query")
    if not isinstance(text, str) or not text.strip():
        raise query._fail("query", "a PromQL query")
    limit = query.data.get("max")
    if isinstance(limit, bool) or not isinstance(limit, int | float):
        raise query._fail("max", "a number (a result above it aborts)")
    interval = analysis.seconds("interval", default=10.0)
    if interval <= 0:
        raise analysis._fail("interval", "a number of seconds above 0")
    prometheus = Prometheus(query=text, max=float(limit), url=url, service=service, sigv4=sigv4)
    return Analysis(
        prometheus=prometheus,
        interval=interval,
        failure_limit=analysis.positive("failure_limit", 0, zero=True),
        error_limit=analysis.positive("error_limit", 4, zero=True),
    )


def _smoke(project: Project, reader: _Reader) -> Smoke:
    section = _Reader(reader.path, reader.mapping("smoke"), prefix="smoke.")
    section.only(SMOKE_KEYS)
    port = section.data.get("service_port")
    if port is not None and not (isinstance(port, int | str) and not isinstance(port, bool) and str(port)):
        raise section._fail("service_port", "a port number or name")
    checks = section.data.get("checks")
    if not isinstance(checks, list) or not checks:
        raise section._fail("checks", "a list of checks")
    return Smoke(
        checks=tuple(_smoke_check(project, reader.path, item, n) for n, item in enumerate(checks)),
        service_port=port,
        attempts=section.positive("attempts", default=30),
        interval=section.seconds("interval", default=3.0),
        each_pod=section.boolean("each_pod", default=False),
    )


def _smoke_check(project: Project, path: Path, item: Any, index: int) -> SmokeCheck:
    check = _Reader(path, item if isinstance(item, dict) else {}, prefix=f"smoke.checks[{index}].")
    if not isinstance(item, dict):
        raise check._fail("", "a mapping with name and path")
    check.only(CHECK_KEYS)
    name = check.data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise check._fail("name", "a name for the check")
    target = check.data.get("path")
    if not isinstance(target, str) or not target.startswith("/"):
        raise check._fail("path", "a path starting with /")
    method = str(check.data.get("method", "GET")).upper()
    if method not in SMOKE_METHODS:
        raise check._fail("method", " or ".join(SMOKE_METHODS))
    expect_json = check.data.get("expect_json")
    if expect_json is not None and not isinstance(expect_json, dict):
        raise check._fail("expect_json", "a mapping of keys the answer must hold")
    return SmokeCheck(
        name=name,
        path=target,
        method=method,
        body=_request_body(project, check),
        expect_status=check.positive("expect_status", default=200),
        expect_json=expect_json,
        max_ms=check.positive("max_ms", default=None),
    )


def _request_body(project: Project, check: _Reader) -> Any:
    if "json" in check.data and "json_file" in check.data:
        raise check._fail("json", "given alone: json or json_file, not both")
    if "json_file" not in check.data:
        return check.data.get("json")
    relative = check.data["json_file"]
    if not isinstance(relative, str):
        raise check._fail("json_file", "a path relative to the project")
    file = (project.root / relative).resolve()
    if not file.is_relative_to(project.root.resolve()):
        raise check._fail("json_file", "a path inside the project")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise check._fail(
            "json_file", f"a readable JSON file ({relative}: {exc.__class__.__name__})"
        ) from exc


def _promote_from(reader: _Reader, known: list[str], name: str) -> str | None:
    source = reader.optional_str("promote_from")
    if source is not None and (source not in known or source == name):
        raise reader._fail(
            "promote_from", f"another environment ({', '.join(e for e in known if e != name)})"
        )
    return source


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BadInput(f"{path} not found", "run from the project folder or pass --project-dir") from exc
    except yaml.YAMLError as exc:
        raise BadInput(f"{path} is not valid YAML ({exc.__class__.__name__})", "fix the file") from exc
    if not isinstance(data, dict):
        raise BadInput(f"{path} must hold a mapping", "fix the file")
    return data


class _Reader:
    """Typed access to one YAML mapping, with errors that name the file and the key."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def only(self, known: tuple[str, ...]) -> None:
        """Refuse a key that is not in ``known``, naming the nearest known one."""
        for key in self.data:
            if key in known:
                continue
            name = f"{self.prefix}{key}"
            if name in RENAMED:
                raise BadInput(
                    f"{self.path}: {name} is now called {RENAMED[name]}",
                    f"rename it in {self.path.name}",
                )
            near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            guess = f" (did you mean {self.prefix}{near[0]}?)" if near else ""
            raise BadInput(
                f"{self.path}: unknown key {name}{guess}",
                f"fix {self.path.name}; its keys are: {', '.join(self.prefix + k for k in known)}",
            )

    def _fail(self, key: str, expected: str) -> BadInput:
        return BadInput(f"{self.path}: {self.prefix}{key} must be {expected}", f"fix {self.path.name}")

    def optional_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], expected: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self._fail(key, expected)
        return value

    def name(self, key: str) -> str:
        return self.matching(key, DNS_LABEL, "a lower-case name (letters, digits, '-')")

    def one_of(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.data.get(key, choices[0])
        if value not in choices:
            raise self._fail(key, " or ".join(choices))
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def positive(self, key: str, default: Any, zero: bool = False) -> Any:
        """A whole number above 0 (or 0 too, when ``zero``), or ``default`` when absent."""
        value = self.data.get(key, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
            raise self._fail(key, "a whole number" + ("" if zero else " above 0"))
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self._fail(key, "a number of seconds")
        return float(value)

    def string_list(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise self._fail(key, "a mapping")
        return value

    def optional_mapping(self, key: str) -> dict[str, Any]:
        return self.mapping(key) if key in self.data else {}
