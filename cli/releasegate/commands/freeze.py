"""`releasegate freeze`: whether an environment is frozen now (or at a given time), until when,
and when its next window opens. Reads releasegate.yaml only: no network call.

Layer: commands.
"""

from __future__ import annotations

from datetime import UTC, datetime

from releasegate.core.config import Environment, Project
from releasegate.core.errors import BadInput
from releasegate.core.freeze import frozen, next_window
from releasegate.run import Result


def freeze(project: Project, env: Environment, at_text: str | None) -> Result:
    at = _instant(at_text) if at_text else datetime.now(UTC)
    result = Result(command="freeze", outcome="open", env=env.name)
    held = frozen(project.freeze, env.name, at)
    when = "now" if at_text is None else f"at {at.isoformat()}"
    if held is not None:
        result.outcome, result.freeze = "frozen", held.as_json()
        result.message = f"{env.name} is {held.describe()} ({when}): deploy and promote are refused"
        return result
    coming = next_window(project.freeze, env.name, at)
    later = f"; next: {coming[0].name} from {coming[1].isoformat()}" if coming else "; no window ahead"
    result.message = f"{env.name} is not frozen {when}{later}"
    return result


def _instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None:
        raise BadInput(
            f"--at must be a date and time with its UTC offset, not {text[:40]!r}",
            "e.g. --at 2026-12-24T10:00:00+01:00",
        )
    return at
