"""A receiver for releasegate's notifications: a Slack incoming webhook and a plain webhook.

Bodies are read as RFC 8259 JSON, as Slack's and most receivers' parsers (Go's encoding/json,
Node's JSON.parse) read them: ``Infinity`` or ``NaN`` makes a body unreadable.

Slack's incoming webhooks live at ``/services/T…/B…/<secret>`` and take a JSON body with a
non-empty ``text`` (or ``blocks``); they answer ``200 ok`` as text/plain, ``400
invalid_payload`` for a body they cannot read, ``404 no_service`` for a hook that does not
exist. Any other path is a plain webhook: it takes any JSON object and answers 204. Tests
script trouble with ``fail_next`` (statuses answered before the normal answer, e.g. three 500s;
a ``(status, seconds)`` pair also sends ``Retry-After``, as Slack's rate limit does with 429)
and ``moved`` (a path answered with a redirect to another, as a hook moved from http to https
or to a new host is), and read what arrived in ``received``.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from .http import EmulatorServer, Request, Response

SLACK_HOOK = re.compile(r"/services/T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+")


@dataclass
class Delivery:
    path: str
    body: Any
    content_type: str
    status: int
    method: str = "POST"
    at: float = field(default_factory=time.monotonic)


@dataclass
class WebhookReceiver(EmulatorServer):
    fail_next: list[int | tuple[int, str]] = field(default_factory=list)
    moved: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> (3xx status, new path)
    received: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def slack_url(self) -> str:
        return f"{self.url}/services/T0RELEASE/B0GATE/{secrets.token_hex(12)}"

    def webhook_url(self) -> str:
        return f"{self.url}/hooks/deploys/{secrets.token_hex(12)}"

    def bodies(self, kind: str) -> list[Any]:
        """What was taken (answered 2xx) by the Slack hooks or the plain webhook, in order."""
        slack = kind == "slack"
        return [
            d.body for d in self.received if d.status < 300 and bool(SLACK_HOOK.fullmatch(d.path)) == slack
        ]

    def handle(self, request: Request) -> Response:
        try:
            body = json.loads(request.body, parse_constant=_not_json)
        except ValueError:
            body = None
        answer = self._answer(request, body)
        content_type = request.headers.get("content-type", "")
        self.received.append(Delivery(request.path, body, content_type, answer.status, request.method))
        return answer

    def _answer(self, request: Request, body: Any) -> Response:
        if request.path in self.moved:  # whatever the method, as a moved hook answers
            status, new_path = self.moved[request.path]
            return Response(status, b"moved", {"Location": f"{self.url}{new_path}"})
        if request.method != "POST":
            return Response(405, b"method not allowed")
        if self.fail_next:
            trouble = self.fail_next.pop(0)
            status, after = trouble if isinstance(trouble, tuple) else (trouble, "")
            return Response(status, b"upstream trouble", {"Retry-After": after} if after else None)
        if request.path.startswith("/services/"):
            if not SLACK_HOOK.fullmatch(request.path):
                return Response(404, b"no_service")
            if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
                return Response(400, b"invalid_payload")
            return Response(200, b"ok")
        if not isinstance(body, dict):
            return Response(400, b"expected a JSON object")
        return Response(204, None)


def _not_json(token: str) -> Any:
    raise ValueError(f"{token} is not a JSON value")
