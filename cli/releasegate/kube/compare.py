"""Replay the comparison's requests to the Service serving and to the candidate's, through the
API server's service proxy (the smoke checks' path, with the kube-context's credentials): the
same body to both, in the requests file's order, each answer timed.

Layer: adapter for the Kubernetes API (imports only core and kube/).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from releasegate.core.compare_config import Compare
from releasegate.core.comparison import Answer, answers_agree
from releasegate.core.errors import NeedsAttention
from releasegate.kube.api import Cluster, translated_errors
from releasegate.kube.smoke import Target, service_target

PROGRESS_EVERY = 25  # requests between progress lines on a long file


def replay(
    cluster: Cluster,
    namespace: str,
    services: tuple[str, str],
    port: int | str | None,
    compare: Compare,
    on_progress: Callable[[str], None],
) -> list[tuple[Answer, Answer]]:
    """(serving, candidate) answers, one pair per request; ``services`` is (serving, candidate)."""
    with translated_errors("cannot reach the Services to compare in", namespace, NeedsAttention):
        serving, candidate = (service_target(cluster, namespace, name, port) for name in services)
    pairs: list[tuple[Answer, Answer]] = []
    agreed = 0
    for body in compare.requests:
        pair = (
            _send(cluster, namespace, serving, compare, body),
            _send(cluster, namespace, candidate, compare, body),
        )
        pairs.append(pair)
        agreed += answers_agree(*pair, compare)
        if len(pairs) % PROGRESS_EVERY == 0 and len(pairs) < len(compare.requests):
            on_progress(f"{len(pairs)}/{len(compare.requests)} requests, {agreed} answers agreed so far")
    return pairs


def _send(cluster: Cluster, namespace: str, target: Target, compare: Compare, body: object) -> Answer:
    started = time.perf_counter()
    try:
        status, answer = cluster.raw(compare.method, target.path(namespace, compare.path), body)
    except Exception as exc:  # a broken connection is an answer that agrees with nothing
        return Answer(None, exc.__class__.__name__.encode(), (time.perf_counter() - started) * 1000)
    return Answer(status, answer, (time.perf_counter() - started) * 1000)
