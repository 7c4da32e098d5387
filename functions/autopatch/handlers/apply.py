"""Lambda: start the add-on update with resolveConflicts=PRESERVE."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic.addon_update import apply_update
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    op = Operation.model_validate(event)
    svc = services()
    return run_step(
        "apply", op, svc.ledger, lambda o: apply_update(o, eks=svc.eks_for(o.cluster.region))
    ).model_dump(mode="json")
