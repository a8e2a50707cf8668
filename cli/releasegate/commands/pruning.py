"""Pruning, once a release is good: the members of the environment's ApplySet that it no longer
renders are deleted (a removed disruption budget, a renamed Service, an autoscaler turned off);
after a restore, what the failed release added. Either deployer; see ``kube/applyset.py``.

What is still wanted is everything the release renders in every placement of the environment's
strategy (both blue/green slots, both canary tracks): an idle slot or a canary's objects are
the strategy's to keep or retire, never pruning's. A prune that fails is a warning: the release
is good and serving either way, and the next deploy prunes again.

Layer: commands (above the strategies; the pipeline and recovery call it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from releasegate.core.applyset import Member, members
from releasegate.core.placement import every_placement
from releasegate.core.version import parse_tag
from releasegate.deploy import render as renderer
from releasegate.kube.applyset import ApplySet
from releasegate.kube.serverside import Resources

if TYPE_CHECKING:
    from releasegate.core.config import Environment
    from releasegate.run import Run


def wanted(run: Run, tag: str, image: str, env: Environment | None = None, also: str = "") -> set[Member]:
    """Every object ``tag`` renders in every placement of the environment's strategy, and of
    strategy ``also`` (``env``: the values a restored release was deployed with). A restore
    after a failed move between strategies serves from what the strategy it was deployed with
    renders: both are kept, or the restored release itself would be pruned."""
    env = env or run.env
    release = parse_tag(tag, run.project.tag_prefix)
    placements = every_placement(env.strategy.type, env.strategy.traffic)
    if also and also != env.strategy.type:
        placements += every_placement(also, env.strategy.traffic or "replicas")
    found: set[Member] = set()
    for placement in placements:
        rendered = renderer.render(run.project, env, release, image, placement, validate=False)
        found |= members(m.obj for m in rendered)
    return found


def prunable(run: Run, keep: set[Member]) -> list[str]:
    """What a prune would delete now (``Kind/name``), for --dry-run."""
    applyset = ApplySet(run.clients.cluster, run.env.namespace, run.project.app)
    return [str(member) for member, _ in applyset.prunable(keep, Resources(run.clients.cluster))]


def prune(run: Run, keep: set[Member]) -> None:
    """Delete the set's members not in ``keep``; the JSON result's ``pruned`` lists them."""
    from kubernetes.client.exceptions import ApiException

    applyset = ApplySet(run.clients.cluster, run.env.namespace, run.project.app)
    try:
        doomed = applyset.prunable(keep, Resources(run.clients.cluster))
        with run.stages.run("prune") as done:
            for member, path in doomed:
                run.ensure_lock()
                try:
                    run.clients.cluster.call("DELETE", path, retry=True)
                except ApiException as exc:
                    if exc.status != 404:  # gone already
                        raise
                run.result.pruned.append(str(member))
            applyset.narrow({m.group_kind for m in keep})
            deleted = ", ".join(run.result.pruned)
            done.append(f"deleted {deleted}: no longer rendered" if deleted else "nothing to prune")
    except Exception as error:  # the release is good either way; the next deploy prunes again
        if error.__class__.__name__ == "LockLost":
            raise
        run.progress.warning(f"could not prune what the release no longer renders: {error}")
