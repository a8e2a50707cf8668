"""Freeze windows (``freeze:`` in releasegate.yaml) through the real CLI: `freeze --at` at the
edges of fixed and recurring windows and across DST changes; a deploy refused before any network
call; `--override-freeze` recorded in the ledger, the JSON result, the GitHub deployment and the
notification; rollback never frozen; `check` and `status` saying so; malformed windows exit 2.
The recurring windows' arithmetic is also checked against a wall-clock oracle (hypothesis)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from releasegate.core.freeze import Window, frozen
from tests.emulators.stack import Stack, ledger_records
from tests.emulators.webhooks import WebhookReceiver
from tests.test_notify import NOTIFY, receiver, slack_texts  # noqa: F401 (receiver: a fixture)

YEAR_END = """freeze:
  - name: year-end
    from: 2026-12-19T18:00:00+01:00
    to: 2027-01-04T08:00:00+01:00
    environments: [nonprod]
  - name: weekends
    cron: "0 18 * * FRI"
    duration: 62h
    time_zone: Europe/Berlin
    environments: [prod]
  - name: sunday-night
    cron: "30 2 * * SUN"
    duration: 1h
    time_zone: Europe/Berlin
    environments: [nonprod]
"""


def frozen_from(stack: Stack, text: str) -> None:
    path = stack.project / "releasegate.yaml"
    path.write_text(path.read_text() + text)


def around_now(name: str = "incident", env: str = "nonprod") -> str:
    """A fixed window holding this moment, ending in an hour."""
    now = datetime.now(UTC).replace(microsecond=0)
    return (
        f"freeze:\n  - name: {name}\n    from: {(now - timedelta(hours=1)).isoformat()}\n"
        f"    to: {(now + timedelta(hours=1)).isoformat()}\n    environments: [{env}]\n"
    )


def freeze_at(stack: Stack, at: str, env: str = "nonprod") -> dict[str, object]:
    run = stack.releasegate("--json", "freeze", "--env", env, "--at", at)
    assert run.exit_code == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("at", "outcome"),
    [
        ("2026-12-19T17:59:59+01:00", "open"),  # a second before the start
        ("2026-12-19T18:00:00+01:00", "frozen"),  # the start is frozen
        ("2027-01-04T07:59:59+01:00", "frozen"),  # a second before the end
        ("2027-01-04T08:00:00+01:00", "open"),  # the end is not
        ("2027-01-04T07:00:00+00:00", "open"),  # the same instant, given in UTC
    ],
)
def test_a_fixed_window_holds_from_its_start_to_just_before_its_end(
    stack: Stack, at: str, outcome: str
) -> None:
    frozen_from(stack, YEAR_END)
    assert freeze_at(stack, at)["outcome"] == outcome


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("at", "outcome", "until"),
    [
        # Autumn: clocks go back on Sunday 2026-10-25; the window still ends Monday 08:00 local.
        ("2026-10-23T17:59:59+02:00", "open", None),
        ("2026-10-23T18:00:00+02:00", "frozen", "2026-10-26T08:00:00+01:00"),
        ("2026-10-26T07:59:59+01:00", "frozen", "2026-10-26T08:00:00+01:00"),
        ("2026-10-26T08:00:00+01:00", "open", None),
        # Spring: clocks go forward on Sunday 2027-03-28; Friday 18:00 is CET, Monday 08:00 CEST.
        ("2027-03-26T18:00:00+01:00", "frozen", "2027-03-29T08:00:00+02:00"),
        ("2027-03-29T07:59:59+02:00", "frozen", "2027-03-29T08:00:00+02:00"),
        ("2027-03-29T08:00:00+02:00", "open", None),
    ],
)
def test_a_weekly_window_keeps_its_wall_clock_hours_across_a_dst_change(
    stack: Stack, at: str, outcome: str, until: str | None
) -> None:
    frozen_from(stack, YEAR_END)
    answer = freeze_at(stack, at, "prod")
    assert answer["outcome"] == outcome
    assert (answer["freeze"] or {}).get("until") == until


@pytest.mark.e2e
def test_a_window_at_a_time_the_clocks_skip_starts_when_they_land(stack: Stack) -> None:
    """`30 2 * * SUN` on 2027-03-28: 02:30 does not exist in Berlin; it starts at 03:00 CEST,
    as Debian's cron runs it, and lasts its hour."""
    frozen_from(stack, YEAR_END)
    assert freeze_at(stack, "2027-03-28T02:59:59+02:00")["outcome"] == "open"
    answer = freeze_at(stack, "2027-03-28T03:00:00+02:00")
    assert answer["outcome"] == "frozen"
    assert answer["freeze"] == {"window": "sunday-night", "until": "2027-03-28T04:00:00+02:00"}


