"""What becomes of a Deployment traffic has just left: deleted or scaled to 0, but only
``scale_down_delay`` seconds later, because gateways, meshes and load balancers (an ALB in IP
mode, a mesh's endpoints) apply the change seconds to minutes after the API write and until
then still send requests to its pods. The write that moves traffic is never delayed.

A command that must end now (an interrupted run has seconds before the runner kills it; an
operator's ``rollback`` or ``abort`` in an incident must not hang) does not wait: the traffic
move is done and proven, the drain is recorded beside the ledger (``kube/drains.py``) and the
command exits. The next deploy, rollback or recover carries it out (a deploy or recover waits
for what is left of the delay; a rollback only does what is due), and ``status`` shows it.

Layer: strategies (above run and the adapters, below the commands).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from releasegate.core.errors import NeedsAttention
from releasegate.core.placement import SLOT_LABEL
from releasegate.kube.api import SERVICES, translated_errors
from releasegate.kube.drains import DELETE, Drain, Leave, PendingDrains

if TYPE_CHECKING:
    from releasegate.run import Run

MERGE_PATCH = "application/merge-patch+json"
NEXT_RUN = "the next deploy, rollback or recover"


def pending(run: Run) -> PendingDrains:
    return PendingDrains(run.clients.cluster, run.env.namespace, run.project.app, run.ensure_lock)


def leave(run: Run, seconds: float, what: str, leaves: Sequence[Leave], retired: str = "") -> bool:
    """Carry out ``leaves`` once ``seconds`` have passed since traffic left ``what`` (True), or,
    when the command must end now, leave them to the next run (False). ``retired``: the
    message of a "retire" stage timing the carrying out (none without)."""
    if seconds > 0 and run.must_end_now:
        by = "an interrupted deploy" if run.result.command == "deploy" else run.result.command
        pending(run).add(Drain(what, time.time() + seconds, tuple(leaves), by))
        run.progress.detail(
            "drain", f"{what} keeps its pods {seconds:g} s (scale_down_delay): {NEXT_RUN} takes it "
            "down, `releasegate status` shows it pending",
        )  # fmt: skip
        return False
    _wait(run, seconds, what)
    if not retired:
        carry_out(run, leaves)
        return True
    with run.stages.run("retire") as done:
        carry_out(run, leaves)
        done.append(retired)
    return True


def carry_out_pending(run: Run, wait: bool) -> None:
    """What an earlier run left: due ones now; the others waited for (``wait``) or kept."""
    store = pending(run)
    drains = store.read()
    if not drains:
        return
    kept = []
    for drain in drains:
        left = drain.due - time.time()
        if left > 0 and not wait:
            kept.append(drain)
            continue
        _wait(run, left, f"{drain.what} (left by {drain.by})")
        with run.stages.run("drain") as done:
            carry_out(run, drain.leaves)
            done.append(
                f"{drain.what}, left by {drain.by}: taken down now that traffic has been away long enough"
            )
    store.write(kept)


def status_lines(run: Run) -> list[str]:
    return [
        f"pending drain: {d.what} (left by {d.by}), taken down by {NEXT_RUN} from "
        f"{datetime.fromtimestamp(d.due, UTC).isoformat(timespec='seconds')}"
        for d in pending(run).read()
    ]


def carry_out(run: Run, leaves: Sequence[Leave]) -> None:
    from kubernetes.client.exceptions import ApiException

    namespace = run.env.namespace
    for one in leaves:
        if one.slot and _selected_slot(run) == one.slot:
            continue  # traffic came back to it since: it serves again
        run.ensure_lock()
        with translated_errors(
            f"cannot take down {one.path.rsplit('/', 1)[-1]} in", namespace, NeedsAttention
        ):
            try:
                if one.op == DELETE:
                    run.clients.cluster.call("DELETE", one.path, retry=True)
                else:
                    body = {"spec": {"replicas": 0}}
                    run.clients.cluster.call(
                        "PATCH", one.path, body=body, content_type=MERGE_PATCH, retry=True
                    )
            except ApiException as exc:
                if exc.status != 404:  # gone already
                    raise


def _wait(run: Run, seconds: float, what: str) -> None:
    if seconds <= 0:
        return
    with run.stages.run("drain") as done:
        ends = time.monotonic() + seconds
        while (left := ends - time.monotonic()) > 0:
            run.progress.detail("drain", f"{what} keeps its pods {left:.0f} s more (scale_down_delay)")
            time.sleep(min(left, 10.0))
        done.append(f"{what} kept its pods {seconds:.3g} s after traffic left it")


def _selected_slot(run: Run) -> str | None:
    path = f"{SERVICES.format(namespace=run.env.namespace)}/{run.project.app}"
    service = run.clients.cluster.get_or_none(path) or {}
    return (service.get("spec", {}).get("selector") or {}).get(SLOT_LABEL)
