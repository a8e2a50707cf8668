"""A Prometheus HTTP API emulator: ``/api/v1/query`` (GET or form POST), answered per track.

Tests script what a query returns for each ``track="..."`` it names (``answers``): a number is
an instant vector of one sample (NaN written as Prometheus writes it, ``NaN``), a tuple a vector
of several samples, ``None`` an empty vector (no data: the series does not exist yet),
``"error"`` the 400 ``bad_data`` answer a malformed query gets. A list is a script: each query
takes the next answer, and the last one stays. A query naming no scripted track answers an
empty vector.

Amazon Managed Service for Prometheus serves the same API under
``/workspaces/<id>/api/v1/query`` and refuses any request not signed with SigV4 for service
``aps``: with ``sigv4`` set (the test credentials), each request's signature is recomputed with
botocore and a missing or wrong one is 403, as AMP answers.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any
from urllib.parse import parse_qs

from .http import EmulatorServer, Request, Response

QUERY_PATH = re.compile(r"(?:/workspaces/(?P<workspace>[^/]+))?/api/v1/query")
TRACK = re.compile(r'track\s*=\s*"(?P<track>[^"]+)"')


class PrometheusEmulator(EmulatorServer):
    def __init__(self, sigv4: dict[str, str] | None = None, region: str = "eu-west-1") -> None:
        super().__init__()
        self.answers: dict[str, Any] = {}
        self.sigv4, self.region = sigv4, region
        self.queries: list[str] = []
        self.asked_at: list[float] = []  # time.time() of each query, in order

    def handle(self, request: Request) -> Response:
        if not QUERY_PATH.fullmatch(request.path):
            return Response(404, b"404 page not found")
        if self.sigv4 is not None and (problem := self._signature_problem(request)):
            return Response(403, {"message": problem})
        query = self._query(request)
        if query is None:
            return _error(400, "bad_data", 'invalid parameter "query": empty query')
        self.queries.append(query)
        self.asked_at.append(time.time())
        found = TRACK.search(query)
        answer = self._next(found["track"]) if found else None
        if answer == "error":
            return _error(400, "bad_data", f'invalid parameter "query": 1:1: parse error: {query[:40]}')
        samples = () if answer is None else answer if isinstance(answer, tuple) else (answer,)
        now = round(time.time(), 3)
        result = [
            {"metric": {"pod": str(n)}, "value": [now, _number(float(v))]} for n, v in enumerate(samples)
        ]
        return Response(200, {"status": "success", "data": {"resultType": "vector", "result": result}})

    def _next(self, track: str) -> Any:
        answer = self.answers.get(track)
        if isinstance(answer, list):
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer

    @staticmethod
    def _query(request: Request) -> str | None:
        if request.method == "POST":
            form = parse_qs(request.body.decode())
            return form.get("query", [None])[-1]
        return request.query.get("query") or None

    def _signature_problem(self, request: Request) -> str | None:
        """Recompute the SigV4 signature of ``request`` as AMP does; None when it matches."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        assert self.sigv4 is not None
        given = request.headers.get("authorization", "")
        if not given.startswith("AWS4-HMAC-SHA256 "):
            return "Missing Authentication Token"
        if f"/{self.region}/aps/aws4_request" not in given:
            return "Credential should be scoped to a valid region and service 'aps'"
        url = f"http://{request.headers['host']}{request.path}"
        unsigned = AWSRequest(method=request.method, url=url, data=request.body or None)
        for name in _field(given, "SignedHeaders").split(";"):
            if name != "host" and name in request.headers:
                unsigned.headers[name] = request.headers[name]
        if "x-amz-date" not in unsigned.headers:
            return "x-amz-date must be signed"
        credentials = Credentials(self.sigv4["aws_access_key_id"], self.sigv4["aws_secret_access_key"])
        signer = SigV4Auth(credentials, "aps", self.region)
        expected = _signature(signer, unsigned)
        if expected != _field(given, "Signature"):
            return "The request signature we calculated does not match the signature you provided."
        return None


def _number(value: float) -> str:
    """A sample value as Prometheus writes it (Go's shortest form: 0, 0.02, 1e-07, NaN, +Inf)."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    return text.removesuffix(".0")


def _signature(signer: Any, request: Any) -> str:
    request.context["timestamp"] = request.headers["x-amz-date"]
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    return str(signer.signature(string_to_sign, request))


def _field(authorization: str, name: str) -> str:
    found = re.search(rf"{name}=([^,\s]+)", authorization)
    return found.group(1) if found else ""


def _error(code: int, kind: str, message: str) -> Response:
    return Response(code, {"status": "error", "errorType": kind, "error": message})
