"""The emulator's deployment controller and kubelet, in one small loop of timers.

When a Deployment's pod template changes, it starts a new revision: ``replicas`` pods
labelled with the template's labels and ``pod-template-hash``. Each pod then follows a
scenario chosen by the release (the pod's ``app.kubernetes.io/version`` label or image
digest): ``ready``, ``slow``, ``pull_error``, ``crashloop``, ``oom``, ``never_ready`` or
``config_error``. An image absent from the registry always gives ``pull_error``. As in a
RollingUpdate with maxUnavailable 0, the old pods keep serving until every new one is Ready.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .kube import KubeEmulator

VERSION_LABEL = "app.kubernetes.io/version"
CRASH_LOG = """\
INFO:     Started server process [1]
INFO:     Waiting for application startup.
Loading model from /tmp/models/model.onnx
Traceback (most recent call last):
  File "/app/main.py", line 42, in lifespan
    model = load_model(settings.model_path)
  File "/app/model.py", line 17, in load_model
    raise RuntimeError("MODEL_URI is not set")
RuntimeError: MODEL_URI is not set
ERROR:    Application startup failed. Exiting."""


@dataclass
class Transition:
    pod: str
    reason: str
    at: float  # time.time() when the emulator put the pod in this state
    version: str = ""  # the release (version label) the pod runs


class DeploymentController:
    def __init__(self, cluster: KubeEmulator, registry_has: Callable[[str], bool]) -> None:
        self.cluster = cluster
        self.registry_has = registry_has
        self.scenarios: dict[str, str] = {}  # version label or image digest -> scenario
        self.default_scenario = "ready"
        self.ready_seconds = 0.05
        self.slow_seconds = 2.0
        self.failure_seconds = 0.1  # when a failing scenario's first failure shows (benchmarks raise it)
        self.transitions: list[Transition] = []
        self._revision: dict[tuple[str, str], str] = {}
        self._names = iter(f"{n:05x}" for n in range(0x10000, 0xFFFFF, 7919))
        # Addresses are only labels here (nothing dials them): unique, as a CNI hands them out.
        self.pod_ips = (f"10.244.{n // 250}.{n % 250 + 1}" for n in itertools.count())

    def scenario_for(self, image: str, labels: dict[str, str]) -> str:
        digest = image.partition("@")[2]
        chosen = self.scenarios.get(labels.get(VERSION_LABEL, "")) or self.scenarios.get(digest)
        chosen = chosen or self.default_scenario
        if chosen != "pull_error" and not self.registry_has(image):
            return "pull_error"
        return chosen

    # Called by the API server after every write.
    def changed(self, obj: dict[str, Any]) -> None:
        if obj["kind"] != "Deployment":
            return
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        template = obj["spec"]["template"]
        revision = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        self._revision[(namespace, name)] = revision
        # The current revision's ReplicaSet gets the desired count: a new revision starts its
        # pods; one whose pods still run (a rollback) is scaled back up rather than started
        # again; a count changed by itself (an HPA, `kubectl scale`) scales the current one.
        running = [p for p in self.cluster.list("Pod", namespace)
                   if p["metadata"]["labels"].get("pod-template-hash") == revision]  # fmt: skip
        desired = int(obj["spec"].get("replicas", 1))
        for _ in range(desired - len(running)):
            self._start_pod(namespace, name, template, revision)
        for extra in running[desired:]:
            self.cluster.delete("Pod", namespace, extra["metadata"]["name"])
        self.sync_status(namespace, name)

    def deleted(self, namespace: str, name: str) -> None:
        """The garbage collector: a deleted Deployment's pods are deleted after it."""
        with self.cluster.lock:
            for pod in self.cluster.list("Pod", namespace):
                owners = pod["metadata"].get("ownerReferences") or []
                if any(o["name"].rsplit("-", 1)[0] == name for o in owners):
                    self.cluster.delete("Pod", namespace, pod["metadata"]["name"])

    def _start_pod(self, namespace: str, deployment: str, template: dict[str, Any], revision: str) -> None:
        name = f"{deployment}-{revision}-{next(self._names)}"
        labels = {**(template["metadata"].get("labels") or {}), "pod-template-hash": revision}
        spec = copy.deepcopy(template["spec"])
        spec["nodeName"] = "ip-10-0-1-23.eu-west-1.compute.internal"
        image = spec["containers"][0]["image"]
        pod = {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "ownerReferences": [_owner(deployment, revision)],
            },
            "spec": spec,
            "status": {
                "phase": "Pending",
                "qosClass": "Burstable",
                "conditions": [_condition("PodScheduled", True)],
                "containerStatuses": [_container(spec, {"waiting": {"reason": "ContainerCreating"}})],
            },
        }
        self.cluster.put(pod)
        scenario = self.scenario_for(image, labels)
        for delay, step in SCENARIOS[scenario](self):
            self._later(delay, namespace, name, step)

    def _later(self, delay: float, namespace: str, name: str, step: Callable[..., None]) -> None:
        def run() -> None:
            with self.cluster.lock:
                pod = self.cluster.get("Pod", namespace, name)
                if pod is None:
                    return
                step(self, pod)
                self.cluster.put(pod)
                self.sync_status(namespace, pod["metadata"]["ownerReferences"][0]["name"].rsplit("-", 1)[0])

        timer = threading.Timer(delay, run)
        timer.daemon = True
        timer.start()

    def record(
        self, pod: dict[str, Any], state: str, reason: str, message: str, count: int = 1, by: str = "kubelet"
    ) -> None:
        """Record the pod's new ``state`` (benchmarks time the tool against it) and the Warning
        Event the kubelet (or component ``by``) would emit, with ``reason``."""
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        version = pod["metadata"].get("labels", {}).get(VERSION_LABEL, "")
        self.transitions.append(Transition(name, state, time.time(), version))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.cluster.put(
            {
                "kind": "Event",
                "apiVersion": "v1",
                "metadata": {"name": f"{name}.{len(self.transitions):x}", "namespace": namespace},
                "involvedObject": {"kind": "Pod", "namespace": namespace, "name": name, "apiVersion": "v1"},
                "reason": reason,
                "message": message,
                "type": "Warning",
                "count": count,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "source": {
                    "component": by,
                    **({"host": pod["spec"]["nodeName"]} if "nodeName" in pod["spec"] else {}),
                },
            }
        )

    def sync_status(self, namespace: str, name: str) -> None:
        """Recompute the Deployment status from its pods; retire old pods once the new are Ready."""
        with self.cluster.lock:
            deployment = self.cluster.get("Deployment", namespace, name)
            if deployment is None:
                return
            revision = self._revision.get((namespace, name))
            selector = deployment["spec"]["selector"]["matchLabels"]
            pods = [p for p in self.cluster.list("Pod", namespace) if _has_labels(p, selector)]
            new = [p for p in pods if p["metadata"]["labels"].get("pod-template-hash") == revision]
            ready_new = [p for p in new if _ready(p)]
            desired = int(deployment["spec"].get("replicas", 1))
            if len(ready_new) >= desired:
                for old in (p for p in pods if p not in new):
                    self.cluster.delete("Pod", namespace, old["metadata"]["name"])
                pods = new
            ready = [p for p in pods if _ready(p)]
            complete = len(ready_new) >= desired and len(pods) == len(new)
            deployment["status"] = {
                "observedGeneration": deployment["metadata"].get("generation", 1),
                "replicas": len(pods),
                "updatedReplicas": len(new),
                "readyReplicas": len(ready),
                "availableReplicas": len(ready),
                "conditions": [
                    _deployment_condition("Available", len(ready) >= desired, "MinimumReplicasAvailable"),
                    _deployment_condition(
                        "Progressing", True, "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated"
                    ),
                ],
            }
            if len(pods) > len(ready):
                deployment["status"]["unavailableReplicas"] = len(pods) - len(ready)
            self.cluster.put(deployment)


