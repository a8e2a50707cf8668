"""Notifications (``notify:``) through the real CLI: a local receiver plays Slack's incoming
webhook and a plain webhook, and gets a success, a failure restored, a pause, an abort; an
unreachable receiver and one answering 500 are warnings, never a failed deploy, and no URL is
ever printed."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.emulators.stack import Run, Stack
from tests.emulators.webhooks import WebhookReceiver
from tests.test_bluegreen import bluegreen
from tests.test_smoke import quick_checks

NOTIFY = """notify:
  - slack_webhook_env: SLACK_WEBHOOK_URL
  - webhook_env: DEPLOY_WEBHOOK_URL
"""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server  # type: ignore[misc]
    server.stop()


def notified(
    stack: Stack, receiver: WebhookReceiver, where: str = "env", text: str = NOTIFY
) -> dict[str, str]:
    """``notify:`` in the environment file (or releasegate.yaml); the URLs the run is given."""
    path = stack.project / ("releasegate.yaml" if where == "project" else "k8s/environments/nonprod.yaml")
    path.write_text(path.read_text() + text)
    return {"SLACK_WEBHOOK_URL": receiver.slack_url(), "DEPLOY_WEBHOOK_URL": receiver.webhook_url()}


def deploy(stack: Stack, tag: str, urls: dict[str, str], *args: str) -> Run:
    stack.publish(tag)
    return stack.releasegate("--json", "deploy", "--env", "nonprod", "--tag", tag, *args, **urls)


def assert_no_url(run: Run, urls: dict[str, str], stack: Stack) -> None:
    for url in urls.values():
        secret = url.rsplit("/", 1)[1]
        assert secret not in run.stdout + run.stderr
        for leftover in stack.files_left_behind():
            assert secret not in leftover.read_text(errors="replace")


def slack_texts(receiver: WebhookReceiver) -> list[str]:
    return [body["text"] for body in receiver.bodies("slack")]


@pytest.mark.e2e
def test_a_deploy_tells_slack_and_the_webhook_with_the_json_result(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    urls = notified(stack, receiver, where="project")
    urls_and_run = {**urls, "GITHUB_SERVER_URL": "https://github.com", "GITHUB_RUN_ID": "77",
                    "GITHUB_REPOSITORY": "acme/model-api"}  # fmt: skip
    run = deploy(stack, "v1.4.2", urls_and_run)
    assert run.exit_code == 0, run.stderr
    [text] = slack_texts(receiver)
    result = json.loads(run.stdout)
    assert text.startswith(result["message"]) and "`nonprod`" in text and "`v1.4.2`" in text, text
    assert "*deployed*" in text and "<https://github.com/acme/model-api/actions/runs/77|the run>" in text
    [sent] = receiver.bodies("webhook")
    assert sent == result  # the very object --json prints
    assert all(d.content_type == "application/json" for d in receiver.received)
    assert "notify | slack notification (SLACK_WEBHOOK_URL): deployed sent" in run.stderr
    assert_no_url(run, urls, stack)


@pytest.mark.e2e
def test_a_failure_restored_is_rolled_back_and_a_filter_is_kept(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    quick_checks(stack)
    urls = notified(
        stack, receiver, text=NOTIFY.replace("URL\n  - webhook", "URL\n    on: [failed]\n  - webhook")
    )
    assert deploy(stack, "v1.0.0", urls).exit_code == 0
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "broken_predict"
    run = deploy(stack, "v1.1.0", urls)
    assert run.exit_code == 4, run.stderr
    assert slack_texts(receiver) == []  # Slack asked only for `failed`: neither event is one
    first, second = receiver.bodies("webhook")
    assert first["outcome"] == "deployed" and second["outcome"] == "failed" and second["exit_code"] == 4
    assert "v1.0.0 was restored" in second["error"]["cause"] and (second["tag"], second["restored"]) == (
        "v1.1.0",
        "v1.0.0",
    )
    assert "notify | webhook notification (DEPLOY_WEBHOOK_URL): rolled_back sent" in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: ")  # the error line stays last
    assert_no_url(run, urls, stack)


@pytest.mark.e2e
def test_a_pause_and_an_abort_are_each_announced_once(stack: Stack, receiver: WebhookReceiver) -> None:
    bluegreen(stack, pause_before_switch="true")
    urls = notified(stack, receiver)
    paused = deploy(stack, "v1.0.0", urls)
    assert json.loads(paused.stdout)["outcome"] == "paused", paused.stderr
    aborted = stack.releasegate("--json", "abort", "--env", "nonprod", **urls)
    assert aborted.exit_code == 4, aborted.stderr
    texts = slack_texts(receiver)
    assert len(texts) == 2 and "*paused*" in texts[0] and "*aborted*" in texts[1], texts
    assert [b["outcome"] for b in receiver.bodies("webhook")] == ["paused", "aborted"]
    status = stack.releasegate("status", "--env", "nonprod", **urls)
    assert status.exit_code == 0 and len(receiver.received) == 4  # status tells nobody


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/services/T1/B1/gone"


@pytest.mark.e2e
def test_an_unreachable_receiver_or_one_answering_500_is_a_warning(
    stack: Stack, receiver: WebhookReceiver
) -> None:
    urls = notified(stack, receiver)
    urls["SLACK_WEBHOOK_URL"] = closed_port()
    receiver.fail_next = [500, 500, 500]
    started = time.monotonic()
    run = deploy(stack, "v1.4.2", urls)
    assert run.exit_code == 0, run.stderr
    assert time.monotonic() - started < 30
    assert "! slack notification (SLACK_WEBHOOK_URL) not delivered: cannot reach the receiver" in run.stderr
    assert (
        "! webhook notification (DEPLOY_WEBHOOK_URL) not delivered: the receiver answered 500 after 3 tries"
        in run.stderr
    )
    assert [d.status for d in receiver.received] == [500, 500, 500]  # three tries, then it gave up
    assert json.loads(run.stdout)["outcome"] == "deployed"
    assert_no_url(run, urls, stack)


@pytest.mark.e2e
def test_a_receiver_that_recovers_gets_it_on_a_later_try(stack: Stack, receiver: WebhookReceiver) -> None:
    urls = notified(stack, receiver, text="notify:\n  - webhook_env: DEPLOY_WEBHOOK_URL\n")
    receiver.fail_next = [503]
    run = deploy(stack, "v1.4.2", urls)
    assert run.exit_code == 0 and "not delivered" not in run.stderr, run.stderr
    assert [d.status for d in receiver.received] == [503, 204]


@pytest.mark.e2e
def test_an_unset_variable_is_named_and_nothing_is_sent(stack: Stack, receiver: WebhookReceiver) -> None:
    notified(stack, receiver)
    run = deploy(stack, "v1.4.2", {})
    assert run.exit_code == 0, run.stderr
    assert "! slack notification (SLACK_WEBHOOK_URL) not sent: SLACK_WEBHOOK_URL is not set" in run.stderr
    assert receiver.received == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("notify: {slack_webhook_env: X}\n", "notify must be a list"),
        ("notify:\n  - {on: [deployed]}\n", "notify[0].slack_webhook_env must be given"),
        (
            "notify:\n  - {slack_webhook_env: X, webhook_env: Y}\n",
            "notify[0].slack_webhook_env must be given",
        ),
        (
            "notify:\n  - {webhook_env: 'https://hooks.example'}\n",
            "notify[0].webhook_env must be the name of",
        ),
        ("notify:\n  - {webhook_env: X, on: [succeeded]}\n", "notify[0].on must be a list of: deployed"),
        ("notify:\n  - {webhook_env: X, when: [failed]}\n", "unknown key notify[0].when"),
    ],
)
def test_a_wrong_notify_item_is_exit_2_before_anything_runs(stack: Stack, text: str, problem: str) -> None:
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + text)
    run = stack.releasegate("check", "--env", "nonprod", "--tag", "v1.0.0")
    assert run.exit_code == 2 and problem in run.last_line, run.stderr


@pytest.mark.e2e
def test_an_interrupted_run_gives_a_hanging_receiver_only_a_few_seconds(stack: Stack) -> None:
    from tests.test_canary import MID_PAUSE, canary
    from tests.test_faults import interrupted_deploy

    canary(stack, "gateway", "[{weight: 50, pause: 60}]")
    path = stack.project / "k8s" / "environments" / "nonprod.yaml"
    path.write_text(path.read_text() + "notify:\n  - webhook_env: DEPLOY_WEBHOOK_URL\n")
    assert (
        stack.releasegate(
            "deploy", "--env", "nonprod", "--tag", stack.publish("v1.0.0") and "v1.0.0"
        ).exit_code
        == 0
    )
    with socket.socket() as hanging:  # takes the connection, never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}/hooks/deploys"
        stack.publish("v1.1.0")
        started = time.monotonic()
        run = interrupted_deploy(stack, "v1.1.0", lambda line: MID_PAUSE in line, DEPLOY_WEBHOOK_URL=url)
        took = time.monotonic() - started
    assert run.exit_code == 130, run.stderr
    assert (
        "! webhook notification (DEPLOY_WEBHOOK_URL) not delivered: cannot reach the receiver" in run.stderr
    )
    # About 2 s of canary and restore, then at most 3 s of notifying (with the 10 s a finished run
    # gets it took 11.7 s)
    assert took < 9, took


@pytest.mark.e2e
@pytest.mark.parametrize("status", [307, 308, 301, 302, 303])
def test_a_receiver_that_redirects_gets_the_post_only_where_the_redirect_keeps_it(
    stack: Stack, receiver: WebhookReceiver, status: int
) -> None:
    """307/308 keep the method and body; after 301/302/303 an HTTP client sends a bodiless GET
    (CPython's urllib does), so those are not delivered, and the warning says so."""
    urls = notified(stack, receiver, text="notify:\n  - webhook_env: DEPLOY_WEBHOOK_URL\n")
    old_path = urls["DEPLOY_WEBHOOK_URL"].removeprefix(receiver.url)
    receiver.moved[old_path] = (status, "/hooks/deploys/moved-here")
    run = deploy(stack, "v1.4.2", urls)
    assert run.exit_code == 0, run.stderr
    if status in (307, 308):
        assert [(d.path, d.status) for d in receiver.received] == [
            (old_path, status), ("/hooks/deploys/moved-here", 204)
        ]  # fmt: skip
        assert receiver.received[1].body == json.loads(run.stdout) and "not delivered" not in run.stderr
    else:
        assert [(d.method, d.path) for d in receiver.received] == [("POST", old_path)]  # no GET follows
        assert (
            f"! webhook notification (DEPLOY_WEBHOOK_URL) not delivered: the receiver answered {status} "
            "(a redirect that would turn the POST into a bodiless GET)" in run.stderr
        ), run.stderr
    assert_no_url(run, urls, stack)


@pytest.mark.e2e
def test_retry_after_is_honoured_within_the_budget(stack: Stack, receiver: WebhookReceiver) -> None:
    urls = notified(stack, receiver, text="notify:\n  - webhook_env: DEPLOY_WEBHOOK_URL\n")
    receiver.fail_next = [(429, "2")]
    run = deploy(stack, "v1.4.2", urls)
    assert run.exit_code == 0 and "not delivered" not in run.stderr, run.stderr
    first, second = receiver.received
    assert (first.status, second.status) == (429, 204) and second.at - first.at >= 2.0


@pytest.mark.e2e
def test_retry_after_beyond_the_budget_is_not_waited_for(stack: Stack, receiver: WebhookReceiver) -> None:
    urls = notified(stack, receiver, text="notify:\n  - webhook_env: DEPLOY_WEBHOOK_URL\n")
    receiver.fail_next = [(503, "120")]
    started = time.monotonic()
    run = deploy(stack, "v1.4.2", urls)
    assert run.exit_code == 0, run.stderr
    assert time.monotonic() - started < 20
    assert (
        "! webhook notification (DEPLOY_WEBHOOK_URL) not delivered: the receiver answered 503 and asked "
        "to be tried again in 120 s, beyond the 10 s a notification may take" in run.stderr
    ), run.stderr
    assert [d.status for d in receiver.received] == [503]


@pytest.mark.e2e
def test_slack_control_characters_in_a_failure_show_as_text(stack: Stack, receiver: WebhookReceiver) -> None:
    """A check quoting an HTML error page: `<` `>` `&` are Slack's markup (links, mentions), escaped."""
    quick_checks(stack)
    urls = notified(stack, receiver)
    assert deploy(stack, "v1.0.0", urls).exit_code == 0
    stack.kube.proxy.apps.behaviours["v1.1.0"] = "garbage"  # 200 with <html>502 Bad Gateway</html>
    run = deploy(stack, "v1.1.0", urls)
    assert run.exit_code == 4, run.stderr
    text = slack_texts(receiver)[-1]
    assert "&lt;html&gt;502 Bad Gateway&lt;/html&gt;" in text, text
    assert "<html>" not in text and "<!" not in text


@pytest.mark.e2e
def test_recover_tells_the_team_what_it_put_back(stack: Stack, receiver: WebhookReceiver) -> None:
    """A cancelled run's `recover` step restores the last good release: that is a rolled_back
    to announce; a recover with nothing to do tells nobody."""
    from tests.test_faults import SAME_RUN, killed_deploy

    urls = notified(stack, receiver)
    assert deploy(stack, "v1.0.0", urls).exit_code == 0
    stack.kube.controller.scenarios["v1.1.0"] = "slow"
    stack.kube.controller.slow_seconds = 30
    stack.publish("v1.1.0")
    killed_deploy(stack, "v1.1.0")
    before = len(receiver.received)
    run = stack.releasegate("--json", "recover", "--env", "nonprod", **SAME_RUN, **urls)
    assert run.exit_code == 0, run.stderr
    text = slack_texts(receiver)[-1]
    assert "*rolled_back*" in text and "v1.0.0 was restored and verified" in text, text
    assert "tag `v1.1.0`" in text  # the release that did not finish
    body = receiver.bodies("webhook")[-1]
    assert body == json.loads(run.stdout) and body["outcome"] == "recovered"
    assert len(receiver.received) == before + 2
    again = stack.releasegate("recover", "--env", "nonprod", **SAME_RUN, **urls)
    assert again.exit_code == 0 and len(receiver.received) == before + 2  # nothing to recover: silent
    assert_no_url(run, urls, stack)
