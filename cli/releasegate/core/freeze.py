"""Freeze windows: the ``freeze:`` list of ``releasegate.yaml``, and whether an instant is in one.

A window is fixed (``from``/``to``, each with its UTC offset) or recurring (a cron expression
in an IANA time zone, lasting ``duration`` from each match). Recurring windows are computed in
their own time zone's wall clock, with ``cronsim`` (matches the way Debian's cron does across
DST changes: a time skipped in spring runs at the first instant after the gap, a time repeated
in autumn runs once) and ``zoneinfo``: ``0 18 * * FRI`` with ``62h`` is Friday 18:00 to Monday
08:00 local, on the weekends the clocks change too (Python adds a ``timedelta`` to an aware
datetime on its wall clock, then finds the offset there).

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from releasegate.core.config_reader import Reader
from releasegate.core.errors import BadInput, Refused

WINDOW_KEYS = ("name", "from", "to", "cron", "duration", "time_zone", "environments")
DURATION = re.compile(r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?")
# A freeze made of windows that keep overlapping is followed this far to find where it ends;
# past it the end is given as "at least until".
CHAIN_LIMIT = 1000


@dataclass(frozen=True)
class Window:
    name: str
    environments: tuple[str, ...]  # empty: every environment
    starts: datetime | None = None  # fixed window: aware
    ends: datetime | None = None
    cron: str = ""  # recurring window: each match starts one
    duration: timedelta = timedelta(0)
    zone: tzinfo = UTC

    def applies_to(self, env: str) -> bool:
        return not self.environments or env in self.environments

    def occurrences(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Every (start, end) of this window that ends after ``after``, in start order, in UTC
        (two datetimes of one ZoneInfo compare by wall clock, wrongly across a DST change)."""
        if self.starts is not None and self.ends is not None:
            if self.ends > after:
                yield self.starts.astimezone(UTC), self.ends.astimezone(UTC)
            return
        # A window started before `after` may still be open: begin a duration (and a day for a
        # DST change) earlier. cronsim yields each match after the given instant, in `zone`.
        first = after.astimezone(self.zone) - self.duration - timedelta(days=1)
        for start in CronSim(self.cron, first):
            end = _latest(start + self.duration)
            if end > after:
                yield start.astimezone(UTC), end


@dataclass(frozen=True)
class Frozen:
    """The freeze an instant is in: the window holding it, and when the freeze ends."""

    window: Window
    until: datetime  # aware, in the window's own terms (its offset or time zone)
    at_least: bool = False  # windows kept overlapping past CHAIN_LIMIT: it lasts longer

    def as_json(self) -> dict[str, str]:
        return {"window": self.window.name, "until": self.until.isoformat()}

    def describe(self) -> str:
        until = self.until.strftime("%Y-%m-%d %H:%M %Z").strip()
        if isinstance(self.window.zone, ZoneInfo):
            until = f"{until} ({self.window.zone.key})"
        return f"frozen by {self.window.name} until {'at least ' if self.at_least else ''}{until}"


@dataclass(frozen=True)
class Override:
    """A deploy or promotion let through a freeze by ``--override-freeze "REASON"``."""

    window: str
    until: str  # ISO 8601, in the window's terms
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"window": self.window, "until": self.until, "reason": self.reason}

    def text(self) -> str:
        return f"freeze {self.window} overridden: {self.reason}"


# GitHub keeps 140 characters of a deployment status; the reason leaves room for the rest.
REASON_MAX = 100


def gate(windows: tuple[Window, ...], env: str, at: datetime, reason: str | None) -> Override | None:
    """Refuse a deploy or promotion of ``env`` during a freeze, unless overridden with a reason.
    Asks nothing of the network: the first thing a deploy does."""
    if reason is not None and (not reason.strip() or len(reason) > REASON_MAX or not reason.isprintable()):
        raise BadInput(
            f"--override-freeze needs a reason of 1 to {REASON_MAX} printable characters",
            'say why, e.g. --override-freeze "hotfix for INC-123"',
        )
    held = frozen(windows, env, at)
    if held is None:
        return None
    if reason is None:
        raise Refused(
            f"{env} is {held.describe()}",
            'deploy after it ends, or pass --override-freeze "REASON" (recorded in the ledger, the GitHub '
            "deployment and the notification); rollback, abort and recover are never frozen",
        )
    return Override(window=held.window.name, until=held.until.isoformat(), reason=reason.strip())


def frozen(windows: tuple[Window, ...], env: str, at: datetime) -> Frozen | None:
    """The freeze ``env`` is in at ``at`` (aware), or None. A window's start is frozen, its end
    is not; windows that overlap or touch make one freeze, which ends when the last of them does
    (and is named after that one: "frozen by year-end" on a weekend inside it)."""
    at = at.astimezone(UTC)
    if not any(w.applies_to(env) and _open_at(w, at) for w in windows):
        return None
    until, window, at_least = _chain_end(windows, env, at)
    return Frozen(window=window, until=until.astimezone(_zone_of(window)), at_least=at_least)


def next_window(windows: tuple[Window, ...], env: str, at: datetime) -> tuple[Window, datetime] | None:
    """The window of ``env`` opening first after ``at``, and when (in its own terms)."""
    at = at.astimezone(UTC)
    coming = [(start, w) for w in windows if w.applies_to(env) if (start := _start_after(w, at))]
    if not coming:
        return None
    start, window = min(coming, key=lambda pair: pair[0])
    return window, start.astimezone(_zone_of(window))


