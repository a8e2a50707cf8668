"""Blue/green's slots as they are in the cluster: the Deployments a release can serve from
(``Home``: a slot, or the plain Deployment of an environment that was rolling) and what the
Services select. Reads only; ``bluegreen.py`` writes.

Layer: strategies (above run and the adapters, below the commands).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from releasegate.core.errors import Refused
from releasegate.core.placement import SLOT_LABEL, SLOTS
from releasegate.core.rollout import is_ready
from releasegate.kube.api import SERVICES, translated_errors
from releasegate.kube.verify import workload

if TYPE_CHECKING:
    from releasegate.run import Run

TAG_ANNOTATION = "releasegate.dev/tag"


@dataclass(frozen=True)
class Home:
    """A Deployment a release can serve from, and the selector that sends ``<app>`` to it."""

    name: str
    slot: str  # "" for the plain Deployment of an environment that was rolling
    deployment: dict[str, Any]
    pods: list[dict[str, Any]]
    selector: dict[str, str]

    @property
    def image(self) -> str:
        return str(self.deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    @property
    def tag(self) -> str:
        return str((self.deployment["metadata"].get("annotations") or {}).get(TAG_ANNOTATION, "?"))

    @property
    def desired(self) -> int:
        return int(self.deployment["spec"].get("replicas", 1))

    @property
    def ready(self) -> int:
        return sum(1 for p in self.pods if is_ready(p) and p["spec"]["containers"][0]["image"] == self.image)

    def serves(self, image: str) -> bool:
        """Runs ``image`` with every desired pod Ready: traffic can be sent here at once."""
        return self.image == image and self.desired > 0 and self.ready >= self.desired


def preview_service(run: Run) -> str:
    return f"{run.project.app}-preview"


def live_slot(run: Run) -> str | None:
    """The slot Service ``<app>`` selects now (None: no Service, or a rolling one)."""
    slot = (selector(run) or {}).get(SLOT_LABEL)
    return slot if slot in SLOTS else None


def service(run: Run, name: str) -> dict[str, Any] | None:
    path = f"{SERVICES.format(namespace=run.env.namespace)}/{name}"
    with translated_errors("cannot read the Services in", run.env.namespace, Refused):
        return run.clients.cluster.get_or_none(path)


def selector(run: Run) -> dict[str, str] | None:
    found = service(run, run.project.app)
    return dict(found["spec"].get("selector") or {}) if found else None


def homes(run: Run) -> list[Home]:
    """Every Deployment a release of this app can serve from: the two slots, and the plain
    Deployment of an environment that was rolling."""
    homes = (home(run, slot) for slot in ("", *SLOTS))
    return [home for home in homes if home is not None]


def home(run: Run, slot: str) -> Home | None:
    name = f"{run.project.app}-{slot}" if slot else run.project.app
    deployment, pods = workload(run.clients.cluster, run.env.namespace, name)
    if deployment is None:
        return None
    return Home(name, slot, deployment, pods, selector_for(run, slot, deployment))


def selector_for(run: Run, slot: str, deployment: dict[str, Any]) -> dict[str, str]:
    """What ``<app>`` selects to send traffic to this Deployment: a slot's every pod (the
    preview Service's selector, for that slot), or the rolling Deployment's own selector."""
    if not slot:
        return dict(deployment["spec"]["selector"]["matchLabels"])
    preview = service(run, preview_service(run))
    base = dict(preview["spec"].get("selector") or {}) if preview else {}
    base = base or {"app.kubernetes.io/name": run.project.app}
    return {**base, SLOT_LABEL: slot}
