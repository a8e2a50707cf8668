"""``compare:``: before traffic moves to a release, its answers against the serving one's on the
same requests (blue/green: ``<app>-preview`` against ``<app>``; canary, at 0 %:
``<app>-canary`` against ``<app>-stable``). A comparison that fails raises like a failed smoke
check, so the strategy restores or aborts exactly as it would for one.

Layer: strategies (above run and the adapters, below the commands).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from releasegate.core import comparison
from releasegate.core.errors import NeedsAttention
from releasegate.kube.compare import replay

if TYPE_CHECKING:
    from releasegate.run import Run

ADVICE = (
    "look at the disagreements in the JSON result's compare (or the step summary); if the new "
    "answers are intended, lower min_agreement or raise tolerance in the environment file"
)


class ComparisonFailed(NeedsAttention):
    """The candidate disagrees with the serving model (or is too slow): the release fails."""


def compare_with_serving(run: Run, serving: str, candidate: str, stage: str = "compare") -> None:
    """Nothing without ``compare:``; otherwise raise ComparisonFailed unless the answers agree."""
    compare = run.env.compare
    if compare is None:
        return
    port = run.env.smoke.service_port if run.env.smoke is not None else None
    with run.stages.run(stage) as done:
        run.progress.detail(
            "compare",
            f"{len(compare.requests)} requests from {compare.requests_file}: {serving} (serving) against "
            f"{candidate} (candidate), {compare.method} {compare.path}",
        )
        pairs = replay(
            run.clients.cluster, run.env.namespace, (serving, candidate), port, compare,
            lambda text: run.progress.detail("compare", text),
        )  # fmt: skip
        outcome = comparison.judge(compare, pairs)
        run.result.compare = outcome.as_dict()
        if problem := comparison.problem(compare, outcome):
            run.progress.detail("compare", comparison.summary(outcome))
            raise ComparisonFailed(f"comparison with {serving} failed: {problem}", ADVICE)
        done.append(f"{comparison.summary(outcome)}: {candidate} agrees with {serving}")
