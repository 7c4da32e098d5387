"""Lambda: the fast part of preflight again, under the lock."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic.addon_checks import recheck_addon
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    op = Operation.model_validate(event)
    svc = services()
    return run_step(
        "recheck", op, svc.ledger, lambda o: recheck_addon(o, eks=svc.eks_for(o.cluster.region))
    ).model_dump(mode="json")
