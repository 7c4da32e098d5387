"""Lambda (SQS): decide each queued approval request through decide(), then update Slack.

Partial batch failure reporting: only a message whose handling raised is retried. A refusal (not
an approver, already decided, a used link) is an answer, not a failure: it is never retried.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic import notify
from autopatch.logic.approval import Decision, decision_outcome
from autopatch.logic.approval_api import decide_from_queue
from autopatch.observability import logger
from autopatch.services import Services, services


@lru_cache(maxsize=1)
def _sfn() -> Any:
    import boto3

    return boto3.client("stepfunctions")


def tell(svc: Services, item: dict[str, Any], decision: Decision, response_url: str | None) -> None:
    """The operation's Slack message says who decided."""
    outcome = decision_outcome(
        item,
        decision.approval_id,
        verdict=decision.decision,
        by=decision.by,
        at=decision.at,
        reason=decision.reason,
    )
    op = notify.operation_of_approval(svc.ledger, item)
    if op is None:
        logger.warning("decided approval has no operation record", extra={"approval": decision.approval_id})
        return
    notify.tell_decision(
        op,
        outcome,
        ledger=svc.ledger,
        notifier=svc.notifier,
        console_url=svc.settings.console_url,
        response_url=response_url,
    )


def respond(svc: Services, response_url: str, payload: dict[str, Any]) -> None:
    """Answer the person who clicked, through the interaction's response_url."""
    svc.notifier.respond(response_url, payload)


def record_handler(record: Any) -> None:
    svc = services()
    decide_from_queue(
        record.body,
        ledger=svc.ledger,
        policy=svc.policy,
        sfn=_sfn(),
        tell=lambda item, decision, url: tell(svc, item, decision, url),
        respond=lambda url, payload: respond(svc, url, payload),
    )


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    processor = BatchProcessor(event_type=EventType.SQS)
    response = process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
    return dict(response)
