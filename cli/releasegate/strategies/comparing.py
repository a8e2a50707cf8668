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
from releasegate.kube.smoke import unreachable

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
        if (nothing := outcome.nothing_compared) is not None:
            cause, hint = _nothing_compared(nothing, serving, candidate, compare.path)
            # Not the release's fault: after the restore, the next step is this one, not "fix it".
            raise ComparisonFailed(
                f"comparison with {serving} failed: nothing was compared: {cause}", hint, after_restore=hint
            )
        if problem := comparison.problem(compare, outcome):
            run.progress.detail("compare", comparison.summary(outcome))
            raise ComparisonFailed(f"comparison with {serving} failed: {problem}", ADVICE)
        done.append(f"{comparison.summary(outcome)}: {candidate} agrees with {serving}")


def _nothing_compared(
    nothing: comparison.NothingCompared, serving: str, candidate: str, path: str
) -> tuple[str, str]:
    """(cause, hint) for a comparison in which no request got a 2xx from both models."""
    service = {"serving": serving, "candidate": candidate}.get(nothing.side, f"{serving} and {candidate}")
    if nothing.cause == comparison.UNREACHABLE:
        cause, hint = unreachable(f"service {service}", nothing.detail)
        return cause, hint.replace("remove the smoke checks", "remove compare")
    if nothing.cause == comparison.NO_ENDPOINTS:
        return (
            f"the API server answered for {service}: {nothing.detail} (no Ready pod behind it)",
            f"look at the pods {service} selects (`kubectl get endpointslices -l "
            f"kubernetes.io/service-name={service}`), then deploy again",
        )
    if nothing.cause == comparison.API_SERVER:
        return (
            f"the API server answered for {service} itself ({nothing.detail}), not the model",
            "look at the API server's message, then deploy again",
        )
    return (
        f"no request was answered by both models with a 2xx ({nothing.detail})",
        f"check compare.path ({path}) and compare.method in the environment file (a 404 is a wrong "
        "path, a 401 or 403 an app that wants credentials), then deploy again",
    )
