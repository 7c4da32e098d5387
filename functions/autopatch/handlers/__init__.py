"""Lambda entry points: each decorates, parses its input model, makes one call and returns JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autopatch.observability import logger, metrics, tracer

Handler = Callable[[dict[str, Any], Any], Any]


def lambda_entry(fn: Handler) -> Handler:
    """Structured logs with the request id, X-Ray subsegment, metrics flushed on return."""
    return logger.inject_lambda_context(clear_state=True)(
        tracer.capture_lambda_handler(metrics.log_metrics(fn))
    )
