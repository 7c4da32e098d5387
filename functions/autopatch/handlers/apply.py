"""Lambda: start the EKS update (an add-on with resolveConflicts=PRESERVE, or a node group roll)."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic import by_kind
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    op = Operation.model_validate(event)
    svc = services()
    return run_step("apply", op, svc.ledger, lambda o: by_kind.apply(o, svc)).model_dump(mode="json")
