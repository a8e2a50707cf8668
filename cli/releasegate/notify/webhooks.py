"""Deliver one notification to each target that wants it: a Slack incoming-webhook message, or
the command's JSON result POSTed to any URL.

A notification never fails the command it reports on: one that cannot be delivered after up to
three tries within ten seconds is a warning. The URLs come from environment variables and are
secrets (a Slack webhook URL is its own credential): they are never printed, not even inside an
error, and the caller masks them in GitHub Actions before anything is sent.

urllib3 (already under the Kubernetes client) does the tries: again on a broken connection, a
timeout, 429 and 5xx, after a short backoff or the ``Retry-After`` the receiver asked for, as
long as that fits in the budget. Redirects: 307 and 308 keep the method and body, so the POST
is sent again at the new address; after 301, 302 or 303 an HTTP client turns a POST into a
bodiless GET (CPython's urllib does), so those count as not delivered, and the warning names
the status.

Layer: adapter (imports only core and notify/).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import urllib3  # imported only when a notification is sent (report.py imports this module late)
from urllib3 import BaseHTTPResponse, Retry

from releasegate.core import json_text
from releasegate.core.notify_config import NotifyTarget

TRIES = 3
BUDGET_SECONDS = 10.0  # every try of one notification, waits included
BACKOFF = 0.5  # urllib3's backoff factor: a receiver restarting gets a moment (0 s, then 1 s)
AGAIN_ON = (429, *range(500, 600))
KEEPS_THE_POST = (307, 308)
MAX_REDIRECTS = 3
USER_AGENT = "releasegate-notify"
SLACK_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))  # Slack's "Escaping text"


@dataclass(frozen=True)
class Notification:
    event: str  # one of notify_config.EVENTS
    line: str  # the result's one-line message
    env: str
    tag: str
    run_url: str | None  # the GitHub Actions run, when there is one
    result: dict[str, Any]  # what --json prints

    def slack_text(self) -> str:
        """The line and the facts as text (``&``, ``<``, ``>`` are Slack's markup: an error page
        quoted in a failure would become a link or a mention), and the run as a link."""
        facts = f"environment `{_slack(self.env)}` · tag `{_slack(self.tag or '-')}` · outcome *{self.event}*"
        link = f" · <{self.run_url}|the run>" if self.run_url else ""
        if clusters := self.result.get("clusters"):  # one notification for every cluster of the run
            facts += " · clusters " + ", ".join(
                f"{_slack(c['name'])} {_slack(c['outcome'])}" for c in clusters
            )
        if override := self.result.get("freeze_override"):  # deployed during a freeze: say who decided why
            facts += f" · freeze {_slack(override['window'])} overridden: {_slack(override['reason'])}"
        return f"{_slack(self.line)}\n{facts}{link}"

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
    """'' once the receiver took it, else why not (never naming the URL)."""
    if not url.startswith(("https://", "http://")):
        return "the variable does not hold an http(s) URL"
    retries = _Budgeted(
        total=TRIES - 1, allowed_methods=None, status_forcelist=AGAIN_ON, backoff_factor=BACKOFF,
        raise_on_status=False, redirect=False,
    )  # fmt: skip
    retries.budget, retries.deadline = budget, time.monotonic() + budget
    data = json_text.dumps(body, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    with urllib3.PoolManager(headers=headers, timeout=urllib3.Timeout(total=budget / TRIES)) as pool:
        try:
            for _ in range(MAX_REDIRECTS + 1):
                answer = pool.request("POST", url, body=data, retries=retries, redirect=False)
                location = answer.headers.get("Location")
                if answer.status not in KEEPS_THE_POST or not location:
                    return _problem(answer)
                url = urljoin(url, location)  # the same POST, at the new address
            return f"the receiver redirected more than {MAX_REDIRECTS} times"
        except _OutOfTime as late:
            return late.problem
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            return f"cannot reach the receiver ({reason.__class__.__name__}: {_no_url(str(reason), url)})"


def _problem(answer: BaseHTTPResponse) -> str:
    if 200 <= answer.status < 300:
        return ""
    tries = len(answer.retries.history) + 1 if answer.retries is not None else 1
    after = f" after {tries} tries" if tries > 1 else ""
    if answer.status in (301, 302, 303):
        return (
            f"the receiver answered {answer.status} (a redirect that would turn the POST into a bodiless GET)"
        )
    return f"the receiver answered {answer.status}{after}"


class _OutOfTime(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _Budgeted(Retry):
    """urllib3's Retry, waiting only while the notification's budget lasts."""

    budget = BUDGET_SECONDS
    deadline = 0.0  # time.monotonic() by which every try must be over

    def new(self, **options: Any) -> _Budgeted:
        fresh = super().new(**options)
        fresh.budget, fresh.deadline = self.budget, self.deadline
        return fresh

    def sleep_for_retry(self, response: BaseHTTPResponse) -> bool:
        wait = self.get_retry_after(response)
        if wait is not None and time.monotonic() + wait > self.deadline:
            raise _OutOfTime(
                f"the receiver answered {response.status} and asked to be tried again in {wait:g} s, "
                f"beyond the {self.budget:g} s a notification may take"
            )
        return super().sleep_for_retry(response)

    def _sleep_backoff(self) -> None:
        time.sleep(max(min(self.get_backoff_time(), self.deadline - time.monotonic()), 0))


def _slack(text: str) -> str:
    for character, escaped in SLACK_ESCAPES:
        text = text.replace(character, escaped)
    return text


def _no_url(text: str, url: str) -> str:
    return text.replace(url, "***")
