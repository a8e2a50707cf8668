"""A canary's size and the stable autoscaler's hold.

At weight w the canary runs ``ceil(S x w / 100)`` pods (at least one), S being the stable
count when the deploy started: its pods carry their share of the load, never more. While it
runs, the stable HorizontalPodAutoscaler's ``minReplicas`` is held at S, so the stable cannot
shrink as traffic leaves it (an abort would land everyone on fewer pods); the original is kept
on the autoscaler (``kube/autoscaling.py``), so a later ``promote``, ``abort`` or ``recover``
puts it back.

Layer: strategies (used by ``canary.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from releasegate.core.errors import NeedsAttention
from releasegate.kube import autoscaling
from releasegate.kube.api import translated_errors
from releasegate.strategies.tracks import canary_name, canary_track, desired, image_of, stable_track
from releasegate.strategies.traffic import canary_pods

if TYPE_CHECKING:
    from releasegate.run import Run


class CanarySizing:
    def __init__(self) -> None:
        self.size: int | None = None  # S, once read

    def stable_size(self, run: Run) -> int:
        """S, the stable count when the deploy started: the minimum a held autoscaler keeps
        (a promote runs later, when the autoscaler may have grown the count), else the
        stable Deployment's count."""
        if self.size is None:
            namespace, app = run.env.namespace, run.project.app
            with translated_errors("cannot read the autoscaler in", namespace, NeedsAttention):
                hpa = autoscaling.autoscaler(run.clients.cluster, namespace, app)
            stable = stable_track(run)
            if hpa is not None and autoscaling.held_minimum(hpa) is not None:
                self.size = int(hpa["spec"]["minReplicas"])
            else:
                self.size = desired(stable) if stable is not None else 1
        return self.size

    def pods_for(self, run: Run, weight: int) -> int:
        return canary_pods(self.stable_size(run), weight)

    def hold_stable(self, run: Run) -> None:
        """The stable autoscaler may not go below S while the canary takes traffic from it."""
        namespace, app, size = run.env.namespace, run.project.app, self.stable_size(run)
        run.ensure_lock()
        with translated_errors("cannot hold the stable autoscaler in", namespace, NeedsAttention):
            held = autoscaling.hold_minimum(run.clients.cluster, namespace, app, size)
        if held is not None:
            run.progress.detail("canary", f"stable autoscaler {app} held at minReplicas {held}")

    def resize(self, run: Run, weight: int, before_weight: bool) -> None:
        """The canary at its share of ``weight``: grown (and Ready) before the weight is
        written, shrunk after it, so its pods never carry more than their share."""
        canary = canary_track(run)
        if canary is None:
            raise NeedsAttention(f"{canary_name(run)} is missing", "deploy again")
        wanted, now = self.pods_for(run, weight), desired(canary)
        if wanted == now or (wanted > now) != before_weight:
            return
        with run.stages.run("scale") as done:
            scale_canary(run, wanted)
            if wanted > now:
                wait_for_canary(run, image_of(canary), run.pod_timeout or 1.0)
            done.append(
                f"{canary_name(run)} at {wanted} pods for {weight} % (stable {self.stable_size(run)})"
            )


def let_go_of_stable(run: Run) -> None:
    """The stable autoscaler's own minReplicas back, once the canary is gone."""
    namespace, app = run.env.namespace, run.project.app
    run.ensure_lock()
    with translated_errors("cannot put back the stable autoscaler in", namespace, NeedsAttention):
        original = autoscaling.release_minimum(run.clients.cluster, namespace, app)
    if original is not None:
        run.progress.detail("canary", f"stable autoscaler {app} back to minReplicas {original}")


def scale_canary(run: Run, replicas: int) -> None:
    run.ensure_lock()
    namespace, name = run.env.namespace, canary_name(run)
    with translated_errors(f"cannot scale {name} in", namespace, NeedsAttention):
        autoscaling.set_replicas(run.clients.cluster, namespace, name, replicas)


def wait_for_canary(run: Run, image: str, timeout: float) -> None:
    from releasegate.kube.verify import wait_for_rollout

    verdict = wait_for_rollout(
        run.clients.cluster, run.env.namespace, canary_name(run), image, timeout,
        on_progress=lambda text: run.progress.detail("rollout", text),
        unschedulable_timeout=run.env.unschedulable_timeout,
    )  # fmt: skip
    if verdict.state != "complete":
        raise NeedsAttention(f"the canary did not scale: {verdict.summary}", "look at its pods")
