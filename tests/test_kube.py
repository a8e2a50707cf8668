"""kube.py's API object against the Kubernetes emulator over HTTP."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from releasegate.core.errors import Refused
from releasegate.kube.api import Cluster, WatchStop
from tests.emulators.kube import KubeEmulator
from tests.test_kube_emulator import NS, config_map, wait_for


def test_access_check(kube: KubeEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Cluster(None).check_access(NS)
    kube.token = "rotated"
    with pytest.raises(Refused, match="401"):
        Cluster(None).check_access(NS)
    with pytest.raises(Refused, match="no usable Kubernetes configuration"):
        Cluster("no-such-context").check_access(NS)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(Refused) as caught:
        Cluster(None).check_access(NS)
    assert str(tmp_path / "missing") in caught.value.cause and "KUBECONFIG" in caught.value.hint


def test_a_watch_resumes_after_the_server_closes_it(kube: KubeEmulator) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    cluster = Cluster(None)
    start = cluster.get(path)["metadata"]["resourceVersion"]
    kube.faults.watch_seconds = 0.3  # every watch request ends after 0.3 s
    cluster.call("POST", path, body=config_map("a"))
    threading.Timer(1.0, lambda: cluster.call("POST", path, body=config_map("b"))).start()
    seen = []
    for event in cluster.watch(path, start, time.monotonic() + 5):
        seen.append((event.type, event.obj["metadata"]["name"]))
        if len(seen) == 2:
            break
    assert seen == [("ADDED", "a"), ("ADDED", "b")]
    watches = [r for r in kube.requests if r.query.get("watch") == "true"]
    assert len(watches) >= 3  # resumed, each time from the last version seen


def test_a_stopped_watch_ends_at_once_even_while_its_read_waits(kube: KubeEmulator) -> None:
    """A watch thread must not outlive its rollout until the server's timeout ends its read."""
    path = f"/api/v1/namespaces/{NS}/configmaps"
    cluster = Cluster(None)
    start = cluster.get(path)["metadata"]["resourceVersion"]
    stop = WatchStop()
    seen: list[str] = []

    def follow() -> None:
        seen.extend(event.type for event in cluster.watch(path, start, time.monotonic() + 120, stop))

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    wait_for(lambda: any(r.query.get("watch") == "true" for r in kube.requests))
    time.sleep(0.3)  # blocked in its read: nothing changes in the namespace
    stopped = time.monotonic()
    stop.set()
    thread.join(10)
    assert not thread.is_alive() and time.monotonic() - stopped < 2, "the watch outlived its stop"
    assert seen == []
    watches = [r for r in kube.requests if r.query.get("watch") == "true"]
    assert len(watches) == 1  # stopped: not resumed


def test_a_watch_too_old_to_resume_lists_again(kube: KubeEmulator) -> None:
    path = f"/api/v1/namespaces/{NS}/configmaps"
    cluster = Cluster(None)
    start = cluster.get(path)["metadata"]["resourceVersion"]
    cluster.call("POST", path, body=config_map("a"))
    kube.compact()  # the history holding "a" is gone: resuming from start is 410
    event = next(cluster.watch(path, start, time.monotonic() + 5))
    assert event.type == "SYNC" and [o["metadata"]["name"] for o in event.items] == ["a"]


def test_transient_errors_are_retried_only_when_asked(kube: KubeEmulator) -> None:
    from kubernetes.client.exceptions import ApiException

    path = f"/api/v1/namespaces/{NS}/configmaps"
    kube.fail_next(503, "POST", "/configmaps")
    with pytest.raises(ApiException):
        Cluster(None).call("POST", path, body=config_map("a"))
    kube.fail_next(503, "POST", "/configmaps", times=2)
    Cluster(None).call("POST", path, body=config_map("a"), retry=True)
    assert kube.get("ConfigMap", NS, "a") is not None
