"""Deliver one notification to each target that wants it: a Slack incoming-webhook message, or
the command's JSON result POSTed to any URL.

A notification never fails the command it reports on: one that cannot be delivered after up to
three tries within ten seconds is a warning. The URLs come from environment variables and are
secrets (a Slack webhook URL is its own credential): they are never printed, not even inside an
error, and the caller masks them in GitHub Actions before anything is sent.

Layer: adapter (imports only core and notify/).
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from releasegate.core import json_text
from releasegate.core.notify_config import NotifyTarget

TRIES = 3
BUDGET_SECONDS = 10.0  # every try of one notification, waits included
PAUSES = (0.5, 1.5)  # between tries: a receiver restarting gets a moment
USER_AGENT = "releasegate-notify"


@dataclass(frozen=True)
class Notification:
    event: str  # one of notify_config.EVENTS
    line: str  # the result's one-line message
    env: str
    tag: str
    run_url: str | None  # the GitHub Actions run, when there is one
    result: dict[str, Any]  # what --json prints

    def slack_text(self) -> str:
        facts = f"environment `{self.env}` · tag `{self.tag or '-'}` · outcome *{self.event}*"
        link = f" · <{self.run_url}|the run>" if self.run_url else ""
        return f"{self.line}\n{facts}{link}"

    def body_for(self, kind: str) -> dict[str, Any]:
        if kind == "slack":
            return {"text": self.slack_text()}
        return self.result


def urls(targets: tuple[NotifyTarget, ...]) -> list[str]:
    """Every URL the targets name (to mask before anything is printed)."""
    return [url for t in targets if (url := os.environ.get(t.variable, ""))]


def send(
    targets: tuple[NotifyTarget, ...],
    notification: Notification,
    warn: Callable[[str], None],
    said: Callable[[str], None],
    budget: float = BUDGET_SECONDS,
) -> int:
    """Send to each target that wants this event; returns how many received it. ``budget``:
    the seconds all tries of one notification may take."""
    delivered = 0
    for target in targets:
        if not target.wants(notification.event):
            continue
        url = os.environ.get(target.variable, "")
        name = f"{target.kind} notification ({target.variable})"
        if not url:
            warn(f"{name} not sent: {target.variable} is not set")
            continue
        problem = _deliver(url, notification.body_for(target.kind), budget)
        if problem:
            warn(f"{name} not delivered: {problem}; the {notification.event} result stands")
        else:
            delivered += 1
            said(f"{name}: {notification.event} sent")
    return delivered


def _deliver(url: str, body: dict[str, Any], budget: float) -> str:
    """'' once the receiver took it, else why the last try failed (never naming the URL)."""
    if not url.startswith(("https://", "http://")):
        return "the variable does not hold an http(s) URL"
    deadline = time.monotonic() + budget
    data = json_text.dumps(body, sort_keys=True).encode()
    problem = ""
    for attempt in range(TRIES):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        problem, again = _try(url, data, min(left, 4.0))
        if not problem or not again or attempt == TRIES - 1:
            break
        time.sleep(min(PAUSES[attempt], max(deadline - time.monotonic(), 0)))
    return problem + (f" after {attempt + 1} tries" if problem and attempt else "")


def _try(url: str, data: bytes, timeout: float) -> tuple[str, bool]:
    """One POST: (problem, worth trying again)."""
    request = urllib.request.Request(  # noqa: S310 (_deliver allows http(s) only)
        url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": USER_AGENT}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 (http(s) only)
            answer.read()
        return "", False
    except urllib.error.HTTPError as exc:
        # 429 and 5xx pass; any other refusal (a revoked Slack hook answers 403/404) will not.
        return f"the receiver answered {exc.code}", exc.code == 429 or exc.code >= 500
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"cannot reach the receiver ({reason.__class__.__name__}: {_no_url(str(reason), url)})", True


def _no_url(text: str, url: str) -> str:
    return text.replace(url, "***")
