"""Lambda (API Gateway HTTP API): verify a Slack click or an approval link, acknowledge, queue it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from autopatch import clock
from autopatch.clients.approvals import ApprovalViews, SqsDecisionQueue, read_secret
from autopatch.handlers import lambda_entry
from autopatch.logic.approval_api import receive
from autopatch.settings import Settings, settings


@lru_cache(maxsize=1)
def _clients(config: Settings) -> tuple[SqsDecisionQueue, ApprovalViews]:
    import boto3

    if not config.approval_queue_url:
        raise RuntimeError("missing configuration: AUTOPATCH_APPROVAL_QUEUE_URL")
    table = boto3.resource("dynamodb").Table(config.ledger_table)
    return SqsDecisionQueue(config.approval_queue_url), ApprovalViews(table)


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    config = settings()
    queue, approvals = _clients(config)
    return receive(
        event,
        signing_secret=read_secret(config.slack_signing_secret_arn),
        link_key=read_secret(config.link_key_secret_arn),
        queue=queue,
        approvals=approvals,
        now=clock.now(),
    )
