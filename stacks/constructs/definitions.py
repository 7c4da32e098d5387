"""The workflow catalogue the stack is built from: `statemachines/functions.json` and `rules.json`.

These files are shared with the local rehearsal, so the CDK app reads them instead of repeating
their content. Anything malformed fails synth with the file and entry that is wrong.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


class CatalogError(ValueError):
    """functions.json, rules.json or an ASL file they name is missing or malformed."""


@dataclass(frozen=True)
class FunctionSpec:
    key: str
    handler: str
    kubernetes: bool
    description: str

    @property
    def arn_placeholder(self) -> str:
        """The name an ASL file uses for this function's ARN: `${<Key>FunctionArn}`."""
        return f"{self.key}FunctionArn"


@dataclass(frozen=True)
class RuleSpec:
    name: str
    state_machine: str
    event_pattern: dict[str, Any]


@dataclass(frozen=True)
class StateMachineSpec:
    name: str
    definition_path: Path

    def read_definition(self) -> str:
        """The ASL text, checked to be JSON (placeholders sit inside strings)."""
        try:
            text = self.definition_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError(
                f"state machine {self.name}: cannot read {self.definition_path}: {exc.strerror}"
            ) from exc
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogError(
                f"state machine {self.name}: {self.definition_path} is not JSON: {exc}"
            ) from exc
        return text


@dataclass(frozen=True)
class WorkflowCatalog:
    functions: dict[str, FunctionSpec]
    rules: list[RuleSpec]
    state_machines: dict[str, StateMachineSpec]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CatalogError(f"{path} must hold a JSON object")
    return data


def load_catalog(statemachines_dir: Path) -> WorkflowCatalog:
    functions_file = statemachines_dir / "functions.json"
    rules_file = statemachines_dir / "rules.json"
    functions_data = _read_json(functions_file)
    rules_data = _read_json(rules_file)

    functions: dict[str, FunctionSpec] = {}
    for key, entry in functions_data.get("functions", {}).items():
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", key) or not entry.get("handler"):
            raise CatalogError(f"{functions_file}: function {key!r} needs a PascalCase key and a handler")
        functions[key] = FunctionSpec(
            key=key,
            handler=entry["handler"],
            kubernetes=bool(entry.get("kubernetes", False)),
            description=entry.get("description", ""),
        )

    state_machines: dict[str, StateMachineSpec] = {}
    for name, entry in rules_data.get("stateMachines", {}).items():
        if not re.fullmatch(r"[a-z][a-z0-9-]*", name) or not entry.get("definition"):
            raise CatalogError(
                f"{rules_file}: state machine {name!r} needs a kebab-case name and a definition"
            )
        state_machines[name] = StateMachineSpec(
            name=name, definition_path=statemachines_dir / entry["definition"]
        )

    rules: list[RuleSpec] = []
    for entry in rules_data.get("rules", []):
        name = entry.get("name", "")
        if entry.get("stateMachine") not in state_machines:
            raise CatalogError(
                f"{rules_file}: rule {name!r} starts unknown state machine {entry.get('stateMachine')!r}"
            )
        if not isinstance(entry.get("eventPattern"), dict) or not entry["eventPattern"]:
            raise CatalogError(f"{rules_file}: rule {name!r} has no eventPattern")
        rules.append(
            RuleSpec(name=name, state_machine=entry["stateMachine"], event_pattern=entry["eventPattern"])
        )
    if len({rule.name for rule in rules}) != len(rules):
        raise CatalogError(f"{rules_file}: rule names must be unique")

    return WorkflowCatalog(functions=functions, rules=rules, state_machines=state_machines)
