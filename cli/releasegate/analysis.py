"""Metric analysis for a canary: one Prometheus instant query, compared with ``max``.

The query goes to ``/api/v1/query`` either at a URL (Amazon Managed Service for Prometheus
with ``sigv4: true``: each request signed with boto3's credentials for service ``aps``) or
through the API server's service proxy to an in-cluster Prometheus (the kube-context's own
credentials, nothing else to open). A query that fails, or answers no sample at all, counts as
a failed check: a canary that no metric describes has not been shown to be good.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from .config import Prometheus
from .errors import NeedsAttention
from .kube import Cluster

QUERY_PATH = "/api/v1/query"
TIMEOUT_SECONDS = 10
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Verdict:
    value: float | None  # None: the query failed or found nothing
    problem: str  # "" when the value is within max

    @property
    def passed(self) -> bool:
        return not self.problem

    def __str__(self) -> str:
        return self.problem or f"analysis {self.value:g}"


class AnalysisFailed(NeedsAttention):
    pass


def evaluate(prometheus: Prometheus, cluster: Cluster, region: str) -> Verdict:
    """Run the query once and judge its answer against ``max``."""
    try:
        status, body = _ask(prometheus, cluster, region)
    except AnalysisFailed as failed:
        return Verdict(None, failed.cause)
    except Exception as exc:  # a broken connection is a failed check, like an error answer
        return Verdict(None, f"the analysis query could not reach Prometheus ({exc.__class__.__name__})")
    return judge(prometheus, status, body)


def judge(prometheus: Prometheus, status: int, body: bytes) -> Verdict:
    """Pure: the verdict on one answer of the Prometheus HTTP API."""
    try:
        answer: Any = json.loads(body)
    except ValueError:
        return Verdict(None, f"Prometheus answered {status} with something that is not JSON")
    if status != 200 or not isinstance(answer, dict) or answer.get("status") != "success":
        error = answer.get("error", "") if isinstance(answer, dict) else ""
        return Verdict(None, f"the analysis query failed: {status} {str(error)[:120]}".rstrip())
    values = _sample_values(answer.get("data") or {})
    if not values:
        return Verdict(None, "the analysis query returned no data (no series matched): not a pass")
    worst = max(values)
    if math.isnan(worst) or worst > prometheus.max:
        return Verdict(worst, f"analysis {worst:g} is above max {prometheus.max:g}")
    return Verdict(worst, "")


def _sample_values(data: dict[str, Any]) -> list[float]:
    """Every sample of an instant vector (or the one scalar), as floats."""
    result = data.get("result")
    if data.get("resultType") == "scalar" and isinstance(result, list):
        return [float(result[1])]
    if not isinstance(result, list):
        return []
    return [float(sample["value"][1]) for sample in result if isinstance(sample, dict) and "value" in sample]


def _ask(prometheus: Prometheus, cluster: Cluster, region: str) -> tuple[int, bytes]:
    if prometheus.service is not None:
        namespace, _, rest = prometheus.service.partition("/")
        name, _, port = rest.partition(":")
        path = f"/api/v1/namespaces/{namespace}/services/{name}:{port}/proxy{QUERY_PATH}"
        return cluster.raw("GET", path, timeout=TIMEOUT_SECONDS, query=prometheus.query)
    form = urlencode({"query": prometheus.query}).encode()
    assert prometheus.url is not None
    url = prometheus.url.rstrip("/") + QUERY_PATH
    headers = {"Content-Type": FORM}
    if prometheus.sigv4:
        headers = _signed(url, form, headers, region)
    # The URL is checked http(s) when the environment file is read (config.HTTP_URL).
    request = urllib.request.Request(url, data=form, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def _signed(url: str, body: bytes, headers: dict[str, str], region: str) -> dict[str, str]:
    """SigV4 headers for an Amazon Managed Prometheus query, from boto3's credential chain."""
    import boto3
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = boto3.Session().get_credentials()
    if credentials is None:
        raise AnalysisFailed(
            "no AWS credentials to sign the Prometheus query (sigv4: true)",
            "give the job AWS credentials that may call aps:QueryMetrics",
        )
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "aps", region).add_auth(request)
    return dict(request.headers.items())
