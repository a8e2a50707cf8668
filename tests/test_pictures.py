"""The step summary's pictures: a canary run through the real CLI in "GitHub Actions" leaves a
summary whose Mermaid blocks (the stages on a time line, the weight per step, the analysis
values beside max) parse with the real mermaid parser; and they stay small however long the run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from releasegate.core import pictures
from tests.emulators.prometheus import PrometheusEmulator
from tests.emulators.stack import ROOT, Stack
from tests.emulators.webhooks import WebhookReceiver
from tests.test_canary import analysed, canary, deploy, first_release, prometheus  # noqa: F401 (fixture)
from tests.test_notify import notified, receiver  # noqa: F401 (fixture)

CHECKER = ROOT / "tests" / "mermaid_check.mjs"
BLOCK = re.compile(r"```mermaid\n(.*?)```", re.DOTALL)


def parse(texts: list[str]) -> list[dict[str, object]]:
    """Each text through the npm mermaid parser (`make setup` installs it)."""
    node = shutil.which("node")
    assert node is not None and (ROOT / "node_modules" / "mermaid").is_dir(), "run `make setup` (npm ci)"
    done = subprocess.run([node, str(CHECKER)], input=json.dumps(texts), capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=True)  # fmt: skip
    return list(json.loads(done.stdout))


def summary_of(stack: Stack, summary: Path, *args: str) -> str:
    summary.write_text("")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
           "GITHUB_OUTPUT": str(summary) + ".out", "GITHUB_REPOSITORY": "acme/model-api",
           "GITHUB_RUN_ID": "9"}  # fmt: skip
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", args[0], **env)
    assert run.exit_code == 0, run.stderr
    return summary.read_text()


@pytest.mark.e2e
def test_a_canary_runs_summary_draws_its_stages_weights_and_analysis(
    stack: Stack,
    prometheus: PrometheusEmulator,  # noqa: F811 (the fixture)
) -> None:
    canary(
        stack, "gateway", "[{weight: 10, pause: 0.4}, {weight: 50, pause: 0.4}]", analysed(prometheus, 0.2)
    )
    first_release(stack, "gateway")
    prometheus.answers["canary"] = [0.001, 0.004, 0.002]
    stack.publish("v1.1.0")
    text = summary_of(stack, stack.workdir / "summary.md", "v1.1.0")
    blocks = BLOCK.findall(text)
    assert [b.splitlines()[0] for b in blocks] == ["gantt", "xychart-beta", "xychart-beta"], text
    timeline, weights, analysis = blocks
    assert "step 1 (" in timeline and "promote (" in timeline and "validate (" in timeline
    assert "bar [10, 50, 100]" in weights and '"promoted"' in weights
    assert "line [0.001, 0.004" in analysis and "line [0.01, 0.01" in analysis and "and max 0.01" in analysis
    assert [r["ok"] for r in parse(blocks)] == [True, True, True], parse(blocks)
    assert len(text.encode()) < 16_000  # far below GitHub's limit for one step's summary


def test_the_checker_finds_a_broken_picture() -> None:
    broken = pictures.canary_weights([10, 50], promoted=False).split("\n", 1)[1].replace("]", "", 1)
    [result] = parse([broken.removesuffix("```\n")])
    assert result["ok"] is False and "Parse error" in str(result["error"])


def test_pictures_stay_small_however_long_the_run() -> None:
    stages = [{"name": f"step {n}: weight", "seconds": 0.5, "started": n * 0.5} for n in range(500)]
    timeline = pictures.stages_timeline(stages)
    assert timeline.count(" : ") == pictures.MAX_POINTS  # the last ones only
    assert "step 499 weight" in timeline and ":" not in timeline.split("\n")[-3].split(" : ")[0]
    entries = [{"step": n // 10, "value": n / 1000, "max": 0.01} for n in range(300)]
    assert pictures.analysis_values(entries, 0.01).count(",") < 3 * pictures.MAX_POINTS
    assert len(pictures.canary_weights(list(range(1, 101)), promoted=True)) < 1_000
    assert [r["ok"] for r in parse(BLOCK.findall(timeline + pictures.analysis_values(entries, 0.01)))] == [
        True,
        True,
    ]


def test_an_evaluation_keeps_its_number_in_the_step_when_one_before_it_had_no_data() -> None:
    entries = [{"step": 1, "value": 0.001}, {"step": 2, "value": None}, {"step": 2, "value": 0.004}]
    assert 'x-axis ["1.1", "2.2"]' in pictures.analysis_values(entries, 0.01)


def test_no_values_no_picture() -> None:
    assert pictures.stages_timeline([]) == ""
    assert pictures.analysis_values([{"step": 1, "value": None}], 0.01) == ""


def strict_json(text: str) -> object:
    """RFC 8259 JSON, as Node's JSON.parse and Go's encoding/json read it: no Infinity, no NaN."""

    def refuse(token: str) -> object:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.e2e
def test_infinite_analysis_values_fail_and_every_output_stays_json_and_renders(
    stack: Stack,
    prometheus: PrometheusEmulator,  # noqa: F811 (the fixture)
    receiver: WebhookReceiver,  # noqa: F811 (the fixture)
) -> None:
    """Prometheus sends +Inf (a ratio over zero stable errors) and -Inf as strings: +Inf is above
    any max, -Inf is no data; --json, the webhook and the step summary stay valid."""
    canary(stack, "gateway", "[{weight: 10, pause: 2}]", analysed(prometheus, 0.2, failure_limit=1))
    urls = notified(stack, receiver)
    first_release(stack, "gateway")
    prometheus.answers["canary"] = [0.001, float("inf"), float("-inf")]
    summary = stack.workdir / "summary.md"
    summary.write_text("")
    actions = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary),
               "GITHUB_OUTPUT": str(summary) + ".out", "GITHUB_REPOSITORY": "acme/model-api"}  # fmt: skip
    stack.publish("v1.1.0")
    run = stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", "v1.1.0", **urls, **actions)
    assert run.exit_code == 4, run.stderr
    result = strict_json(run.stdout)
    assert isinstance(result, dict)
    entries = result["analysis"]
    assert [(e["value"], e["verdict"]) for e in entries[:3]] == [
        (0.001, "pass"), ("+Inf", "fail"), (None, "no-data")
    ], entries  # fmt: skip
    assert "analysis +Inf is above max 0.01" in run.stderr
    assert [d.status for d in receiver.received] == [200, 204]  # the strict receivers took both
    [body] = receiver.bodies("webhook")
    assert body["analysis"][1]["value"] == "+Inf"
    blocks = BLOCK.findall(summary.read_text())
    analysis = blocks[-1]
    assert "+Inf" in analysis and "inf," not in analysis and "nan" not in analysis.lower(), analysis
    assert all(found.get("ok") for found in parse(blocks)), parse(blocks)
