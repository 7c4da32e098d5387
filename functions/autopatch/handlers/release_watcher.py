"""Lambda (scheduled): announce add-on versions that fleet clusters could move to."""

from __future__ import annotations

from typing import Any

import boto3

from autopatch.handlers import lambda_entry
from autopatch.logic.watcher import watch_releases
from autopatch.observability import logger
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    svc = services()
    result = watch_releases(
        policy=svc.policy,
        ledger=svc.ledger,
        eks_for=svc.eks_for,
        events=boto3.client("events"),
        bus=svc.settings.event_bus,
    )
    logger.info("release watcher pass", extra=result.as_dict())
    return result.as_dict()
