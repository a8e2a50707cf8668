"""Field ownership and server-side apply, as the API server's field manager keeps them
(k8s.io/apiserver's fieldmanager over sigs.k8s.io/structured-merge-diff), for the kinds served.

Every write records who owns what in ``metadata.managedFields``: one entry per manager and
operation (``Apply`` for server-side apply, ``Update`` for every other write), each with its
``fieldsV1`` set (``f:<field>`` for a map key, ``k:{<keys>}`` for an item of a list keyed by
some of its fields, ``.`` for the item itself). The manager is the ``fieldManager`` query
parameter, else the User-Agent up to its first ``/`` (the client's name), as the API server does.

- An **update** (create, replace, patch) gives its manager every field whose value it set or
  changed, and takes those away from the other managers.
- An **apply** (``application/apply-patch+yaml``) makes its manager's Apply set exactly the
  fields of the configuration sent. A field it sets to another value than a different manager
  owns is a conflict (409, naming the managers) unless ``force=true``, which takes it over. A
  field it applied before and no longer sends is removed from the object, unless another
  manager still owns it. The configuration is merged into the object: maps key by key, lists
  with keys (``containers`` by ``name``, ``ports`` by port and protocol, ``env`` by ``name``…)
  item by item, every other list whole.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

Path = tuple[str, ...]
# Lists whose items are merged by these keys (x-kubernetes-list-map-keys in the OpenAPI schema);
# every other list is atomic. Service ports and container ports share the name "ports".
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",), "initContainers": ("name",), "ephemeralContainers": ("name",),
    "env": ("name",), "volumes": ("name",), "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",), "conditions": ("type",), "ownerReferences": ("uid",),
}  # fmt: skip
CONTAINER_PORT_KEYS = ("containerPort", "protocol")
SERVICE_PORT_KEYS = ("port", "protocol")
IDENTITY = {"apiVersion", "kind"}
METADATA_UNMANAGED = {"name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
                      "managedFields", "deletionTimestamp", "selfLink"}  # fmt: skip


class Conflict(Exception):
    def __init__(self, conflicts: list[tuple[str, Path]]) -> None:
        super().__init__("conflicts")
        self.conflicts = conflicts

    def message(self) -> str:
        """As the API server words it: ``Apply failed with 1 conflict: conflict with "m": .spec.x``."""
        shown = "; ".join(f'conflict with "{manager}": {_dotted(path)}' for manager, path in self.conflicts)
        count = len(self.conflicts)
        return f"Apply failed with {count} conflict{'s' if count > 1 else ''}: {shown}"


def manager_of(query: dict[str, str], user_agent: str) -> str:
    return query.get("fieldManager") or (user_agent.split("/", 1)[0] or "unknown")


def fields(obj: dict[str, Any]) -> set[Path]:
    """Every leaf path of ``obj`` that ownership is kept for (identity and status excluded)."""
    found: set[Path] = set()
    for key, value in obj.items():
        if key in IDENTITY or key == "status":
            continue
        if key == "metadata":
            for meta_key, meta_value in (value or {}).items():
                if meta_key not in METADATA_UNMANAGED:
                    _collect(("f:metadata", f"f:{meta_key}"), meta_key, meta_value, found, "metadata")
            continue
        _collect((f"f:{key}",), key, value, found, "")
    return found


def as_fields_v1(paths: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: Path = ()) -> set[Path]:
    found: set[Path] = set()
    for key, children in tree.items():
        path = (*prefix, key)
        if children:
            found |= from_fields_v1(children, path)
        else:
            found.add(path)
    return found


def update(before: dict[str, Any] | None, after: dict[str, Any], manager: str, api: str) -> None:
    """Record an update by ``manager`` that turned ``before`` into ``after`` (in place). The
    manager that creates a string map (labels, annotations, a ConfigMap's data) owns the map
    itself too (``.``), as the API server records it."""
    entries = _entries(before)
    old, new = fields(before or {}), fields(after)
    changed = {p for p in new if p not in old or _value(after, p) != _value(before or {}, p)}
    old_nodes, new_nodes = _map_nodes(before or {}), _map_nodes(after)
    changed |= new_nodes - old_nodes
    for entry in entries.values():
        entry["set"] = {p for p in entry["set"] if p in new or p in new_nodes} - changed
    key = (manager, "Update")
    entries.setdefault(key, {"set": set(), "api": api})
    entries[key]["set"] |= changed
    _store(after, entries)


def apply(
    live: dict[str, Any] | None, config: dict[str, Any], manager: str, force: bool, api: str
) -> dict[str, Any]:
    """The object after ``manager`` applied ``config`` (Conflict unless ``force``)."""
    entries = _entries(live)
    merged = copy.deepcopy(live) if live is not None else {"metadata": {}}
    applied = fields(config)
    others = {key: e for key, e in entries.items() if key != (manager, "Apply")}
    conflicts = [
        (name, path)
        for (name, _), entry in others.items()
        for path in applied & entry["set"]
        if live is not None and _value(live, path) != _value(config, path)
    ]
    if conflicts and not force:
        raise Conflict(sorted(conflicts))
    for _, path in conflicts:
        for entry in others.values():
            entry["set"].discard(path)
    mine = entries.get((manager, "Apply"), {"set": set()})["set"]
    still_owned = set().union(*(e["set"] for e in others.values())) if others else set()
    # Whole list items and maps first (what is in them goes with them), then single fields. A
    # map owned as a whole (``.``) goes with every key in it, owned by nobody or not, unless a
    # key of it is still applied or owned by another manager.
    for path in sorted(mine - applied - still_owned, key=lambda p: (p[-1] != ".", len(p))):
        if _is_map_node(path) and _holds_any(path[:-1], (applied | still_owned) - {path}):
            continue
        _remove(merged, path)
    _merge(merged, config, "")
    entries[(manager, "Apply")] = {"set": applied, "api": api}
    _store(merged, entries)
    return merged


# -- paths --------------------------------------------------------------------------------------


def _collect(path: Path, name: str, value: Any, found: set[Path], parent: str) -> None:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            _collect((*path, f"f:{key}"), key, child, found, name)
        return
    keys = _list_keys(name, parent)
    if isinstance(value, list) and keys:
        for item in value:
            if not isinstance(item, dict):
                continue
            at = (*path, _item_key(item, keys))
            found.add((*at, "."))
            for key, child in item.items():
                _collect((*at, f"f:{key}"), key, child, found, name)
        return
    found.add(path)


def _list_keys(name: str, parent: str) -> tuple[str, ...]:
    if name == "ports":
        return SERVICE_PORT_KEYS if parent == "spec" else CONTAINER_PORT_KEYS
    return LIST_KEYS.get(name, ())


def _item_key(item: dict[str, Any], keys: tuple[str, ...]) -> str:
    values = {k: item.get(k, "TCP" if k == "protocol" else None) for k in keys}
    return "k:" + json.dumps(
        {k: v for k, v in values.items() if v is not None}, separators=(",", ":"), sort_keys=True
    )


def _value(obj: dict[str, Any], path: Path) -> Any:
    node: Any = obj
    for part in path:
        if part == ".":
            return True if node is not None else None
        node = _step(node, part)
        if node is None:
            return None
    return node


def _step(node: Any, part: str) -> Any:
    if part.startswith("f:"):
        return node.get(part[2:]) if isinstance(node, dict) else None
    if part.startswith("k:") and isinstance(node, list):
        wanted = json.loads(part[2:])
        return next((i for i in node if isinstance(i, dict) and _matches(i, wanted)), None)
    return None


def _matches(item: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(item.get(k, "TCP" if k == "protocol" else None) == v for k, v in wanted.items())


STRING_MAPS: tuple[Path, ...] = (("f:metadata", "f:labels"), ("f:metadata", "f:annotations"), ("f:data",))


def _map_nodes(obj: dict[str, Any]) -> set[Path]:
    return {(*path, ".") for path in STRING_MAPS if isinstance(found := _value(obj, path), dict) and found}


def _is_map_node(path: Path) -> bool:
    """``f:…/.``: a map itself (``k:…/.`` is a list item)."""
    return len(path) > 1 and path[-1] == "." and path[-2].startswith("f:")


def _holds_any(prefix: Path, paths: set[Path]) -> bool:
    return any(p[: len(prefix)] == prefix and len(p) > len(prefix) for p in paths)


def _remove(obj: dict[str, Any], path: Path) -> None:
    """Remove the field at ``path`` (a whole list item, or a whole map, for ``.``)."""
    trail: list[Any] = [obj]
    for part in path[:-1]:
        node = _step(trail[-1], part)
        if node is None:
            return
        trail.append(node)
    last = path[-1]
    if _is_map_node(path) and isinstance(trail[-2], dict):
        trail[-2].pop(path[-2][2:], None)
        return
    if last == ".":
        parent_list = trail[-2]
        if isinstance(parent_list, list) and trail[-1] in parent_list:
            parent_list.remove(trail[-1])
        return
    if isinstance(trail[-1], dict):
        trail[-1].pop(last[2:], None)


def _merge(target: dict[str, Any], config: dict[str, Any], name: str) -> None:
    for key, value in config.items():
        keys = _list_keys(key, name)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, key)
        elif isinstance(value, list) and keys and isinstance(target.get(key), list):
            for item in value:
                current = next(
                    (
                        i
                        for i in target[key]
                        if isinstance(i, dict) and _matches(i, json.loads(_item_key(item, keys)[2:]))
                    ),
                    None,
                )
                if current is None:
                    target[key].append(copy.deepcopy(item))
                else:
                    _merge(current, item, key)
        else:
            target[key] = copy.deepcopy(value)


def _entries(obj: dict[str, Any] | None) -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        key = (entry["manager"], entry["operation"])
        found[key] = {"set": from_fields_v1(entry.get("fieldsV1") or {}), "api": entry.get("apiVersion", "")}
    return found


def _store(obj: dict[str, Any], entries: dict[tuple[str, str], dict[str, Any]]) -> None:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    obj.setdefault("metadata", {})["managedFields"] = [
        {
            "manager": manager,
            "operation": operation,
            "apiVersion": entry["api"],
            "time": stamp,
            "fieldsType": "FieldsV1",
            "fieldsV1": as_fields_v1(entry["set"]),
        }
        for (manager, operation), entry in entries.items()
        if entry["set"]
    ]


def _dotted(path: Path) -> str:
    return "." + ".".join(
        part[2:] if part.startswith("f:") else f"[{part[2:]}]" for part in path if part != "."
    )
