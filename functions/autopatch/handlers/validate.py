"""Lambda: parse and validate the trigger event; invalid events are recorded and refused."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic.steps import run_step
from autopatch.logic.validate import validate_event
from autopatch.models import ValidateInput
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ValidateInput.model_validate(event)
    svc = services()
    op = validate_event(request.event, request.execution, ledger=svc.ledger, policy=svc.policy)
    return run_step("validate", op, svc.ledger, lambda o: o).model_dump(mode="json")
