"""Lambda (scheduled daily): announce control-plane upgrades as end-of-support dates come near."""

from __future__ import annotations

from typing import Any

import boto3

from autopatch.handlers import lambda_entry
from autopatch.logic.end_of_support import watch_end_of_support
from autopatch.observability import logger
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services()
    result = watch_end_of_support(
        policy=svc.policy,
        ledger=svc.ledger,
        eks_for=svc.eks_for,
        events=boto3.client("events"),
        bus=svc.settings.event_bus,
    )
    if result.past_end_of_support:
        logger.warning(
            "clusters past the end of extended support", extra={"clusters": result.past_end_of_support}
        )
    if result.pinned:
        logger.warning("pinned clusters near end of support", extra={"clusters": result.pinned})
    logger.info("end-of-support watcher pass", extra=result.as_dict())
    return result.as_dict()
