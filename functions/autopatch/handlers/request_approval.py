"""Lambda: store the task token under an approval id and ask the cluster's approvers."""

from __future__ import annotations

from typing import Any

from autopatch.clients.approvals import ApprovalMail
from autopatch.handlers import lambda_entry
from autopatch.logic.approval import request_approval
from autopatch.logic.steps import run_step
from autopatch.models import ApprovalTaskInput
from autopatch.services import services
from autopatch.settings import Settings


def approval_mail(config: Settings) -> ApprovalMail | None:
    """Emailed approval links, when the stack configured the approvals topic and the API."""
    if not (config.approval_topic_arn and config.approval_api_url and config.link_key_secret_arn):
        return None
    return ApprovalMail(config.approval_topic_arn, config.approval_api_url, config.link_key_secret_arn)


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
            approval_mail=approval_mail(svc.settings),
        ),
    )
    return {"approvalId": op.approval.id}
