"""GitHub Actions: which deploy an event asks for, and reporting like a native step.

``decide`` is pure: given the event name, its payload (the JSON file at GITHUB_EVENT_PATH)
and the branch, it says which environment, tag and confirmation the run means, using the
environment files' ``branches`` and ``deploy_on_release``. ``ActionsReport`` writes the step
summary, the step outputs and the workflow commands (``::error::``, ``::add-mask::``).

Layer: adapter for GitHub (imports only core and github/).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from releasegate.core.config import Environment
from releasegate.core.errors import BadInput


@dataclass(frozen=True)
class Decision:
    env: str
    tag: str
    confirm: str
    reason: str


def in_actions() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def decide_from_environment(environments: list[Environment]) -> Decision:
    """The decision for the current Actions run, from GITHUB_EVENT_NAME/PATH and GITHUB_REF_NAME."""
    name = os.environ.get("GITHUB_EVENT_NAME", "")
    path = os.environ.get("GITHUB_EVENT_PATH", "")
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read the event payload {path}", "run inside GitHub Actions") from exc
    return decide(name, payload, os.environ.get("GITHUB_REF_NAME", ""), environments)


def decide(event: str, payload: dict[str, Any], branch: str, environments: list[Environment]) -> Decision:
    if event == "workflow_dispatch":
        inputs = payload.get("inputs") or {}
        env = _single([e for e in environments if branch in e.branches], f"branch {branch!r}", "branches")
        return Decision(env.name, str(inputs.get("tag", "")), str(inputs.get("confirm", "n")),
                        f"workflow_dispatch on {branch}")  # fmt: skip
    if event == "release":
        if payload.get("action") != "published":
            raise BadInput(
                f"release event with action {payload.get('action')!r}", "deploy on `published` only"
            )
        release = payload.get("release") or {}
        env = _single(
            [e for e in environments if e.deploy_on_release], "a published release", "deploy_on_release"
        )
        return Decision(env.name, str(release.get("tag_name", "")), "y", "release published")
    if event == "repository_dispatch":
        return _dispatched(payload, environments)
    raise BadInput(
        f"the {event or 'unknown'} event does not say what to deploy",
        "trigger with workflow_dispatch, release: published or repository_dispatch (event_type deploy), "
        "or pass --env and --tag",
    )


# What a repository_dispatch's client_payload may hold (a model registry's webhook sends it).
DISPATCH_KEYS = ("tag", "environment")
DISPATCH_HINT = (
    'send POST /repos/OWNER/REPO/dispatches {"event_type": "deploy", '
    '"client_payload": {"tag": "v1.4.2", "environment": "ENV"}}'
)


def _dispatched(payload: dict[str, Any], environments: list[Environment]) -> Decision:
    """``POST /repos/{owner}/{repo}/dispatches`` with event_type ``deploy``: GitHub puts the
    event_type in ``action``. Every field is checked here, so nothing malformed reaches a shell
    or the step outputs; the tag itself is checked like any other (strict semver)."""
    if payload.get("action") != "deploy":
        raise BadInput(
            f"repository_dispatch with event_type {str(payload.get('action'))[:40]!r}", DISPATCH_HINT
        )
    client = payload.get("client_payload")
    if not isinstance(client, dict) or set(client) != set(DISPATCH_KEYS):
        keys = sorted(map(str, client))[:5] if isinstance(client, dict) else type(client).__name__
        said = f"repository_dispatch client_payload must hold exactly tag and environment, not {keys}"
        raise BadInput(said, DISPATCH_HINT)
    tag, name = client["tag"], client["environment"]
    known = {e.name: e for e in environments}
    if not isinstance(name, str) or name not in known:
        shown = repr(name[:40]) if isinstance(name, str) else type(name).__name__
        raise BadInput(
            f"repository_dispatch environment {shown} is not one of {', '.join(known)}", DISPATCH_HINT
        )
    if not isinstance(tag, str) or not tag.isprintable() or len(tag) > 128:
        raise BadInput("repository_dispatch tag must be a release tag such as v1.4.2", DISPATCH_HINT)
    return Decision(name, tag, "y", "repository_dispatch deploy")


def _single(found: list[Environment], what: str, key: str) -> Environment:
    if len(found) == 1:
        return found[0]
    if not found:
        raise BadInput(f"{what} maps to no environment", f"add it to `{key}` in k8s/environments/<env>.yaml")
    names = ", ".join(e.name for e in found)
    raise BadInput(f"{what} maps to more than one environment ({names})", f"keep `{key}` unique")


class ActionsReport:
    """Step summary, outputs and workflow commands; a no-op outside GitHub Actions."""

    def __init__(self) -> None:
        self.enabled = in_actions()

    # Workflow commands go to stderr (the runner reads both streams): stdout carries only the
    # result, so that `--json` prints exactly one object in Actions too.
    def mask(self, value: str) -> None:
        # The runner already masks the secrets a workflow passes in (GITHUB_TOKEN among them).
        if self.enabled and value and value != os.environ.get("GITHUB_TOKEN"):
            print(f"::add-mask::{value}", file=sys.stderr, flush=True)

    def error(self, message: str) -> None:
        if self.enabled:
            print(f"::error title=releasegate::{_escape(message)}", file=sys.stderr, flush=True)

    def outputs(self, values: dict[str, str]) -> None:
        path = os.environ.get("GITHUB_OUTPUT")
        if self.enabled and path:
            with open(path, "a", encoding="utf-8") as handle:
                for key, value in values.items():
                    # One line per output: a CR or LF in a value could forge another output.
                    handle.write(f"{key}={value.replace(chr(13), ' ').replace(chr(10), ' ')}\n")

    def summary(self, markdown: str) -> None:
        path = os.environ.get("GITHUB_STEP_SUMMARY")
        if self.enabled and path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(markdown)


def run_url() -> str:
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com")
    repository, run = os.environ.get("GITHUB_REPOSITORY", ""), os.environ.get("GITHUB_RUN_ID", "")
    return f"{server}/{repository}/actions/runs/{run}" if repository and run else ""


def _escape(text: str) -> str:
    # Workflow command data escaping, as the runner expects it.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
