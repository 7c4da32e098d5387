"""First step: is this event ours, well-formed, and about a cluster of the fleet?"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from autopatch import clock
from autopatch.clients.ledger import Ledger
from autopatch.errors import InvalidEvent
from autopatch.models import (
    ADDON_VERSION_AVAILABLE,
    AMI_RELEASE_AVAILABLE,
    END_OF_SUPPORT_APPROACHING,
    ClusterRef,
    ExecutionInfo,
    Operation,
    TriggerEvent,
)
from autopatch.observability import metrics
from autopatch.policy import ClusterPolicy, FleetPolicy

KIND_OF_DETAIL_TYPE = {
    ADDON_VERSION_AVAILABLE: "addon",
    AMI_RELEASE_AVAILABLE: "nodegroup",
    END_OF_SUPPORT_APPROACHING: "control-plane",
}


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in err['loc']) or '(event)'}: {err['msg']}" for err in exc.errors()]


def validate_event(raw: Any, execution: ExecutionInfo, *, ledger: Ledger, policy: FleetPolicy) -> Operation:
    """An `Operation` for a valid event; `InvalidEvent` (recorded in the ledger) otherwise.

    A valid event for a cluster outside the fleet gives an operation that is already `skipped`.
    """
    try:
        event = TriggerEvent.model_validate(raw)
        expected_kind = KIND_OF_DETAIL_TYPE.get(event.detail_type)
        if expected_kind != event.detail.component.kind:
            raise InvalidEvent(
                f"detail-type {event.detail_type!r} goes with component.kind {expected_kind!r}, "
                f"not {event.detail.component.kind!r}"
            )
    except (ValidationError, InvalidEvent) as exc:
        problems = _problems(exc) if isinstance(exc, ValidationError) else [str(exc)]
        ledger.record_invalid_event(execution.name, raw, problems)
        from aws_lambda_powertools.metrics import MetricUnit

        metrics.add_metric(name="InvalidEvents", unit=MetricUnit.Count, value=1)
        raise InvalidEvent("; ".join(problems)[:1000]) from None

    detail = event.detail
    op = Operation(
        id=execution.name,
        executionArn=execution.id,
        eventId=event.id,
        cluster=ClusterRef(name=detail.clusterName, accountId=detail.accountId, region=detail.region),
        component=detail.component,
        fromVersion=detail.currentVersion,
        toVersion=detail.targetVersion,
        detectedAt=detail.detectedAt,
        startedAt=clock.now(),
        deadline=detail.deadline,
    )
    cluster_policy = policy.cluster(detail.accountId, detail.region, detail.clusterName)
    if cluster_policy is None:
        return op.end("skipped", "unknown_cluster", "The cluster is not in the fleet policy.")
    if not _in_policy(detail.component.kind, detail.component.name, cluster_policy):
        return op.end("skipped", "not_in_policy", f"The policy does not patch {detail.component.name} here.")
    op.approval.required = cluster_policy.approval == "required"
    op.approval.timeoutSeconds = cluster_policy.approvalTimeout
    op.rollbackOnFailure = cluster_policy.rollbackOnFailure
    op.lockWaitBudget = cluster_policy.lockWaitBudget
    op.resolveConflicts = cluster_policy.resolveConflicts
    return op


def _in_policy(kind: str, name: str, cluster_policy: ClusterPolicy) -> bool:
    if kind == "addon":
        return name in cluster_policy.addons
    if kind == "nodegroup":
        return cluster_policy.nodegroups is None or name in cluster_policy.nodegroups
    return True
