"""The promotion gate: a protected environment takes only a tag already verified in the
environment it is promoted from (``promote_from`` in its environment file).

The evidence is a GitHub deployment of the tag to that environment with a ``success``
status; when GitHub cannot be asked, the environment's own ledger in its cluster.

Layer: commands (above the strategies; the CLI calls them).
"""

from __future__ import annotations

from collections.abc import Callable

from releasegate.core.config import Environment, Project, load_environment
from releasegate.core.errors import Refused
from releasegate.github.releases import ReleaseSource
from releasegate.kube.api import Cluster
from releasegate.kube.ledger import DEPLOYED, Ledger


def require_promotion(
    project: Project, env: Environment, tag: str, releases: ReleaseSource, warn: Callable[[str], None]
) -> str:
    """Where ``tag`` was verified before; Refused when it was not."""
    assert env.promote_from is not None
    source = load_environment(project, env.promote_from)
    found, last = None, None
    if releases.has_token:
        try:
            found, last = _from_github(releases, source.name, tag)
        except Refused as unreachable:
            warn(f"{unreachable.cause}: checking the {source.name} ledger instead")
    if found is None and last is None:
        found, last = _from_ledger(project, source, tag)
    if found:
        return found
    history = (
        f"its last {source.name} deployment ended in {last}"
        if last
        else f"it was never deployed to {source.name}"
    )
    raise Refused(
        f"{tag} has not been verified in {source.name}, so it cannot go to {env.name}: {history}",
        f"deploy {tag} to {source.name} first, or pass --skip-promotion-check",
    )


def _from_github(releases: ReleaseSource, environment: str, tag: str) -> tuple[str | None, str | None]:
    last = None
    with releases.translated_errors():
        for deployment in releases.repository_api().get_deployments(ref=tag, environment=environment):
            states = [status.state for status in deployment.get_statuses()]  # newest first
            if "success" in states:
                when = deployment.created_at.strftime("%Y-%m-%d %H:%M UTC")
                return f"{environment} (GitHub deployment {deployment.id}, {when})", None
            last = last or (states[0] if states else "no status")
    return None, last


def _from_ledger(project: Project, source: Environment, tag: str) -> tuple[str | None, str | None]:
    records = [
        r
        for r in Ledger(Cluster(source.kube_context), source.namespace, project.app).records()
        if r.tag == tag
    ]
    good = next((r for r in records if r.outcome == DEPLOYED), None)
    if good:
        return f"{source.name} (ledger revision {good.revision}, {good.at})", None
    return None, records[0].outcome if records else None
