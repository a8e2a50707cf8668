"""The kubelets' behaviour on the real tier: kwok Stage documents that the tests own.

kwok plays every kubelet: a Stage whose selector matches a pod patches the pod's status (and
may emit an Event) after a delay, and the next matching Stage takes it on from there. Which
behaviour a pod gets is chosen by its namespace and image, as the emulator's scenarios are
chosen by digest: each test names its own namespace, so one table of "namespace image" ->
scenario, written into every Stage's selector, keeps tests on a shared cluster apart.

Scenarios: ``ready`` (the default, Ready after ``ready_ms``), ``slow`` (Ready after
``slow_ms``), ``crashloop`` (exit 1 and CrashLoopBackOff with a growing restart count),
``oom`` (the same, OOMKilled), ``pull_error`` (ErrImagePull then ImagePullBackOff) and
``never_ready`` (running, never passing its readiness probe). A pod the scheduler cannot place
never reaches a kubelet: that is the real scheduler's own answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .controlplane import ControlPlane

SCENARIOS = ("ready", "slow", "crashloop", "oom", "pull_error", "never_ready")
NOT_DELETED = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
UNHEALTHY = "Readiness probe failed: HTTP probe failed with statuscode: 503"


def _waiting(reason: str) -> dict[str, Any]:
    return {"key": ".status.containerStatuses.[0].state.waiting.reason", "operator": "In", "values": [reason]}


@dataclass
class Kubelets:
    plane: ControlPlane
    ready_ms: int = 300
    slow_ms: int = 4000
    backoff_ms: int = 2000  # between a crash-looping container's restarts
    table: dict[str, str] = field(default_factory=dict)  # "namespace image" -> scenario

    def install(self) -> None:
        self.apply()

    def behave(self, namespace: str, image: str, scenario: str) -> None:
        """Pods in ``namespace`` running ``image`` follow ``scenario`` from now on."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
        self.table[f"{namespace} {image}"] = scenario
        self.apply()

    def forget(self, *namespaces: str) -> None:
        """Drop the scenarios of these namespaces, and put the delays back to their defaults."""
        self.table = {k: v for k, v in self.table.items() if k.split(" ", 1)[0] not in namespaces}
        self.slow_ms = type(self).slow_ms
        self.apply()

    def apply(self) -> None:
        documents = yaml.safe_dump_all(self.stages())
        self.plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=documents)

    # -- the Stage documents ----------------------------------------------------------------

    def _scenario_is(self, *names: str) -> dict[str, Any]:
        key = f'({json.dumps(self.table)})[.metadata.namespace + " " + .spec.containers.[0].image] // "ready"'
        return {"key": key, "operator": "In", "values": list(names)}

    def stages(self) -> list[dict[str, Any]]:
        return [NODE_READY, *self.pod_stages()]

    def pod_stages(self) -> list[dict[str, Any]]:
        created = [NOT_DELETED, {"key": ".status.podIP", "operator": "Exists"}, _waiting("ContainerCreating")]
        crash_event = ("Warning", "BackOff", "Back-off restarting failed container")
        return [
            stage("pod-create", [NOT_DELETED, {"key": ".status.podIP", "operator": "DoesNotExist"}], 50,
                  CREATED),
            stage("pod-delete", [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}], 100, None,
                  delete=True),
            stage("pod-ready", [*created, self._scenario_is("ready")], self.ready_ms, READY),
            stage("pod-ready-slowly", [*created, self._scenario_is("slow")], self.slow_ms, READY),
            stage("pod-never-ready", [*created, self._scenario_is("never_ready")], self.ready_ms,
                  RUNNING_UNREADY, event=("Warning", "Unhealthy", UNHEALTHY)),
            stage("pod-crash", [*created, self._scenario_is("crashloop")], self.ready_ms, crashed("Error", 1),
                  event=crash_event),
            stage("pod-oom", [*created, self._scenario_is("oom")], self.ready_ms, crashed("OOMKilled", 137),
                  event=crash_event),
            stage("pod-crash-again", [NOT_DELETED, self._scenario_is("crashloop", "oom"),
                                      _waiting("CrashLoopBackOff")], self.backoff_ms, CRASHED_AGAIN),
            stage("pod-pull-error", [*created, self._scenario_is("pull_error")], self.ready_ms, PULL_ERROR,
                  event=("Warning", "Failed", "Failed to pull image: not found")),
            stage("pod-pull-backoff", [NOT_DELETED, self._scenario_is("pull_error"),
                                       _waiting("ErrImagePull")],
                  self.ready_ms, PULL_BACKOFF, event=("Normal", "BackOff", "Back-off pulling image")),
        ]  # fmt: skip


