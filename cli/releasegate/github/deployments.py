"""GitHub Deployments: each deploy is recorded where the repository's people look.

One deployment per deploy (ref = the tag, environment = the environment's name) with
statuses ``in_progress`` → ``success`` or ``failure`` (and ``inactive`` on a failed one whose
previous release was restored), each linking to the Actions run. Recording is best effort:
a token without ``deployments: write`` gets one warning and the deploy goes on.

The requests go in order, in a thread of the record's own, so the deploy never waits for GitHub
(a write there takes a few hundred milliseconds): not before its first change, not at a
milestone. ``settle_all`` waits for every record's requests; the CLI calls it before it reports,
so a warning is in the result and every status is posted before the process ends.

Layer: adapter for GitHub (imports only core and github/).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from releasegate.github.actions import run_url
from releasegate.github.releases import ReleaseSource

_OPEN: list[DeploymentRecord] = []  # records with requests that may not have ended yet
_OPEN_LOCK = threading.Lock()


def settle_all() -> None:
    """Wait until every record's requests have ended (each has GitHub's own timeout)."""
    with _OPEN_LOCK:
        records, _OPEN[:] = list(_OPEN), []
    for record in records:
        record.settle()


class DeploymentRecord:
    def __init__(self, source: ReleaseSource, warn: Callable[[str], None]) -> None:
        self.source, self.warn = source, warn
        self._deployment: Any = None
        self._disabled = False
        self._poster: ThreadPoolExecutor | None = None  # one thread: the requests stay in order
        self._posted: list[Future[None]] = []

    def start(self, tag: str, environment: str, production: bool, note: str = "") -> None:
        """``note``: said after the description (a freeze overridden, and why)."""

        def create() -> None:
            self._deployment = self.source.repository_api().create_deployment(
                ref=tag,
                environment=environment,
                description=f"releasegate deploy of {tag} to {environment}" + (f"; {note}" if note else ""),
                auto_merge=False,
                required_contexts=[],
                production_environment=production,
            )

        self._attempt(create)
        self.status("in_progress", f"deploying {tag}")

    @property
    def id(self) -> str:
        """The deployment's id ("" when none was recorded), kept in the ledger while paused."""
        self.settle()
        return str(self._deployment.id) if self._deployment is not None else ""

    def settle(self) -> None:
        """Wait until every request asked for so far has ended."""
        wait(list(self._posted))

    def resume(self, deployment_id: str) -> None:
        """Go on posting statuses to a deployment an earlier run started (a paused release)."""
        if deployment_id.isdigit():

            def find() -> None:
                self._deployment = self.source.repository_api().get_deployment(int(deployment_id))

            self._attempt(find)

    def status(self, state: str, description: str) -> None:
        url = run_url()
        # target_url: PyGithub has no log_url; GitHub takes target_url as its alias.
        link = {"target_url": url} if url else {}

        def post() -> None:
            if self._deployment is not None:  # none was created (or found): nothing to post to
                self._deployment.create_status(state, description=description[:140], **link)

        self._attempt(post)

    def _attempt(self, call: Callable[[], Any]) -> None:
        """``call`` after every request asked for before it, in the record's thread."""
        if self._poster is None:
            self._poster = ThreadPoolExecutor(max_workers=1, thread_name_prefix="github-deployment")
        with _OPEN_LOCK:
            if self not in _OPEN:  # again after a settle_all: the next one waits for this too
                _OPEN.append(self)
        self._posted.append(self._poster.submit(self._carry_out, call))

    def _carry_out(self, call: Callable[[], Any]) -> None:
        if self._disabled:
            return
        try:
            call()
        except Exception as exc:  # best effort, whatever went wrong: the deploy itself goes on
            self._disabled = True
            status = getattr(exc, "status", exc.__class__.__name__)
            self.warn(f"could not record a GitHub deployment ({status}); give the token deployments: write")
