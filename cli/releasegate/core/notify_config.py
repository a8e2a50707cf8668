"""The ``notify:`` list of ``releasegate.yaml`` (every environment) and of an environment file
(added to it): where the team hears how a deploy, rollback, promote or abort ended.

Layer: core (pure data and its validation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from releasegate.core.config_reader import Reader

# What a notification can be about (``on:``): every one unless the item narrows it.
EVENTS = ("deployed", "failed", "rolled_back", "paused", "aborted")
# The variable holding the URL: the URL itself is a secret and never sits in a file.
KINDS = {"slack_webhook_env": "slack", "webhook_env": "webhook"}
ITEM_KEYS = (*KINDS, "on")
VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class NotifyTarget:
    kind: str  # slack: an incoming-webhook message · webhook: the command's JSON result
    variable: str  # the environment variable holding the URL
    on: tuple[str, ...] = EVENTS

    def wants(self, event: str) -> bool:
        return event in self.on


def read_notify(reader: Reader) -> tuple[NotifyTarget, ...]:
    if "notify" not in reader.data:
        return ()
    items = reader.data["notify"]
    if not isinstance(items, list):
        raise reader.fail("notify", "a list of items, each with slack_webhook_env or webhook_env")
    return tuple(_item(reader, item, n) for n, item in enumerate(items))


def _item(reader: Reader, item: Any, index: int) -> NotifyTarget:
    if isinstance(item, dict) and True in item:
        # YAML 1.1 (PyYAML's) reads an unquoted `on` key as the boolean true.
        item = {("on" if key is True else key): value for key, value in item.items()}
    section = Reader(reader.path, item if isinstance(item, dict) else {}, prefix=f"notify[{index}].")
    if not isinstance(item, dict):
        raise section.fail("", "a mapping with slack_webhook_env or webhook_env")
    section.only(ITEM_KEYS)
    given = [key for key in KINDS if key in item]
    if len(given) != 1:
        raise section.fail("slack_webhook_env", "given, or webhook_env instead (one of the two)")
    variable = section.matching(given[0], VARIABLE, "the name of an environment variable holding the URL")
    on = item.get("on", list(EVENTS))
    if not isinstance(on, list) or not on or any(event not in EVENTS for event in on):
        raise section.fail("on", f"a list of: {', '.join(EVENTS)}")
    return NotifyTarget(kind=KINDS[given[0]], variable=variable, on=tuple(dict.fromkeys(on)))