def stage(
    name: str,
    match: list[dict[str, Any]],
    delay_ms: int,
    status: str | None,
    *,
    delete: bool = False,
    event: tuple[str, str, str] | None = None,
    kind: str = "Pod",
) -> dict[str, Any]:
    following: dict[str, Any] = {"delete": delete}
    if status is not None:
        following["statusTemplate"] = status
    if event is not None:
        following["event"] = dict(zip(("type", "reason", "message"), event, strict=True))
    return {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Stage",
        "metadata": {"name": f"releasegate-{name}"},
        "spec": {
            "resourceRef": {"apiGroup": "v1", "kind": kind},
            "selector": {"matchExpressions": match},
            "delay": {"durationMilliseconds": delay_ms},
            "next": following,
        },
    }


# Status templates (kwok's Go templates, with sprig). Each writes what a kubelet would.
NODE_STATUS = """\
{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- type: {{ .type | Quote }}
  status: {{ .status | Quote }}
  reason: {{ .reason | Quote }}
  message: {{ .message | Quote }}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
{{ end }}
addresses:
- {type: InternalIP, address: {{ NodeIP | Quote }}}
- {type: Hostname, address: {{ .metadata.name | Quote }}}
daemonEndpoints: {kubeletEndpoint: {Port: 10250}}
allocatable: {cpu: "32", memory: 128Gi, pods: "110"}
capacity: {cpu: "32", memory: 128Gi, pods: "110"}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  containerRuntimeVersion: {{ printf "kwok-%s" Version | Quote }}
  kernelVersion: ""
  kubeProxyVersion: ""
  osImage: ""
  machineID: ""
  systemUUID: ""
  bootID: ""
phase: Running
"""

CREATED = """\
{{ $now := Now }}
conditions:
- {type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: Ready, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, ready: false, started: false, restartCount: 0,
   state: {waiting: {reason: ContainerCreating}}}
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
{{/* An address from the pod's uid, not kwok's pool: in a whole real-tier run (API servers
     restarted, namespaces deleted) kwok's pool gave one address to two live pods. */}}
{{ $n := adler32sum .metadata.uid | atoi }}
{{ $a := add 1 (mod $n 250) }}{{ $b := mod (div $n 250) 250 }}{{ $c := add 1 (mod (div $n 62500) 250) }}
podIP: {{ printf "10.%d.%d.%d" $a $b $c | Quote }}
phase: Pending
startTime: {{ $now | Quote }}
"""

READY = """\
{{ $now := Now }}
conditions:
- {type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, imageID: {{ .image | Quote }}, ready: true,
   started: true, restartCount: 0, state: {running: {startedAt: {{ $now | Quote }}}}}
{{ end }}
phase: Running
"""

RUNNING_UNREADY = """\
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- {name: {{ .name | Quote }}, image: {{ .image | Quote }}, imageID: {{ .image | Quote }}, ready: false,
   started: true, restartCount: 0, state: {running: {startedAt: {{ $now | Quote }}}}}
{{ end }}
phase: Running
"""


def crashed(reason: str, exit_code: int) -> str:
    return """\
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 1
  lastState:
    terminated: {exitCode: EXIT, reason: REASON, startedAt: {{ $now | Quote }},
                 finishedAt: {{ $now | Quote }}}
  state:
    waiting:
      reason: CrashLoopBackOff
      message: {{ printf "back-off 10s restarting failed container=%s pod=%s" .name $.metadata.name | Quote }}
{{ end }}
phase: Running
""".replace("EXIT", str(exit_code)).replace("REASON", reason)


CRASHED_AGAIN = """\
{{ $now := Now }}
containerStatuses:
{{ range .status.containerStatuses }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: {{ add .restartCount 1 }}
  lastState:
    terminated:
      exitCode: {{ .lastState.terminated.exitCode }}
      reason: {{ .lastState.terminated.reason }}
      startedAt: {{ $now | Quote }}
      finishedAt: {{ $now | Quote }}
  state:
    waiting:
      reason: CrashLoopBackOff
      message: {{ printf "back-off 20s restarting failed container=%s pod=%s" .name $.metadata.name | Quote }}
{{ end }}
"""


def pulling(reason: str, message: str) -> str:
    """Every container waiting on its image, with the kubelet's ``reason`` and ``message``
    (a printf format given the image)."""
    return """\
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 0
  state: {waiting: {reason: REASON, message: {{ printf "MESSAGE" .image | Quote }}}}
{{ end }}
""".replace("REASON", reason).replace("MESSAGE", message)


PULL_ERROR = pulling("ErrImagePull", "failed to pull and unpack image %q: not found")
PULL_BACKOFF = pulling("ImagePullBackOff", "Back-off pulling image %q")


NODE_NOT_READY = {
    "key": '.status.conditions.[] | select( .type == "Ready" ) | .status',
    "operator": "NotIn",
    "values": ["True"],
}
# A Node with 32 CPUs and 128 GiB: a pod asking for more stays Pending, Unschedulable.
NODE_READY = stage("node-ready", [NODE_NOT_READY], 0, NODE_STATUS, kind="Node")
