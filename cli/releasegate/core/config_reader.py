"""Typed access to the YAML files releasegate reads, with errors that name the file and the key.

Layer: core (pure but for reading the file); used by ``config.py`` and ``strategy_config.py``.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
from typing import Any

import yaml

from releasegate.core.errors import BadInput

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Keys an older releasegate read under another name: old name (with its section) -> new name.
RENAMED: dict[str, str] = {}


def read_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BadInput(f"{path} not found", "run from the project folder or pass --project-dir") from exc
    except yaml.YAMLError as exc:
        raise BadInput(f"{path} is not valid YAML ({exc.__class__.__name__})", "fix the file") from exc
    if not isinstance(data, dict):
        raise BadInput(f"{path} must hold a mapping", "fix the file")
    return data


class Reader:
    """Typed access to one YAML mapping, with errors that name the file and the key."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def only(self, known: tuple[str, ...]) -> None:
        """Refuse a key that is not in ``known``, naming the nearest known one."""
        for key in self.data:
            if key in known:
                continue
            name = f"{self.prefix}{key}"
            if name in RENAMED:
                raise BadInput(
                    f"{self.path}: {name} is now called {RENAMED[name]}",
                    f"rename it in {self.path.name}",
                )
            near = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            guess = f" (did you mean {self.prefix}{near[0]}?)" if near else ""
            raise BadInput(
                f"{self.path}: unknown key {name}{guess}",
                f"fix {self.path.name}; its keys are: {', '.join(self.prefix + k for k in known)}",
            )

    def fail(self, key: str, expected: str) -> BadInput:
        return BadInput(f"{self.path}: {self.prefix}{key} must be {expected}", f"fix {self.path.name}")

    def optional_str(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, "a string")
        return value

    def matching(self, key: str, pattern: re.Pattern[str], expected: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fail(key, expected)
        return value

    def name(self, key: str) -> str:
        return self.matching(key, DNS_LABEL, "a lower-case name (letters, digits, '-')")

    def one_of(self, key: str, choices: tuple[str, ...]) -> str:
        value = self.data.get(key, choices[0])
        if value not in choices:
            raise self.fail(key, " or ".join(choices))
        return str(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value

    def positive(self, key: str, default: Any, zero: bool = False) -> Any:
        """A whole number above 0 (or 0 too, when ``zero``), or ``default`` when absent."""
        value = self.data.get(key, default)
        if value is default:
            return value
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero else 1):
            raise self.fail(key, "a whole number" + ("" if zero else " above 0"))
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
            raise self.fail(key, "a number of seconds")
        return float(value)

    def string_list(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "a list of strings")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if not isinstance(value, dict):
            raise self.fail(key, "a mapping")
        return value

    def optional_mapping(self, key: str) -> dict[str, Any]:
        return self.mapping(key) if key in self.data else {}
