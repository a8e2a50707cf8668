from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulators.ecr import EcrEmulator
from tests.emulators.stack import Stack

SHARED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def ecr() -> Iterator[EcrEmulator]:
    server = EcrEmulator().start()
    yield server
    server.stop()


@pytest.fixture
def stack(ecr: EcrEmulator, tmp_path: Path) -> Iterator[Stack]:
    running = Stack(ecr, tmp_path)
    yield running
    running.stop()


def reference(*parts: str) -> Path:
    """A file of ../shared/reference, or a skip when this clone has none (a user's own clone)."""
    path = SHARED_REFERENCE.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not present: the conformance check needs ../shared/reference")
    return path