@pytest.mark.e2e
def test_overlapping_windows_make_one_freeze_named_after_the_one_ending_it(stack: Stack) -> None:
    """A Friday evening before prod's year-end freeze: the weekend runs into it."""
    frozen_from(stack, YEAR_END + "  - name: year-end-prod\n    from: 2026-12-19T18:00:00+01:00\n"
                "    to: 2027-01-04T08:00:00+01:00\n    environments: [prod]\n")  # fmt: skip
    answer = freeze_at(stack, "2026-12-18T19:00:00+01:00", "prod")
    assert answer["freeze"] == {"window": "year-end-prod", "until": "2027-01-04T08:00:00+01:00"}
    after = freeze_at(stack, "2027-01-05T12:00:00+01:00")  # nonprod: only its own windows
    assert after["outcome"] == "open"
    assert "next: sunday-night from 2027-01-10T02:30:00+01:00" in str(after["message"])


@pytest.mark.e2e
def test_a_deploy_in_a_window_is_refused_before_any_network_call(stack: Stack) -> None:
    frozen_from(stack, around_now())
    stack.publish("v1.0.0")
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0", "--confirm", "y")
    assert run.exit_code == 3, run.stderr
    assert "nonprod is frozen by incident until" in run.stderr
    assert "--override-freeze" in run.stderr
    assert stack.github.api_requests() == []
    assert ledger_records(stack, "model-api-nonprod") == []
    promote = stack.releasegate("promote", "--env", "nonprod")
    assert promote.exit_code == 3 and "frozen by incident" in promote.stderr
    assert stack.github.api_requests() == []


@pytest.mark.e2e
def test_an_override_is_recorded_everywhere_and_rollback_is_never_frozen(
    stack: Stack,
    receiver: WebhookReceiver,  # noqa: F811
) -> None:
    frozen_from(stack, around_now() + NOTIFY)
    urls = {"SLACK_WEBHOOK_URL": receiver.slack_url(), "DEPLOY_WEBHOOK_URL": receiver.webhook_url()}
    for tag in ("v1.0.0", "v1.1.0"):
        stack.publish(tag)
        run = stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag, "--confirm", "y",
                                "--override-freeze", "hotfix for INC-7", **urls)  # fmt: skip
        assert run.exit_code == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["freeze_override"]["window"] == "incident"
    assert result["freeze_override"]["reason"] == "hotfix for INC-7"
    assert "going ahead, --override-freeze 'hotfix for INC-7'" in run.stderr
    newest = max(ledger_records(stack, "model-api-nonprod"), key=lambda c: int(c["data"]["revision"]))
    assert newest["data"]["freeze_override"] == "freeze incident overridden: hotfix for INC-7"
    description = stack.github.deployments[0]["description"]
    assert description.endswith("; freeze incident overridden: hotfix for INC-7")
    assert "freeze incident overridden: hotfix for INC-7" in slack_texts(receiver)[-1]
    assert receiver.bodies("webhook")[-1]["freeze_override"]["reason"] == "hotfix for INC-7"

    back = stack.releasegate("--json", "rollback", "--env", "nonprod")
    assert back.exit_code == 0, back.stderr
    assert json.loads(back.stdout)["tag"] == "v1.0.0"
    # recover and abort answer as they would outside a window: nothing unfinished, nothing paused
    recover = stack.releasegate("recover", "--env", "nonprod")
    assert recover.exit_code == 0 and "frozen" not in recover.stderr, recover.stderr
    abort = stack.releasegate("abort", "--env", "nonprod")
    assert abort.exit_code == 3 and "frozen" not in abort.stderr and "paused" in abort.stderr, abort.stderr


