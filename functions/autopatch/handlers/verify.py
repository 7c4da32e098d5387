"""Lambda: EKS health and Kubernetes after the update: workloads and edits, or nodes and pods."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic import by_kind
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    op = Operation.model_validate(event)
    svc = services()
    return run_step("verify", op, svc.ledger, lambda o: by_kind.verify(o, svc)).model_dump(mode="json")