# Scenario steps: each mutates one pod, in place, under the cluster lock.
def _running(ready: bool) -> Callable[[DeploymentController, dict[str, Any]], None]:
    def step(controller: DeploymentController, pod: dict[str, Any]) -> None:
        status = pod["status"]
        address = status.get("podIP") or next(controller.pod_ips)
        status.update(phase="Running", podIP=address, hostIP="10.0.1.23", startTime=_now())
        status["conditions"] = [
            _condition("PodScheduled", True),
            _condition("Initialized", True),
            _condition("ContainersReady", ready),
            _condition("Ready", ready),
        ]
        status["containerStatuses"] = [
            _container(pod["spec"], {"running": {"startedAt": _now()}}, ready=ready, started=True)
        ]

    return step


def _pull_failed(reason: str) -> Callable[[DeploymentController, dict[str, Any]], None]:
    def step(controller: DeploymentController, pod: dict[str, Any]) -> None:
        image = pod["spec"]["containers"][0]["image"]
        message = (
            f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to resolve reference'
            if reason == "ErrImagePull"
            else f'Back-off pulling image "{image}"'
        )
        pod["status"]["containerStatuses"] = [
            _container(pod["spec"], {"waiting": {"reason": reason, "message": message}})
        ]
        controller.record(pod, reason, "Failed" if reason == "ErrImagePull" else "BackOff", message)

    return step


