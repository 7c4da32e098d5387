"""Kubernetes field paths and the `managedFields` FieldsV1 format.

A path is a tuple of steps. A step is a map key (`"data"`, `"Corefile"`) or a list element chosen by
its merge keys, written as their JSON object in brackets: `'[{"name":"coredns"}]'` or
`'[{"containerPort":53,"protocol":"UDP"}]'` (values keep their JSON types). FieldsV1 writes the same
as nested `f:<key>` and `k:{"containerPort":53,"protocol":"UDP"}` entries
(https://kubernetes.io/docs/reference/using-api/server-side-apply/).
"""

from __future__ import annotations

import json
import re
from typing import Any

FieldPath = tuple[str, ...]

_LEGACY_ITEM = re.compile(r"^\[(?P<key>[A-Za-z0-9_.-]+)=(?P<value>[^\]]*)\]$")


def item_step(keys: dict[str, Any]) -> str:
    """The step that selects the list element whose merge keys equal `keys`."""
    return "[" + json.dumps(keys, sort_keys=True, separators=(",", ":")) + "]"


def item_keys(step: str) -> dict[str, Any] | None:
    """The merge keys of a list-element step, or None for a map key."""
    if step.startswith("[{") and step.endswith("}]"):
        keys = json.loads(step[1:-1])
        return keys if isinstance(keys, dict) else None
    legacy = _LEGACY_ITEM.match(step)
    if legacy:
        return {legacy["key"]: legacy["value"]}
    return None


def path_to_fieldsv1(path: FieldPath) -> dict[str, Any]:
    """The nested FieldsV1 dict naming one leaf field."""
    node: dict[str, Any] = {}
    for step in reversed(path):
        keys = item_keys(step)
        if keys is not None:
            node = {"k:" + json.dumps(keys, sort_keys=True, separators=(",", ":")): node}
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
            step = item_step(json.loads(key[2:]))
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


def _matches(item: Any, keys: dict[str, Any]) -> bool:
    if not isinstance(item, dict):
        return False
    # A legacy `[name=x]` step carries strings; compare those as text.
    return all(item.get(k) == v or (isinstance(v, str) and str(item.get(k)) == v) for k, v in keys.items())


def _step_into(node: Any, step: str, create: bool) -> Any:
    keys = item_keys(step)
    if keys is not None:
        if not isinstance(node, list):
            raise KeyError(step)
        for item in node:
            if _matches(item, keys):
                return item
        if create:
            item = dict(keys)
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
    for index, step in enumerate(path[:-1]):
        if step not in node and isinstance(node, dict) and item_keys(path[index + 1]) is not None:
            node[step] = []  # the next step selects a list element: the list must exist
        node = _step_into(node, step, create=True)
    last = path[-1]
    if item_keys(last) is not None:
        raise ValueError("a path must end on a map key")
    node[last] = value


def format_path(path: FieldPath) -> str:
    """`.data.Corefile` or `.spec.template.spec.containers[name="coredns"].resources`."""
    out = ""
    for step in path:
        keys = item_keys(step)
        if keys is None:
            out += f".{step}" if re.fullmatch(r"[A-Za-z0-9_\-]+", step) else f"[{json.dumps(step)}]"
        else:
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in sorted(keys.items())) + "]"
    return out


_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z0-9_\-]+)          # .data
      | \[(?P<quoted>"(?:[^"\\]|\\.)*")\]     # ["kubectl.kubernetes.io/last-applied-configuration"]
      | \[(?P<item>[^\]]+)\]                  # [name="coredns",protocol="UDP"]
    """,
    re.VERBOSE,
)


def _item_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_path(text: str) -> FieldPath:
    """Inverse of `format_path`. Anything it cannot read is an error, never silently skipped."""
    steps: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(
                f"{text!r} is not a field path like .data.Corefile (stuck at {text[position:]!r})"
            )
        if match["name"] is not None:
            steps.append(match["name"])
        elif match["quoted"] is not None:
            steps.append(json.loads(match["quoted"]))
        else:
            keys = {}
            for pair in match["item"].split(","):
                key, sep, value = pair.partition("=")
                if not sep or not key.strip():
                    raise ValueError(
                        f"{text!r}: list element {match['item']!r} must read key=value[,key=value]"
                    )
                keys[key.strip()] = _item_value(value.strip())
            steps.append(item_step(keys))
        position = match.end()
    if not steps:
        raise ValueError(f"{text!r} is not a field path like .data.Corefile")
    return tuple(steps)
