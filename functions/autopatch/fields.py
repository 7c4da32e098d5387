"""Kubernetes field paths and the `managedFields` FieldsV1 format.

A path is a tuple of steps. A step is a map key (`"data"`, `"Corefile"`) or a list element chosen by
its merge key, written `"[name=coredns]"`. FieldsV1 writes the same as nested `f:<key>` and
`k:{"name":"coredns"}` entries (https://kubernetes.io/docs/reference/using-api/server-side-apply/).
"""

from __future__ import annotations

import json
import re
from typing import Any

FieldPath = tuple[str, ...]

_ITEM = re.compile(r"^\[(?P<key>[A-Za-z0-9_.-]+)=(?P<value>[^\]]*)\]$")


def path_to_fieldsv1(path: FieldPath) -> dict[str, Any]:
    """The nested FieldsV1 dict naming one leaf field."""
    node: dict[str, Any] = {}
    for step in reversed(path):
        match = _ITEM.match(step)
        if match:
            node = {"k:" + json.dumps({match["key"]: match["value"]}, separators=(",", ":")): node}
        else:
            node = {"f:" + step: node}
    return node


def fieldsv1_to_paths(fields: dict[str, Any], prefix: FieldPath = ()) -> list[FieldPath]:
    """Every leaf path named in a FieldsV1 dict (`.` self-markers are skipped)."""
    paths: list[FieldPath] = []
    for key, child in fields.items():
        if key == ".":
            continue
        if key.startswith("f:"):
            step = key[2:]
        elif key.startswith("k:"):
            ((item_key, item_value),) = json.loads(key[2:]).items()
            step = f"[{item_key}={item_value}]"
        else:  # v: (set values) and i: are not produced by the objects we track
            continue
        if isinstance(child, dict) and [k for k in child if k != "."]:
            paths.extend(fieldsv1_to_paths(child, (*prefix, step)))
        else:
            paths.append((*prefix, step))
    return paths


def merge_fieldsv1(into: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    for key, child in other.items():
        into[key] = merge_fieldsv1(into.get(key, {}), child) if isinstance(child, dict) else child
    return into


def remove_path_from_fieldsv1(fields: dict[str, Any], path: FieldPath) -> dict[str, Any]:
    """A copy of `fields` without `path` (empty parents are pruned)."""
    if not path:
        return {}
    first = next(iter(path_to_fieldsv1(path[:1])))
    if first not in fields:
        return fields
    result = dict(fields)
    if len(path) == 1:
        del result[first]
    else:
        child = remove_path_from_fieldsv1(result[first], path[1:])
        if [k for k in child if k != "."]:
            result[first] = child
        else:
            del result[first]
    return result


def _step_into(node: Any, step: str, create: bool) -> Any:
    match = _ITEM.match(step)
    if match:
        if not isinstance(node, list):
            raise KeyError(step)
        for item in node:
            if isinstance(item, dict) and str(item.get(match["key"])) == match["value"]:
                return item
        if create:
            item = {match["key"]: match["value"]}
            node.append(item)
            return item
        raise KeyError(step)
    if not isinstance(node, dict):
        raise KeyError(step)
    if step not in node:
        if not create:
            raise KeyError(step)
        node[step] = {}
    return node[step]


_MISSING = object()


def get_path(obj: Any, path: FieldPath, default: Any = _MISSING) -> Any:
    node = obj
    try:
        for step in path:
            node = _step_into(node, step, create=False)
    except KeyError:
        if default is _MISSING:
            raise
        return default
    return node


def set_path(obj: dict[str, Any], path: FieldPath, value: Any) -> None:
    node: Any = obj
    for step in path[:-1]:
        node = _step_into(node, step, create=True)
    last = path[-1]
    if _ITEM.match(last):
        raise ValueError("a path must end on a map key")
    node[last] = value


def format_path(path: FieldPath) -> str:
    """`.data.Corefile` or `.spec.template.spec.containers[name="coredns"].resources`."""
    out = ""
    for step in path:
        match = _ITEM.match(step)
        out += f'[{match["key"]}="{match["value"]}"]' if match else f".{step}"
    return out


def parse_path(text: str) -> FieldPath:
    """Inverse of `format_path` for the simple forms used in scenarios."""
    steps: list[str] = []
    for token in re.findall(r'\.([A-Za-z0-9_.\-/]+?)(?=\.|\[|$)|\[([A-Za-z0-9_.-]+)="?([^"\]]*)"?\]', text):
        name, key, value = token
        steps.append(name if name else f"[{key}={value}]")
    if not steps:
        raise ValueError(f"{text!r} is not a field path like .data.Corefile")
    return tuple(steps)
