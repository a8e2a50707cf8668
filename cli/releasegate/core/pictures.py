"""What the step summary draws, in Mermaid (GitHub renders ```mermaid blocks): the run's stages
on a time line, and for a canary the weight at each step and each analysis value beside ``max``.

Kept small on purpose: a step summary over GitHub's size limit is dropped whole, so each
picture holds at most ``MAX_POINTS`` items (the last ones: where a run ended is what matters).

Layer: core (pure: the result's stages and analysis in, Markdown out).
"""

from __future__ import annotations

import math
import re
from typing import Any

MAX_POINTS = 40
UNSAFE = re.compile(r"[:;#\"`\n]")  # what would end a gantt task name or an axis label


def stages_timeline(stages: list[dict[str, Any]]) -> str:
    """A gantt chart: each stage from its start to its end, in milliseconds from the run's start."""
    shown = stages[-MAX_POINTS:]
    if not shown:
        return ""
    lines = ["gantt", "  title Stages of the run", "  dateFormat x", "  axisFormat %M:%S", "  section run"]
    for stage in shown:
        start = round(float(stage.get("started", 0.0)) * 1000)
        end = start + max(round(float(stage["seconds"]) * 1000), 1)  # a 0 ms bar is not drawn
        lines.append(f"  {_label(stage['name'])} ({float(stage['seconds']):.1f} s) : {start}, {end}")
    return _block(lines)


def clusters_timeline(stages: list[dict[str, Any]], clusters: list[dict[str, Any]]) -> str:
    """Several clusters: a section per wave, one bar per cluster from its first stage to its last,
    named with its outcome."""
    lines = ["gantt", "  title Clusters, wave by wave", "  dateFormat x", "  axisFormat %M:%S"]
    for wave in sorted({int(c["wave"]) for c in clusters}):
        lines.append(f"  section wave {wave}")
        for cluster in (c for c in clusters if int(c["wave"]) == wave):
            own = [s for s in stages if s.get("cluster") == cluster["name"]]
            if not own:
                continue
            start = min(round(float(s.get("started", 0.0)) * 1000) for s in own)
            end = max(round((float(s.get("started", 0.0)) + float(s["seconds"])) * 1000) for s in own)
            seconds = (end - start) / 1000
            name = _label(f"{cluster['name']} {cluster['outcome']}")
            lines.append(f"  {name} ({seconds:.1f} s) : {start}, {max(end, start + 1)}")
    return _block(lines) if any(" : " in line for line in lines) else ""


def canary_weights(steps: list[int], promoted: bool) -> str:
    """A bar per step: the canary's weight, and 100 once promoted."""
    weights = [*steps, 100] if promoted else list(steps)
    if not weights:
        return ""
    labels = [f'"{n}"' for n in range(1, len(steps) + 1)] + (['"promoted"'] if promoted else [])
    return _block(
        [
            "xychart-beta",
            '  title "Canary weight per step"',
            f'  x-axis "step" [{", ".join(labels[-MAX_POINTS:])}]',
            '  y-axis "weight %" 0 --> 100',
            f"  bar [{', '.join(str(w) for w in weights[-MAX_POINTS:])}]",
        ]
    )


def analysis_values(entries: list[dict[str, Any]], limit: float) -> str:
    """A line of the analysis values (evaluations with a value), and a line at ``max``. A
    ``+Inf`` (the JSON result's string) is drawn at the top of the chart and named in its title."""
    numbered = []  # (step.n, entry): n counts every evaluation of the step, drawn or not
    count: dict[Any, int] = {}
    for entry in entries:
        count[entry["step"]] = count.get(entry["step"], 0) + 1
        numbered.append((f'"{entry["step"]}.{count[entry["step"]]}"', entry))
    drawn = [(label, e["value"]) for label, e in numbered if _drawable(e.get("value"))][-MAX_POINTS:]
    if not drawn:
        return ""
    finite = [float(v) for _, v in drawn if v != INFINITE]
    top = max(limit, *finite) * 1.2 or 1.0
    values = ", ".join(f"{top if v == INFINITE else float(v):.6g}" for _, v in drawn)
    ceiling = ", ".join(f"{limit:.6g}" for _ in drawn)
    beyond = " (+Inf drawn at the top)" if len(finite) < len(drawn) else ""
    return _block(
        [
            "xychart-beta",
            f'  title "Analysis value per evaluation (step.n) and max {limit:g}{beyond}"',
            f"  x-axis [{', '.join(label for label, _ in drawn)}]",
            f'  y-axis "value" 0 --> {top:.6g}',
            f"  line [{values}]",
            f"  line [{ceiling}]",
        ]
    )


INFINITE = "+Inf"  # how the analysis entries carry Prometheus' +Inf


def _drawable(value: Any) -> bool:
    finite = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return finite or value == INFINITE


def _label(text: str) -> str:
    return " ".join(UNSAFE.sub(" ", str(text)).split())[:40] or "stage"


def _block(lines: list[str]) -> str:
    return "```mermaid\n" + "\n".join(lines) + "\n```\n\n"
