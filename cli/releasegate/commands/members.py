"""One cluster of a deploy to several: its progress lines (naming it), how far the release got
in it, and running work on several clusters at once (``waves.py``, ``fleet.py``).

Layer: commands (above the strategies; the CLI calls them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any, TypeVar

from releasegate.commands.pipeline import Attempt
from releasegate.commands.recovery import interrupts_deferred
from releasegate.core.clusters_config import ClusterTarget
from releasegate.core.errors import ReleasegateError
from releasegate.core.notify_config import NotifyTarget
from releasegate.kube.ledger import Record
from releasegate.run import Plan, Progress, Result, Run

T = TypeVar("T")
# A cluster's outcome: the release verified there; failed there (and its earlier release restored);
# put back after a failure elsewhere; never changed; not known-good.
DEPLOYED, FAILED, ROLLED_BACK = "deployed", "failed", "rolled_back"
UNTOUCHED, UNKNOWN = "untouched", "unknown"


@dataclass
class ClusterProgress:
    """A cluster's progress lines, each naming the cluster (several run at once). Every line is
    also where a stop asked of the cluster's thread takes effect (``Member.interrupt``)."""

    inner: Progress
    cluster: str
    checkpoint: Callable[[], None] = lambda: None

    def stage(self, name: str, message: str, seconds: float) -> None:
        self.inner.stage(f"[{self.cluster}] {name}", message, seconds)
        self.checkpoint()

    def detail(self, source: str, text: str) -> None:
        self.inner.detail(f"[{self.cluster}] {source}", text)
        self.checkpoint()

    def warning(self, text: str) -> None:
        self.inner.warning(f"[{self.cluster}] {text}")
        self.checkpoint()

    def secret(self, value: str) -> None:
        self.inner.secret(value)

    def notify_with(self, targets: tuple[NotifyTarget, ...]) -> None:
        self.inner.notify_with(targets)


@dataclass
class Member:
    """One cluster of the deploy, and how far the release got in it."""

    target: ClusterTarget
    run: Run
    plan: Plan | None = None
    current: Record | None = None  # what served before: what putting it back restores
    records: list[Record] = field(default_factory=list)  # its ledger, read under its lock
    attempt: Attempt | None = None  # set once this cluster has been changed
    outcome: str = UNTOUCHED
    message: str = ""
    held: ExitStack = field(default_factory=ExitStack)  # its deploy lock, to the end of the run
    # The thread putting the release in service or baking it (None: none is), and whether the
    # run was interrupted: SIGINT reaches only the main thread, so the cluster's own thread
    # raises KeyboardInterrupt at its next progress line (a rollout says where it stands every
    # few seconds), where a signal could have reached a deploy to one cluster too.
    worker: int | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def interruptible(self, work: Callable[[], T]) -> T:
        """``work``, where an interrupt of the run stops it (``interrupt``)."""
        with self.guard:
            self.worker = threading.get_ident()
        try:
            self.checkpoint()
            return work()
        finally:
            with self.guard:
                self.worker = None

    def interrupt(self) -> None:
        self.stop.set()

    def checkpoint(self) -> None:
        """In the cluster's own thread, while interruptible: stop if the run was interrupted."""
        with self.guard:
            if not self.stop.is_set() or self.worker != threading.get_ident():
                return
            self.worker = None  # once: the restore that follows must not be stopped
        raise KeyboardInterrupt

    @property
    def name(self) -> str:
        return self.target.name

    def entry(self) -> dict[str, Any]:
        revision = self.run.result.revision
        return {"name": self.name, "wave": self.target.wave, "outcome": self.outcome,
                "revision": revision, "message": self.message}  # fmt: skip


def each(
    members: list[Member],
    work: Callable[[Member], None],
    parallel: int,
    collect: bool = True,
    stop_on_failure: bool = False,
) -> None:
    """``work`` on every member, ``parallel`` at once; the first failure is raised, naming its
    cluster, once every one has ended. ``stop_on_failure``: a failure stops the others at their
    next progress line (each puts its cluster back, as on an interrupt; one not started yet
    stays untouched). An interrupt (SIGINT, SIGTERM) reaches every cluster putting a release in
    service, as it would a deploy to one cluster, and is raised here once each is back."""
    errors: dict[str, BaseException] = {}
    first: list[str] = []  # the cluster whose failure stopped the others
    lock = threading.Lock()

    def one(member: Member) -> None:
        try:
            work(member)
        except BaseException as error:  # raised below, in the calling thread
            with lock:
                errors[member.name] = error
                stopping = stop_on_failure and not first and not member.stop.is_set()
                if stopping:
                    first.append(member.name)
            if stopping:
                for other in members:
                    if other is not member:
                        other.interrupt()

    pool = ThreadPoolExecutor(max_workers=max(parallel, 1), thread_name_prefix="cluster")
    running = [pool.submit(one, member) for member in members]
    try:
        wait(running)
    except KeyboardInterrupt:
        with interrupts_deferred(members[0].run.progress):
            for member in members:
                member.interrupt()
            wait(running)
        raise
    finally:
        pool.shutdown(wait=True)
    if not collect:
        return
    for name in first + [m.name for m in members]:
        if name in errors:
            raise named(name, errors[name])


def named(cluster: str, error: BaseException) -> BaseException:
    """``error`` with the cluster it happened in at the front of its cause."""
    if isinstance(error, ReleasegateError) and not error.cause.startswith(f"{cluster}:"):
        error.cause = f"{cluster}: {error.cause}"  # its own class keeps its exit code and fields
    return error


def by_wave(members: list[Member]) -> Iterator[tuple[int, list[Member]]]:
    for wave, group in groupby(sorted(members, key=lambda m: m.target.wave), lambda m: m.target.wave):
        yield wave, list(group)


def summarised(result: Result, members: list[Member]) -> Result:
    """The run's one result: every cluster's entry and stages; the image as the first wave pins it."""
    result.clusters = [m.entry() for m in members]
    for member in members:
        result.stages += [{**stage, "cluster": member.name} for stage in member.run.result.stages]
        result.smoke += [{**check, "cluster": member.name} for check in member.run.result.smoke]
    planned = next((m.plan for m in members if m.plan is not None), None)
    if planned is not None:
        result.image, result.digest = planned.image, planned.image.partition("@")[2]
    ready = [m.run.result.pods_ready for m in members if m.outcome == DEPLOYED and m.run.result.pods_ready]
    result.pods_ready = ", ".join(ready) or None
    return result
