"""The two tracks of a canary as the cluster has them: the stable Deployment ``<app>`` and
``<app>-canary``, each with its pods, and what can be read off them.

Layer: strategies (read-only helpers of ``canary.py`` and ``sizing.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from releasegate.core import placement
from releasegate.core.placement import TRACK_LABEL, Track
from releasegate.core.rollout import is_ready
from releasegate.kube.verify import workload

if TYPE_CHECKING:
    from releasegate.run import Run

TAG_ANNOTATION = "releasegate.dev/tag"


def canary_name(run: Run) -> str:
    return placement.workload_name(run.project.app, Track("canary", ""))


def canary_service(run: Run) -> str:
    return f"{run.project.app}-canary"


def has_stable_track(run: Run) -> bool:
    """A stable Deployment labelled as the stable track: there is something to compare with."""
    stable = stable_track(run)
    labels = (stable or {}).get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}
    return labels.get(TRACK_LABEL) == "stable"


def stable_track(run: Run) -> dict[str, Any] | None:
    return with_pods(run, run.project.app)


def canary_track(run: Run) -> dict[str, Any] | None:
    return with_pods(run, canary_name(run))


def with_pods(run: Run, name: str) -> dict[str, Any] | None:
    deployment, pods = workload(run.clients.cluster, run.env.namespace, name)
    if deployment is None:
        return None
    return {**deployment, "pods": pods}


def image_of(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def ready_pods(deployment: dict[str, Any]) -> int:
    image = image_of(deployment)
    return sum(1 for p in deployment["pods"] if is_ready(p) and p["spec"]["containers"][0]["image"] == image)


def desired(deployment: dict[str, Any]) -> int:
    return int(deployment["spec"].get("replicas", 1))


def serves(deployment: dict[str, Any], image: str) -> bool:
    return (
        image_of(deployment) == image
        and desired(deployment) > 0
        and ready_pods(deployment) >= desired(deployment)
    )


def tag_of(deployment: dict[str, Any]) -> str:
    return str((deployment["metadata"].get("annotations") or {}).get(TAG_ANNOTATION, "?"))
