"""The rollout verdict, from API-shaped data: kubectl's completion rule and fail-fast states."""

from __future__ import annotations

from typing import Any

import pytest

from releasegate.core.rollout import evaluate, rollout_wait_reason

IMAGE = "repo/model-api@sha256:" + "1" * 64
OLD = "repo/model-api@sha256:" + "0" * 64


def deployment(replicas: int = 2, generation: int = 2, observed: int = 2, **status: Any) -> dict[str, Any]:
    """A Deployment; ``status`` overrides status fields (``total`` stands for status.replicas)."""
    defaults = {
        "replicas": status.pop("total", replicas),
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
    }
    return {
        "metadata": {"name": "model-api", "generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, **defaults, **status},
    }


def pod(name: str, image: str = IMAGE, ready: bool = True, **container: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "model-api", "image": image}]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "model-api", "image": image, "restartCount": 0, **container}],
        },
    }


def test_complete_when_kubectl_would_say_so_and_every_new_pod_is_ready() -> None:
    verdict = evaluate(deployment(), [pod("a"), pod("b")], IMAGE)
    assert verdict.state == "complete" and (verdict.ready, verdict.desired) == (2, 2)


@pytest.mark.parametrize(
    ("dep", "reason"),
    [
        (deployment(generation=3, observed=2), "spec update to be observed"),
        (deployment(updatedReplicas=1), "1 of 2 new replicas updated"),
        (deployment(total=3), "1 old replicas pending termination"),
        (deployment(availableReplicas=1), "1 of 2 updated replicas available"),
    ],
)
def test_kubectl_rollout_status_rule(dep: dict[str, Any], reason: str) -> None:
    assert reason in (rollout_wait_reason(dep) or "")
    assert evaluate(dep, [pod("a"), pod("b")], IMAGE).state == "progressing"


def test_old_pods_do_not_count_as_ready() -> None:
    verdict = evaluate(deployment(), [pod("a"), pod("old", image=OLD)], IMAGE)
    assert verdict.state == "progressing" and verdict.ready == 1


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"state": {"waiting": {"reason": "ErrImagePull", "message": "not found"}}}, "ErrImagePull"),
        ({"state": {"waiting": {"reason": "ImagePullBackOff"}}}, "ImagePullBackOff"),
        ({"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 3}, "CrashLoopBackOff"),
        (
            {"state": {"waiting": {"reason": "CreateContainerConfigError", "message": "secret missing"}}},
            "CreateContainerConfigError",
        ),
        (
            {"state": {"running": {}}, "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}},
            "OOMKilled",
        ),
    ],
)
def test_fatal_pod_states_fail_at_once(state: dict[str, Any], reason: str) -> None:
    verdict = evaluate(
        deployment(updatedReplicas=1, availableReplicas=0), [pod("bad", ready=False, **state)], IMAGE
    )
    assert verdict.state == "failed"
    assert verdict.problems[0].reason == reason and verdict.problems[0].pod == "bad"
    assert verdict.summary.startswith(f"bad: {reason}")


def test_failing_old_pods_do_not_fail_the_new_release() -> None:
    broken_old = pod("old", image=OLD, ready=False, state={"waiting": {"reason": "CrashLoopBackOff"}})
    assert evaluate(deployment(), [pod("a"), pod("b"), broken_old], IMAGE).state == "complete"


def test_progress_deadline_exceeded_fails() -> None:
    dep = deployment(availableReplicas=0)
    message = 'ReplicaSet "model-api-abc" has timed out progressing.'
    condition = {
        "type": "Progressing",
        "status": "False",
        "reason": "ProgressDeadlineExceeded",
        "message": message,
    }
    dep["status"]["conditions"] = [condition]
    verdict = evaluate(dep, [pod("a", ready=False)], IMAGE)
    assert verdict.state == "failed" and "ProgressDeadlineExceeded" in verdict.summary


def test_unready_but_healthy_pods_keep_waiting() -> None:
    verdict = evaluate(deployment(availableReplicas=0), [pod("a", ready=False, state={"running": {}})], IMAGE)
    assert verdict.state == "progressing"


def test_pods_of_an_older_replica_set_on_the_same_image_are_not_counted() -> None:
    # A restore goes back to an image whose pods may also run under an older pod template.
    dep = deployment()
    dep["spec"]["template"] = {"metadata": {"labels": {"app": "model-api", "rev": "new"}}}
    new = [pod(n) for n in ("a", "b")]
    old = [pod(n) for n in ("c", "d")]
    for p in new:
        p["metadata"]["labels"] = {"app": "model-api", "rev": "new", "pod-template-hash": "1"}
    for p in old:
        p["metadata"]["labels"] = {"app": "model-api", "rev": "old", "pod-template-hash": "2"}
    verdict = evaluate(dep, new + old, IMAGE)
    assert verdict.state == "complete"
    assert verdict.summary == "2 of 2 pods Ready on the pinned image"


def test_never_more_ready_pods_than_desired_are_reported() -> None:
    verdict = evaluate(deployment(), [pod(n) for n in "abcd"], IMAGE)
    assert (verdict.ready, verdict.desired) == (2, 2) and verdict.summary.startswith("2 of 2")


NO_NODE = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."


def pending(name: str, since: str = "2026-12-02T10:00:00Z") -> dict[str, Any]:
    """A pod the scheduler could place nowhere, as kube-scheduler reports it."""
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "model-api", "image": IMAGE}]},
        "status": {"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": NO_NODE,
             "lastTransitionTime": since},
        ]},
    }  # fmt: skip


def test_a_pod_no_node_can_take_is_named_at_once_with_the_schedulers_message() -> None:
    at = 1796205600.0  # 2026-12-02T10:00:00Z
    verdict = evaluate(deployment(availableReplicas=1), [pod("a"), pending("b")], IMAGE, 300, now=at + 10)
    assert verdict.state == "progressing"
    assert verdict.summary == f"b cannot be scheduled: {NO_NODE}"


def test_a_pod_unschedulable_past_the_timeout_fails_the_rollout() -> None:
    at = 1796205600.0
    verdict = evaluate(deployment(availableReplicas=1), [pod("a"), pending("b")], IMAGE, 300, now=at + 300)
    assert verdict.state == "failed"
    assert verdict.problems[0].reason == "Unschedulable" and verdict.problems[0].message == NO_NODE
    assert verdict.summary == f"b: Unschedulable: {NO_NODE} (for 300 s: unschedulable_timeout)"
