"""An environment's template values, remembering which of them the templates read.

``StrictUndefined`` catches a value a template needs and the file lacks; this catches the
opposite, a key in the file that no template reads: almost always a typo (``replica:`` for
``replicas:``) that would otherwise be ignored without a word. A mapping a template renders
whole (``values.resources | q``, ``values.env | dictsort``) counts as read with all it holds.

Layer: core (pure logic and data; imports only core).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _collections_abc import dict_items, dict_keys, dict_values


class ReadTracking(dict[str, Any]):
    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__({k: _wrap(v) for k, v in data.items()})
        self.read: set[str] = set()
        self.whole = False

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    # Iterating or serialising the mapping reads all of it.
    def items(self) -> dict_items[str, Any]:
        self.read_whole()
        return super().items()

    def keys(self) -> dict_keys[str, Any]:
        self.read_whole()
        return super().keys()

    def values(self) -> dict_values[str, Any]:
        self.read_whole()
        return super().values()

    def __iter__(self) -> Iterator[str]:
        self.read_whole()
        return super().__iter__()

    def read_whole(self) -> None:
        self.whole = True
        for value in dict.values(self):
            if isinstance(value, ReadTracking):
                value.read_whole()

    def unread(self, prefix: str = "values.") -> list[str]:
        """Each key no template read, with the nearest key one did read at the same level."""
        if self.whole:
            return []
        found = []
        for key, value in dict.items(self):
            if key not in self.read:
                near = difflib.get_close_matches(key, sorted(self.read), n=1, cutoff=0.6)
                guess = f" (did you mean {prefix}{near[0]}?)" if near else ""
                found.append(f"{prefix}{key} is not used by any template{guess}")
            elif isinstance(value, ReadTracking):
                found += value.unread(f"{prefix}{key}.")
        return found


def _wrap(value: Any) -> Any:
    return ReadTracking(value) if isinstance(value, dict) else value