@pytest.mark.e2e
def test_check_fails_and_status_says_so_in_a_window(stack: Stack) -> None:
    stack.publish("v1.0.0")
    assert stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0", "--confirm", "y").exit_code == 0
    frozen_from(stack, around_now())
    check = stack.releasegate("--json", "check", "--env", "nonprod", "--tag", "v1.0.0")
    assert check.exit_code == 3
    assert "v1.0.0 passes every check, but nonprod is frozen by incident until 20" in check.stderr
    assert json.loads(check.stdout)["outcome"] == "failed"
    assert json.loads(check.stdout)["freeze"]["window"] == "incident"
    status = stack.releasegate("--json", "status", "--env", "nonprod")
    assert status.exit_code == 0, status.stderr
    assert json.loads(status.stdout)["freeze"]["window"] == "incident"
    assert "frozen by incident until" in json.loads(status.stdout)["message"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("window", "said"),
    [
        ('cron: "0 25 * * *"\n    duration: 1h', "freeze[0] (broken).cron must be a valid cron expression"),
        ("from: 2027-01-02T00:00:00+01:00\n    to: 2027-01-01T00:00:00+01:00", "(broken).to must be after"),
        ('cron: "0 18 * * FRI"\n    duration: 1h\n    time_zone: Europe/Bonn', "time_zone must be an IANA"),
        ('cron: "0 18 * * FRI"\n    duration: 2 hours', "(broken).duration must be a length such as 62h"),
        ("from: 2027-01-02T00:00:00\n    to: 2027-01-03T00:00:00+01:00", "from must be a date and time"),
        (
            'cron: "@daily"\n    duration: 1h\n    environments: [staging]',
            "environments must be a list of known",
        ),
        ("from: 2027-01-02T00:00:00+01:00\n    duration: 1h", "(broken).from must be given with to"),
    ],
)
def test_a_malformed_window_is_exit_2_naming_it(stack: Stack, window: str, said: str) -> None:
    frozen_from(stack, f"freeze:\n  - name: broken\n    {window}\n")
    run = stack.releasegate("status", "--env", "nonprod")
    assert run.exit_code == 2
    assert said in run.stderr
    assert stack.github.api_requests() == []


@pytest.mark.e2e
def test_an_override_needs_a_reason(stack: Stack) -> None:
    run = stack.releasegate("deploy", "--env", "nonprod", "--tag", "v1.0.0", "--confirm", "y",
                            "--override-freeze", "  ")  # fmt: skip
    assert run.exit_code == 2
    assert "--override-freeze needs a reason" in run.stderr


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "America/Santiago", "UTC"]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    at=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2029, 1, 1), timezones=st.just(UTC)),
)
def test_a_weekend_window_is_friday_18_to_monday_08_on_the_local_wall_clock(zone: str, at: datetime) -> None:
    """The oracle is the local wall clock alone: whatever the DST rules of the zone and year,
    Friday 18:00 + 62 h is frozen exactly from Friday 18:00 to Monday 08:00 local."""
    local = at.astimezone(ZoneInfo(zone))
    window = Window(name="weekends", environments=(), cron="0 18 * * FRI", duration=timedelta(hours=62),
                    zone=ZoneInfo(zone))  # fmt: skip
    minutes = (local.weekday() - 4) % 7 * 24 * 60 + local.hour * 60 + local.minute - 18 * 60
    expected = 0 <= minutes < 62 * 60 if local.weekday() in (4, 5, 6, 0) else False
    held = frozen((window,), "prod", at)
    assert (held is not None) == expected, local
    if held is not None:
        assert (held.until.weekday(), held.until.hour, held.until.minute) == (0, 8, 0)
        assert held.until > at


def test_the_freeze_module_reads_the_readme_example(tmp_path: Path) -> None:
    """The example product.md and the README give parses as written."""
    import yaml

    from releasegate.core.config_reader import Reader
    from releasegate.core.freeze import read_freeze

    data = yaml.safe_load(YEAR_END)
    windows = read_freeze(Reader(tmp_path / "releasegate.yaml", data), ["nonprod", "prod"])
    assert [w.name for w in windows] == ["year-end", "weekends", "sunday-night"]
    assert windows[1].duration == timedelta(hours=62)
