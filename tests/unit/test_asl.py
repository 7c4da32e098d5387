"""The ASL files: valid Amazon States Language, every name resolvable, every path ends in notify."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from autopatch import errors

REPO = Path(__file__).resolve().parents[2]
STATEMACHINES = REPO / "statemachines"
FUNCTIONS = json.loads((STATEMACHINES / "functions.json").read_text())["functions"]
RULES = json.loads((STATEMACHINES / "rules.json").read_text())
DEFINITIONS = sorted({spec["definition"] for spec in RULES["stateMachines"].values()})
PLACEHOLDER = re.compile(r"\$\{([A-Za-z]+)\}")
AWS_ERRORS = {
    "States.ALL",
    "States.Timeout",
    "States.TaskFailed",
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
}
PRODUCT_ERRORS = {
    name for name, value in vars(errors).items() if isinstance(value, type) and issubclass(value, Exception)
}


def load(name: str) -> dict[str, Any]:
    return json.loads((STATEMACHINES / name).read_text())


def substituted(name: str) -> str:
    text = (STATEMACHINES / name).read_text()
    for key in FUNCTIONS:
        text = text.replace(f"${{{key}FunctionArn}}", f"arn:aws:lambda:eu-west-1:111122223333:function:{key}")
    return text


def states_of(definition: dict[str, Any]) -> dict[str, Any]:
    return definition["States"]


@pytest.mark.parametrize("name", DEFINITIONS)
def test_every_placeholder_names_a_known_function(name: str) -> None:
    placeholders = set(PLACEHOLDER.findall((STATEMACHINES / name).read_text()))
    assert placeholders, "a workflow without Lambda steps is not expected here"
    assert {p.removesuffix("FunctionArn") for p in placeholders} <= set(FUNCTIONS)
    assert "${" not in substituted(name)


@pytest.mark.parametrize("name", DEFINITIONS)
def test_statelint_accepts_the_definition(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(substituted(name))
    statelint = Path(sys.executable).with_name("statelint")
    result = subprocess.run([str(statelint), str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", DEFINITIONS)
def test_every_transition_reaches_an_existing_state_and_every_state_is_reachable(name: str) -> None:
    states = states_of(load(name))
    targets: set[str] = {load(name)["StartAt"]}
    for state in states.values():
        targets |= {t for t in _next_states(state)}
    assert targets <= set(states), f"missing states: {targets - set(states)}"
    assert set(states) <= targets, f"unreachable states: {set(states) - targets}"


@pytest.mark.parametrize("name", DEFINITIONS)
def test_retry_and_catch_name_only_errors_that_exist(name: str) -> None:
    for state_name, state in states_of(load(name)).items():
        for clause in [*state.get("Retry", []), *state.get("Catch", [])]:
            unknown = set(clause["ErrorEquals"]) - AWS_ERRORS - PRODUCT_ERRORS
            assert not unknown, f"{state_name} names unknown errors {unknown}"


@pytest.mark.parametrize("name", DEFINITIONS)
def test_no_catch_all_retry_hides_real_failures(name: str) -> None:
    for state_name, state in states_of(load(name)).items():
        for retry in state.get("Retry", []):
            assert "States.ALL" not in retry["ErrorEquals"], state_name


@pytest.mark.parametrize("name", DEFINITIONS)
def test_every_path_after_validate_ends_through_notify_and_release_lock(name: str) -> None:
    states = states_of(load(name))
    ends = {n for n, s in states.items() if s["Type"] in ("Succeed", "Fail") or s.get("End")}
    before_validation = {"Validate", "RejectInvalidEvent", "ValidateFailed"}
    after_notify = {"ReleaseLock", "Outcome", "Done", "OperationFailed"}
    for start in set(states) - before_validation - after_notify - {"Notify"}:
        for end in ends:
            for path in _paths(states, start, end):
                assert "Notify" in path, f"{' → '.join(path)} ends without Notify"
                assert "ReleaseLock" in path, f"{' → '.join(path)} never releases the lock"


def test_invalid_events_fail_at_validate_without_touching_anything_else() -> None:
    validate = states_of(load("addon_update.asl.json"))["Validate"]
    invalid = next(c for c in validate["Catch"] if "InvalidEvent" in c["ErrorEquals"])
    target = states_of(load("addon_update.asl.json"))[invalid["Next"]]
    assert target == {**target, "Type": "Fail", "Error": "InvalidEvent"}


def test_the_approval_waits_for_its_task_token_with_the_policy_timeout() -> None:
    approval = states_of(load("addon_update.asl.json"))["RequestApproval"]
    assert approval["Resource"].endswith(".waitForTaskToken")
    assert approval["TimeoutSecondsPath"] == "$.approval.timeoutSeconds"
    assert approval["Parameters"]["Payload"]["taskToken.$"] == "$$.Task.Token"
    # The approval comes before the lock: a pending approval never holds a cluster.
    assert approval["Next"] == "Lock"


def _next_states(state: dict[str, Any]) -> set[str]:
    found = {state[k] for k in ("Next", "Default") if k in state}
    found |= {c["Next"] for c in state.get("Catch", [])}
    found |= {c["Next"] for c in state.get("Choices", [])}
    return found


def _paths(states: dict[str, Any], start: str, end: str) -> list[list[str]]:
    """Simple paths from `start` to `end` (loops are cut: the poll loop is entered once)."""
    paths: list[list[str]] = []

    def walk(name: str, seen: list[str]) -> None:
        if name in seen:
            return
        seen = [*seen, name]
        if name == end:
            paths.append(seen)
            return
        for nxt in _next_states(states[name]):
            walk(nxt, seen)

    walk(start, [])
    return paths
