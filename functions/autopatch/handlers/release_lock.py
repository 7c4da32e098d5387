"""Lambda: release the per-cluster lease."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic.lock import release_lock
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    op = Operation.model_validate(event)
    svc = services()
    return run_step("release_lock", op, svc.ledger, lambda o: release_lock(o, ledger=svc.ledger)).model_dump(
        mode="json"
    )
