"""Is the rollout done, still going, or certain to fail? Pure functions of API objects.

The objects are the API's own JSON shapes (camelCase dicts), so these functions are tested
with plain data and read the same as the Kubernetes documentation. A rollout is complete by
``kubectl rollout status``'s rule, and additionally every new pod must be Ready running the
pinned image. States a pod does not recover from without a change fail at once; a pod no node
can take is named at once with the scheduler's message, and fails once it has waited
``unschedulable_timeout`` (the cluster autoscaler may add a node meanwhile) or at once when
the autoscaler said it will not (``NotTriggerScaleUp``, which ``verify.py`` reads from Events).

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

# Waiting reasons that mean this release will not become Ready on its own.
FATAL_WAITING = {
    "ErrImagePull": "the image could not be pulled",
    "ImagePullBackOff": "the image could not be pulled",
    "InvalidImageName": "the image reference is invalid",
    "CrashLoopBackOff": "the container keeps crashing",
    "CreateContainerConfigError": "the container config is invalid (missing Secret or ConfigMap?)",
    "CreateContainerError": "the container could not be created",
}
FATAL_TERMINATED = {"OOMKilled": "the container ran out of memory (raise resources.limits.memory)"}

State = Literal["progressing", "complete", "failed"]
UNSCHEDULABLE_SECONDS = 300.0  # the environment key unschedulable_timeout's default


@dataclass(frozen=True)
class PodProblem:
    pod: str
    container: str
    reason: str
    message: str
    explanation: str
    restarts: int = 0


@dataclass(frozen=True)
class Verdict:
    state: State
    summary: str
    ready: int = 0
    desired: int = 0
    problems: tuple[PodProblem, ...] = field(default=())


def evaluate(
    deployment: dict[str, Any],
    pods: list[dict[str, Any]],
    image: str,
    unschedulable_timeout: float = UNSCHEDULABLE_SECONDS,
    now: float | None = None,
) -> Verdict:
    """The rollout's state, given the Deployment and the pods its selector matches (``now``:
    the time.time() to judge how long a pod has waited for a node)."""
    desired = int(deployment.get("spec", {}).get("replicas", 1))
    template_labels = (deployment.get("spec", {}).get("template", {}).get("metadata") or {}).get("labels")
    new_pods = [
        p
        for p in pods
        if _runs_image(p, image)
        and _from_template(p, template_labels or {})
        and not p["metadata"].get("deletionTimestamp")
    ]
    # What a person means by "2 of 2": new pods of the desired count, never more, even while
    # surplus pods of the same image (an older pod template) are still terminating.
    ready = min(sum(1 for p in new_pods if is_ready(p)), desired)
    problems = tuple(problem for p in new_pods for problem in pod_problems(p))
    now = time.time() if now is None else now
    stuck = [(p, unscheduled) for p in new_pods if (unscheduled := unschedulable(p)) is not None]
    problems += tuple(
        PodProblem(p["metadata"]["name"], "", "Unschedulable", message,
                   f"{message} (for {unschedulable_timeout:g} s: unschedulable_timeout)")
        for p, (message, since) in stuck
        if since is not None and now - since >= unschedulable_timeout
    )  # fmt: skip
    if problems:
        first = problems[0]
        return Verdict(
            "failed", f"{first.pod}: {first.reason}: {first.explanation}", ready, desired, problems
        )
    deadline = _condition(deployment, "Progressing")
    if deadline and deadline.get("reason") == "ProgressDeadlineExceeded":
        message = deadline.get("message") or "the rollout made no progress before its deadline"
        return Verdict("failed", f"ProgressDeadlineExceeded: {message}", ready, desired)
    if stuck:
        pod, (message, _) = stuck[0]
        more = f" (and {len(stuck) - 1} more)" if len(stuck) > 1 else ""
        summary = f"{pod['metadata']['name']}{more} cannot be scheduled: {message}"
        return Verdict("progressing", summary, ready, desired)
    waiting = rollout_wait_reason(deployment)
    if waiting:
        return Verdict("progressing", waiting, ready, desired)
    if ready < desired:
        return Verdict("progressing", f"{ready} of {desired} new pods Ready", ready, desired)
    return Verdict("complete", f"{ready} of {desired} pods Ready on the pinned image", ready, desired)


def rollout_wait_reason(deployment: dict[str, Any]) -> str | None:
    """Why ``kubectl rollout status`` would still wait, or None when it would report success."""
    metadata, spec, status = (
        deployment["metadata"],
        deployment.get("spec", {}),
        deployment.get("status") or {},
    )
    if int(metadata.get("generation", 0)) > int(status.get("observedGeneration", 0)):
        return "waiting for the Deployment spec update to be observed"
    replicas = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas", 0))
    total = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    if updated < replicas:
        return f"{updated} of {replicas} new replicas updated"
    if total > updated:
        return f"{total - updated} old replicas pending termination"
    if available < updated:
        return f"{available} of {updated} updated replicas available"
    return None


def pod_problems(pod: dict[str, Any]) -> list[PodProblem]:
    name = pod["metadata"]["name"]
    status = pod.get("status") or {}
    found = []
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        state = container.get("state") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        waiting = state.get("waiting") or {}
        terminated = state.get("terminated") or {}
        # The most specific cause first: an OOM kill explains the CrashLoopBackOff it leads to.
        for reason, message in (
            (terminated.get("reason"), terminated.get("message")),
            (last.get("reason") if last.get("reason") in FATAL_TERMINATED else None, last.get("message")),
            (waiting.get("reason"), waiting.get("message")),
        ):
            explanation = FATAL_WAITING.get(reason or "") or FATAL_TERMINATED.get(reason or "")
            if reason and explanation:
                found.append(
                    PodProblem(
                        pod=name,
                        container=container.get("name", ""),
                        reason=reason,
                        message=message or "",
                        explanation=explanation,
                        restarts=int(container.get("restartCount", 0)),
                    )
                )
                break
    return found


def unschedulable(pod: dict[str, Any]) -> tuple[str, float | None] | None:
    """The scheduler's message and since when (epoch seconds) for a pod no node can take."""
    scheduled = _condition(pod, "PodScheduled")
    if not scheduled or scheduled.get("status") != "False" or scheduled.get("reason") != "Unschedulable":
        return None
    message = str(scheduled.get("message") or "no node can take the pod")
    return message, _epoch(scheduled.get("lastTransitionTime"))


def _epoch(stamp: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def is_ready(pod: dict[str, Any]) -> bool:
    ready = _condition(pod, "Ready")
    return bool(ready and ready.get("status") == "True")


def _from_template(pod: dict[str, Any], template_labels: dict[str, str]) -> bool:
    """Pods carry their template's labels (plus pod-template-hash): an older template's pods
    on the same image differ in one of them."""
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in template_labels.items())


def _runs_image(pod: dict[str, Any], image: str) -> bool:
    return any(c.get("image") == image for c in pod.get("spec", {}).get("containers", []))


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None
