"""The ``strategy:`` section of an environment file: how a release is put in service
(``strategies/``), read and checked key by key.

Layer: core (pure data and its validation).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from releasegate.core.config_reader import Reader
from releasegate.core.errors import BadInput

# How a release is put in service (strategies/).
STRATEGIES = ("rolling", "bluegreen", "canary")
STRATEGY_KEYS = {
    "rolling": ("type", "scale_down_delay"),  # the delay applies when leaving blue/green
    "bluegreen": ("type", "keep_previous", "pause_before_switch", "scale_down_delay"),
    "canary": ("type", "traffic", "route", "steps", "analysis", "scale_down_delay", "header"),
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
HEADER_KEYS = ("name", "value")
HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}")


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
    # seconds traffic has been away from a Deployment before it is deleted or scaled to 0
    # (gateways, meshes and load balancers apply a change seconds to minutes late); rolling: the
    # blue/green slots an environment leaves
    scale_down_delay: float = 30.0
    # canary (gateway, istio): requests carrying this header reach the canary at any weight
    header: Header | None = None


@dataclass(frozen=True)
class Header:
    name: str
    value: str


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


def read_strategy(reader: Reader) -> StrategySettings:
    if "strategy" not in reader.data:
        return StrategySettings()
    section = Reader(reader.path, reader.mapping("strategy"), prefix="strategy.")
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


def _canary(section: Reader) -> StrategySettings:
    if "traffic" not in section.data:
        raise section.fail("traffic", " or ".join(TRAFFIC))
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
        raise section.fail("steps", "a list of steps, each with a weight and a pause")
    return StrategySettings(
        type="canary",
        traffic=traffic,
        route=route,
        steps=tuple(_canary_step(section.path, item, n) for n, item in enumerate(steps)),
        analysis=_analysis(section) if "analysis" in section.data else None,
        scale_down_delay=section.seconds("scale_down_delay", default=30.0),
        header=_header(section, traffic) if "header" in section.data else None,
    )


def _header(section: Reader, traffic: str) -> Header:
    if traffic == "replicas":
        raise BadInput(
            f"{section.path}: strategy.header needs a route to carry it (traffic: gateway or istio); "
            "with traffic: replicas the pods behind <app> are the split and no request can choose",
            f"remove strategy.header from {section.path.name}, or use traffic: gateway or istio",
        )
    header = Reader(section.path, section.mapping("header"), prefix="strategy.header.")
    header.only(HEADER_KEYS)
    name = header.matching("name", HEADER_NAME, "an HTTP header name such as x-canary")
    value = header.data.get("value")
    if not isinstance(value, str) or not value or len(value) > 4096:
        raise header.fail("value", "the header's exact value, a non-empty string (quote it in YAML)")
    return Header(name=name, value=value)


def _canary_step(path: Path, item: Any, index: int) -> CanaryStep:
    step = Reader(path, item if isinstance(item, dict) else {}, prefix=f"strategy.steps[{index}].")
    if not isinstance(item, dict):
        raise step.fail("", "a mapping with weight and pause")
    step.only(STEP_KEYS)
    weight = step.data.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
        raise step.fail("weight", "a whole percentage from 1 to 100")
    if "pause" not in step.data:
        raise step.fail("pause", f"a number of seconds, or {APPROVAL}")
    pause = None if step.data["pause"] == APPROVAL else step.seconds("pause", default=0.0)
    return CanaryStep(weight=weight, pause=pause)


def _analysis(section: Reader) -> Analysis:
    analysis = Reader(section.path, section.mapping("analysis"), prefix="strategy.analysis.")
    analysis.only(ANALYSIS_KEYS)
    query = Reader(section.path, analysis.mapping("prometheus"), prefix="strategy.analysis.prometheus.")
    query.only(PROMETHEUS_KEYS)
    if ("url" in query.data) == ("service" in query.data):
        raise query.fail("url", "given, or service instead (one of the two)")
    url = query.matching("url", HTTP_URL, "an http(s) URL") if "url" in query.data else None
    service = (
        query.matching("service", SERVICE_REF, "namespace/name:port") if "service" in query.data else None
    )
    sigv4 = query.boolean("sigv4", default=False)
    if sigv4 and url is None:
        raise query.fail("sigv4", "used with url (Amazon Managed Service for Prometheus), not service")
    text = query.data.get("query")
    if not isinstance(text, str) or not text.strip():
        raise query.fail("query", "a PromQL query")
    limit = query.data.get("max")
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not math.isfinite(limit):
        raise query.fail("max", "a number (a result above it aborts)")
    interval = analysis.seconds("interval", default=10.0)
    if interval <= 0:
        raise analysis.fail("interval", "a number of seconds above 0")
    prometheus = Prometheus(query=text, max=float(limit), url=url, service=service, sigv4=sigv4)
    return Analysis(
        prometheus=prometheus,
        interval=interval,
        failure_limit=analysis.positive("failure_limit", 0, zero=True),
        error_limit=analysis.positive("error_limit", 4, zero=True),
    )
