"""Fixtures of the real tier: one control plane for the whole run, a stack per test.

The control plane takes seconds to start, so it is shared; each test's stack has namespaces of
its own. When a test fails, the control plane's logs are kept and their path printed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.ecr import EcrEmulator

from .controlplane import ControlPlane, NotBuilt, running
from .gateway import RealGateway
from .podnet import PodNetwork
from .stack import RealStack
from .stages import Kubelets

RealCluster = tuple[ControlPlane, PodNetwork, Kubelets, RealGateway]


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    workdir = Path(tempfile.mkdtemp(prefix="releasegate-real-"))
    try:
        with running(workdir) as (plane, network), RealGateway(plane) as gateway:
            kubelets = Kubelets(plane)
            kubelets.install()
            network.kubelets = kubelets
            print(f"\nreal control plane up in {plane.started_in:.1f} s; logs in {plane.logs}")
            yield plane, network, kubelets, gateway
    except NotBuilt as missing:
        pytest.fail(f"the real tier is not built: {missing}")
    if not _failed:
        shutil.rmtree(workdir, ignore_errors=True)


_failed: list[str] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed:
        _failed.append(item.nodeid)
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``last`` judge what the others did: they run after them."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


@pytest.fixture(params=["skaffold", "apply"])
def real(
    real_cluster: RealCluster, ecr: EcrEmulator, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[RealStack]:
    """A stack per test, once with each deployer: every scenario runs through `skaffold deploy`
    (the real skaffold and kubectl) and through releasegate's own server-side apply."""
    plane, network, kubelets, gateway = real_cluster
    gateway.behaviour = "accepted"
    stack = RealStack(ecr, tmp_path, plane, network, kubelets, deployer=request.param)
    stack.gateway = gateway
    yield stack
    stack.stop()
