"""The door to programs: a deadline that never outlives the program, and an interrupt that
stops the program and leaves nothing behind that would keep releasegate alive at exit."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from releasegate.deploy.process import ProgramFailed, run_program


def live_timers(within: float = 3.0) -> list[threading.Thread]:
    """Non-daemon Timer threads still alive after ``within`` s (sh drains a finished program's
    output for at most 2 s with one): such a one would keep the interpreter alive at exit.
    Daemon ones (the emulators' pod timers, left by other tests in this worker) cannot."""
    ends = time.monotonic() + within
    while alive := [
        t for t in threading.enumerate() if isinstance(t, threading.Timer) and t.is_alive() and not t.daemon
    ]:
        if time.monotonic() > ends:
            break
        time.sleep(0.05)
    return alive


def test_a_finished_program_leaves_no_deadline_timer(tmp_path: Path) -> None:
    lines: list[str] = []
    run_program("sh", ["-c", "echo done"], timeout=600, on_line=lines.append, cwd=tmp_path)
    assert lines == ["done"]
    assert live_timers() == []


def test_an_interrupt_stops_the_program_and_its_deadline_timer(tmp_path: Path) -> None:
    """The non-daemon Timer behind sh's _timeout once outlived an interrupted program, and the
    interpreter waited for it at exit: an interrupted deploy hung for the rest of --timeout."""
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_program("sleep", ["30"], timeout=600, on_line=lambda line: None, cwd=tmp_path)
    assert time.monotonic() - started < 6  # stopped, not waited for
    assert live_timers() == []


def test_past_its_deadline_the_program_is_stopped_and_named(tmp_path: Path) -> None:
    with pytest.raises(ProgramFailed) as failed:
        run_program("sleep", ["30"], timeout=0.5, on_line=lambda line: None, cwd=tmp_path)
    assert "sleep still running after" in failed.value.cause
    assert live_timers() == []