def _crashed(
    terminated_reason: str, exit_code: int
) -> Callable[[DeploymentController, dict[str, Any]], None]:
    def step(controller: DeploymentController, pod: dict[str, Any]) -> None:
        name = f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
        controller.cluster.logs[f"{name}/previous"] = CRASH_LOG
        container, pod_name = pod["spec"]["containers"][0]["name"], pod["metadata"]["name"]
        message = f"back-off 10s restarting failed container={container} pod={pod_name}"
        status = _container(
            pod["spec"], {"waiting": {"reason": "CrashLoopBackOff", "message": message}}, started=False
        )
        status["restartCount"] = 2
        status["lastState"] = {
            "terminated": {
                "exitCode": exit_code,
                "reason": terminated_reason,
                "startedAt": _now(),
                "finishedAt": _now(),
            }
        }
        pod["status"]["containerStatuses"] = [status]
        controller.record(pod, "CrashLoopBackOff", "BackOff", "Back-off restarting failed container")

    return step


def _unhealthy(controller: DeploymentController, pod: dict[str, Any]) -> None:
    message = "Readiness probe failed: HTTP probe failed with statuscode: 503"
    controller.record(pod, "NotReady", "Unhealthy", message, count=12)


def _config_error(controller: DeploymentController, pod: dict[str, Any]) -> None:
    message = 'secret "model-api-secrets" not found'
    pod["status"]["containerStatuses"] = [
        _container(pod["spec"], {"waiting": {"reason": "CreateContainerConfigError", "message": message}})
    ]
    controller.record(pod, "CreateContainerConfigError", "Failed", f"Error: {message}")


# What the scheduler says of a pod asking for a GPU no node has (kube-scheduler's wording).
NO_GPU = (
    "0/3 nodes are available: 3 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: "
    "3 No preemption victims found for incoming pod."
)
# And the cluster autoscaler, when no node group it manages could hold it either.
NO_SCALE_UP = "pod didn't trigger scale-up: 2 Insufficient nvidia.com/gpu"


def _unschedulable(controller: DeploymentController, pod: dict[str, Any]) -> None:
    """Pending with no node: PodScheduled False, Unschedulable, and the scheduler's Event."""
    pod["spec"].pop("nodeName", None)
    pod["status"].pop("containerStatuses", None)
    pod["status"]["conditions"] = [
        {**_condition("PodScheduled", False), "reason": "Unschedulable", "message": NO_GPU}
    ]
    controller.record(pod, "Unschedulable", "FailedScheduling", NO_GPU, by="default-scheduler")


def _no_scale_up(controller: DeploymentController, pod: dict[str, Any]) -> None:
    pod["status"].setdefault("conditions", [])
    controller.record(pod, "NotTriggerScaleUp", "NotTriggerScaleUp", NO_SCALE_UP, by="cluster-autoscaler")


Steps = list[tuple[float, Callable[[DeploymentController, dict[str, Any]], None]]]
SCENARIOS: dict[str, Callable[[DeploymentController], Steps]] = {
    "ready": lambda c: [(c.ready_seconds, _running(ready=True))],
    "slow": lambda c: [(c.slow_seconds, _running(ready=True))],
    "pull_error": lambda c: [
        (c.failure_seconds, _pull_failed("ErrImagePull")),
        (c.failure_seconds + 0.3, _pull_failed("ImagePullBackOff")),
    ],
    "crashloop": lambda c: [(0.1, _running(ready=False)), (c.failure_seconds + 0.3, _crashed("Error", 1))],
    "oom": lambda c: [(0.1, _running(ready=False)), (c.failure_seconds + 0.3, _crashed("OOMKilled", 137))],
    "never_ready": lambda c: [(0.1, _running(ready=False)), (0.3, _unhealthy)],
    "config_error": lambda c: [(0.1, _config_error)],
    # Pending for a GPU: the cluster autoscaler may yet add a node (it says nothing), or not.
    "unschedulable": lambda c: [(0.05, _unschedulable)],
    "no_scale_up": lambda c: [(0.05, _unschedulable), (0.3, _no_scale_up)],
}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _condition(kind: str, ok: bool) -> dict[str, Any]:
    return {"type": kind, "status": "True" if ok else "False", "lastTransitionTime": _now()}


def _deployment_condition(kind: str, ok: bool, reason: str) -> dict[str, Any]:
    return {**_condition(kind, ok), "lastUpdateTime": _now(), "reason": reason, "message": reason}


def _container(
    spec: dict[str, Any], state: dict[str, Any], ready: bool = False, started: bool = False
) -> dict[str, Any]:
    container = spec["containers"][0]
    digest = container["image"].partition("@")[2]
    return {
        "name": container["name"],
        "image": container["image"],
        "imageID": f"{container['image'].partition('@')[0]}@{digest}" if digest else "",
        "ready": ready,
        "started": started,
        "restartCount": 0,
        "state": state,
    }


def _owner(deployment: str, revision: str) -> dict[str, Any]:
    uid = "00000000-0000-4000-8000-000000000000"
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": f"{deployment}-{revision}",
        "uid": uid,
        "controller": True,
    }


def _has_labels(pod: dict[str, Any], selector: dict[str, str]) -> bool:
    labels = pod["metadata"].get("labels") or {}
    return all(labels.get(k) == v for k, v in selector.items())


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
