"""Lambda: read the update's status once and renew the lease."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic.addon_update import poll_update
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    op = Operation.model_validate(event)
    svc = services()
    return run_step(
        "poll", op, svc.ledger, lambda o: poll_update(o, eks=svc.eks_for(o.cluster.region), ledger=svc.ledger)
    ).model_dump(mode="json")
