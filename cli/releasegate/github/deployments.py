"""GitHub Deployments: each deploy is recorded where the repository's people look.

One deployment per deploy (ref = the tag, environment = the environment's name) with
statuses ``in_progress`` → ``success`` or ``failure`` (and ``inactive`` on a failed one whose
previous release was restored), each linking to the Actions run. Recording is best effort:
a token without ``deployments: write`` gets one warning and the deploy goes on.

Layer: adapter for GitHub (imports only core and github/).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from releasegate.github.actions import run_url
from releasegate.github.releases import ReleaseSource


class DeploymentRecord:
    def __init__(self, source: ReleaseSource, warn: Callable[[str], None]) -> None:
        self.source, self.warn = source, warn
        self._deployment: Any = None
        self._disabled = False

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
        return str(self._deployment.id) if self._deployment is not None else ""

    def resume(self, deployment_id: str) -> None:
        """Go on posting statuses to a deployment an earlier run started (a paused release)."""
        if deployment_id.isdigit():

            def find() -> None:
                self._deployment = self.source.repository_api().get_deployment(int(deployment_id))

            self._attempt(find)

    def status(self, state: str, description: str) -> None:
        if self._deployment is None:
            return
        url = run_url()
        # target_url: PyGithub has no log_url; GitHub takes target_url as its alias.
        link = {"target_url": url} if url else {}
        self._attempt(lambda: self._deployment.create_status(state, description=description[:140], **link))

    def _attempt(self, call: Callable[[], Any]) -> None:
        if self._disabled:
            return
        try:
            call()
        except Exception as exc:  # best effort, whatever went wrong: the deploy itself goes on
            self._disabled = True
            status = getattr(exc, "status", exc.__class__.__name__)
            self.warn(f"could not record a GitHub deployment ({status}); give the token deployments: write")
