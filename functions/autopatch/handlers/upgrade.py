"""Lambda: the control-plane upgrade's own bookkeeping between the shared steps.

The state machine passes `{"action": ..., "operation": <the upgrade>}`; the actions plan a hop's
add-on and node group steps, hand them out one at a time, fold each finished one back into the
hop, and close the hop.
"""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic import upgrade
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    action = str(event.get("action", ""))
    op = Operation.model_validate(event.get("operation"))
    svc = services()
    return run_step(action, op, svc.ledger, lambda o: upgrade.run_action(action, o, svc)).model_dump(
        mode="json"
    )
