"""Lambda (rule on the default bus): AWS Health EKS planned lifecycle events → our end-of-support events."""

from __future__ import annotations

from typing import Any

import boto3

from autopatch.handlers import lambda_entry
from autopatch.logic.health import translate_health_event
from autopatch.observability import logger
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services()
    result = translate_health_event(
        event,
        policy=svc.policy,
        ledger=svc.ledger,
        eks_for=svc.eks_for,
        events=boto3.client("events"),
        bus=svc.settings.event_bus,
    )
    logger.info(f"AWS Health event {result.status}", extra=result.as_dict())
    return result.as_dict()
