"""Lambda: store the task token under an approval id and ask the cluster's approvers."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic.approval import request_approval
from autopatch.logic.steps import run_step
from autopatch.models import ApprovalTaskInput
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = ApprovalTaskInput.model_validate(event)
    svc = services()
    op = run_step(
        "request_approval",
        request.operation,
        svc.ledger,
        lambda o: request_approval(
            o,
            request.taskToken,
            ledger=svc.ledger,
            policy=svc.policy,
            notifier=svc.notifier,
            console_url=svc.settings.console_url,
        ),
    )
    return {"approvalId": op.approval.id}
