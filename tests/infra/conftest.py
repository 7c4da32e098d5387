"""Fixtures for the infrastructure tests: the CDK app synthesized once per session, offline.

Synth needs no AWS credentials and no Docker; with `skipBundling=true` it needs no network either.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
for entry in (ROOT, ROOT / "functions"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

STATEMACHINES = ROOT / "statemachines"


def _stand_in_definition(functions: dict[str, Any]) -> dict[str, Any]:
    """A minimal ASL that names every workflow function and both configuration placeholders."""
    keys = [key for key in functions if key != "ReleaseWatcher"]
    states: dict[str, Any] = {
        "Configure": {
            "Type": "Pass",
            "Parameters": {"table": "${LedgerTableName}", "bus": "${EventBusName}"},
            "ResultPath": "$.config",
            "Next": keys[0],
        }
    }
    for index, key in enumerate(keys):
        state: dict[str, Any] = {"Type": "Task", "Resource": "${" + key + "FunctionArn}"}
        if index + 1 < len(keys):
            state["Next"] = keys[index + 1]
        else:
            state["End"] = True
        states[key] = state
    return {"Comment": "test stand-in", "StartAt": "Configure", "States": states}


@pytest.fixture(scope="session")
def statemachines_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's statemachines/, or a copy with stand-ins for ASL files not written yet."""
    rules = json.loads((STATEMACHINES / "rules.json").read_text())
    missing = [
        spec["definition"]
        for spec in rules["stateMachines"].values()
        if not (STATEMACHINES / spec["definition"]).exists()
    ]
    if not missing:
        return STATEMACHINES
    copy = tmp_path_factory.mktemp("statemachines")
    for path in STATEMACHINES.glob("*.json"):
        shutil.copy(path, copy / path.name)
    functions = json.loads((STATEMACHINES / "functions.json").read_text())["functions"]
    for name in missing:
        (copy / name).write_text(json.dumps(_stand_in_definition(functions), indent=2))
    return copy


@dataclass
class Synthesized:
    stack: Any
    template: Template
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    outdir: Path

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == resource_type}


@pytest.fixture(scope="session")
def synthesized(statemachines_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    _, stack = build_app(
        context={"skipBundling": "true"},
        outdir=str(outdir),
        statemachines_dir=statemachines_dir,
        env=cdk.Environment(),  # environment-agnostic, whatever AWS profile the runner has
    )
    try:
        template = Template.from_stack(stack)
    except RuntimeError as exc:  # cdk-nag findings and other validation errors arrive here
        pytest.fail(f"synth failed:\n{exc}", pytrace=False)
    data = template.to_json()
    return Synthesized(
        stack=stack,
        template=template,
        resources=data["Resources"],
        outputs=data.get("Outputs", {}),
        outdir=outdir,
    )


@pytest.fixture(scope="session")
def catalog(statemachines_dir: Path) -> Any:
    from stacks.constructs.definitions import load_catalog

    return load_catalog(statemachines_dir)
