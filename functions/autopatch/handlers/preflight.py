"""Lambda: compatibility checks and the baseline, before any change."""

from __future__ import annotations

from typing import Any

from autopatch.handlers import lambda_entry
from autopatch.logic.addon_checks import preflight_addon
from autopatch.logic.steps import run_step
from autopatch.models import Operation
from autopatch.services import services


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    op = Operation.model_validate(event)
    svc = services()
    return run_step(
        "preflight",
        op,
        svc.ledger,
        lambda o: preflight_addon(
            o, eks=svc.eks_for(o.cluster.region), kube=svc.kube_for(o.cluster.name, o.cluster.region)
        ),
    ).model_dump(mode="json")
