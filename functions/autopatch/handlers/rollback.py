"""Lambda: return the add-on to the version it had (PRESERVE)."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic.addon_update import start_rollback
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    op = Operation.model_validate(event)
    svc = services()
    return run_step(
        "rollback", op, svc.ledger, lambda o: start_rollback(o, eks=svc.eks_for(o.cluster.region))
    ).model_dump(mode="json")