def _start_after(window: Window, at: datetime) -> datetime | None:
    return next((start for start, _end in window.occurrences(at) if start > at), None)


def _open_at(window: Window, at: datetime) -> bool:
    for start, _end in window.occurrences(at):
        return start <= at
    return False


def _chain_end(windows: tuple[Window, ...], env: str, at: datetime) -> tuple[datetime, Window, bool]:
    """Where the freeze holding ``at`` ends, and the window ending it: follow every window
    opening before the freeze ends."""
    end, last = at, windows[0]
    for _ in range(CHAIN_LIMIT):
        later = [(e, w) for w in windows if w.applies_to(env) for s, e in _first_open(w, end) if s <= end < e]
        if not later:
            return end, last, False
        end, last = max(later, key=lambda pair: pair[0])
    return end, last, True


def _first_open(window: Window, at: datetime) -> list[tuple[datetime, datetime]]:
    """The occurrence of ``window`` holding ``at`` with the latest end (occurrences may overlap)."""
    found = []
    for start, end in window.occurrences(at):
        if start > at:
            break
        found.append((start, end))
    return sorted(found, key=lambda pair: pair[1])[-1:]


def _latest(wall: datetime) -> datetime:
    """A wall-clock end the clocks repeat (autumn) or skip (spring) ends at the later instant:
    a freeze errs on the frozen side."""
    return max(wall.replace(fold=0).astimezone(UTC), wall.replace(fold=1).astimezone(UTC))


def _zone_of(window: Window) -> tzinfo:
    return window.ends.tzinfo if window.ends is not None and window.ends.tzinfo else window.zone


def read_freeze(reader: Reader, environments: list[str] | None = None) -> tuple[Window, ...]:
    """``freeze:`` of releasegate.yaml; a malformed window is exit 2 naming it."""
    items = reader.data.get("freeze", [])
    if not isinstance(items, list):
        raise reader.fail("freeze", "a list of windows, each with a name")
    windows = tuple(_window(reader, item, n, environments) for n, item in enumerate(items))
    names = [w.name for w in windows]
    if len(set(names)) != len(names):
        raise reader.fail("freeze", f"a list of windows with different names (given: {', '.join(names)})")
    return windows


def _window(reader: Reader, item: Any, index: int, environments: list[str] | None) -> Window:
    section = Reader(reader.path, item if isinstance(item, dict) else {}, prefix=f"freeze[{index}].")
    if not isinstance(item, dict):
        raise section.fail("", "a mapping with name, and from/to or cron/duration")
    name = item.get("name")
    if isinstance(name, str) and name.strip():
        section.prefix = f"freeze[{index}] ({name})."
    section.only(WINDOW_KEYS)
    if not isinstance(name, str) or not name.strip():
        raise section.fail("name", "a name for the window")
    targets = tuple(section.string_list("environments"))
    unknown = [e for e in targets if environments is not None and e not in environments]
    if unknown:
        raise section.fail("environments", f"a list of known environments, not {', '.join(unknown)}")
    fixed, recurring = "from" in item or "to" in item, "cron" in item or "duration" in item
    if fixed == recurring:
        raise section.fail("from", "given with to (a fixed window), or cron with duration instead")
    if fixed:
        starts, ends = _instant(section, "from"), _instant(section, "to")
        if ends <= starts:
            raise section.fail("to", f"after from ({starts.isoformat()})")
        return Window(name=name, environments=targets, starts=starts, ends=ends, zone=ends.tzinfo or UTC)
    return Window(
        name=name,
        environments=targets,
        cron=_cron(section),
        duration=_duration(section),
        zone=_zone(section),
    )


def _instant(section: Reader, key: str) -> datetime:
    value = section.data.get(key)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise section.fail(key, "a date and time with its UTC offset, such as 2026-12-19T18:00:00+01:00")
    return value


def _cron(section: Reader) -> str:
    expression = section.data.get("cron")
    if not isinstance(expression, str):
        raise section.fail("cron", 'a cron expression such as "0 18 * * FRI"')
    try:
        next(iter(CronSim(expression, datetime(2000, 1, 1, tzinfo=UTC))))
    except (CronSimError, StopIteration) as exc:
        raise section.fail("cron", f'a valid cron expression such as "0 18 * * FRI" ({exc})') from exc
    return expression


def _duration(section: Reader) -> timedelta:
    text = section.data.get("duration")
    match = DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise section.fail("duration", "a length such as 62h, 90m, 2d or 1d12h")
    parts = {key: int(value or 0) for key, value in match.groupdict().items()}
    duration = timedelta(days=parts["d"], hours=parts["h"], minutes=parts["m"])
    if not duration:
        raise section.fail("duration", "longer than 0")
    return duration


def _zone(section: Reader) -> tzinfo:
    name = section.data.get("time_zone", "UTC")
    try:
        return ZoneInfo(name) if isinstance(name, str) and name else _bad_zone(section)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        expected = f"an IANA time zone name such as Europe/Berlin, not {name!r}"
        raise section.fail("time_zone", expected) from exc


def _bad_zone(section: Reader) -> tzinfo:
    raise section.fail("time_zone", "an IANA time zone name such as Europe/Berlin")
