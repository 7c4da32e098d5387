"""Lambda: record the outcome and tell Slack, SNS and the event bus."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic.notify import notify_outcome
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    op = Operation.model_validate(event)
    svc = services()
    return run_step(
        "notify",
        op,
        svc.ledger,
        lambda o: notify_outcome(
            o, ledger=svc.ledger, notifier=svc.notifier, console_url=svc.settings.console_url
        ),
    ).model_dump(mode="json")
