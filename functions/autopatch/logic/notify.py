"""The last step of every path after validate: settle the status, record it, tell people."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from autopatch import clock, messages
from autopatch.clients.ledger import Ledger
from autopatch.logic import upgrade
from autopatch.models import OPERATION_FINISHED, Notification, Operation


def settle_from_error(op: Operation, *, ledger: Ledger) -> Operation:
    """Turn what a `Catch` put at `$.error` into a status and a reason code."""
    if op.error is None or op.status != "running":
        return op
    error, cause = op.error.Error, op.error.Cause or ""
    if error == "ApprovalRejected":
        op.absorb_decision(_json(cause))
        why = f" ({op.approval.reason})" if op.approval.reason else ""
        return op.end("rejected", "approval_rejected", f"Rejected by {op.approval.by}{why}.")
    if error == "States.Timeout" and op.approval.required and not op.approval.decision:
        _close_timed_out_approval(op, ledger=ledger)
        hours = op.approval.timeoutSeconds / 3600
        return op.end("rejected", "approval_timeout", f"Nobody decided within {hours:g} h.")
    if error == "LockWaitExpired":
        return op.end("failed", "cluster_busy", _message(cause) or "The cluster stayed busy.")
    if error == "UpdateInProgress":
        return op.end("failed", "update_in_progress", f"EKS kept refusing: {_message(cause)}"[:500])
    return op.end("failed", "internal_error", f"{error}: {_message(cause)}"[:500])


def _close_timed_out_approval(op: Operation, *, ledger: Ledger) -> None:
    """Find the request this execution made (the workflow state does not carry its id) and expire it."""
    for item in ledger.approvals_of_execution(op.cluster.key, op.id):
        approval_id = str(item["pk"]).removeprefix("APPROVAL#")
        op.approval.id = approval_id
        op.notifications.extend(
            Notification.model_validate(n) for n in json.loads(item.get("requestNotifications") or "[]")
        )
        # Decided at the last moment: then the record already says so, and stays.
        with contextlib.suppress(Exception):
            ledger.expire_approval(approval_id)


def _json(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _message(cause: str) -> str:
    data = _json(cause)
    return str(data.get("errorMessage") or cause)[:400]


def notify_outcome(op: Operation, *, ledger: Ledger, notifier: Any, console_url: str) -> Operation:
    op = settle_from_error(op, ledger=ledger)
    if op.status == "running":  # a path that forgot to settle is a bug, and says so
        op.end("failed", "internal_error", "The workflow ended without an outcome.")
    if op.component.kind == "control-plane":
        upgrade.close_hop(op)
    ledger.finish_target(op)
    status = op.status
    if op.parent is None:  # a step of an upgrade is told as part of the upgrade's own message
        op.notifications.append(
            notifier.slack(
                messages.operation_blocks(op, console_url), status=status, summary=messages.headline(op)
            )
        )
        op.notifications.append(
            notifier.sns(
                messages.headline(op),
                messages.plain_text(op),
                status=status,
                attributes={"cluster": op.cluster.name, "status": status, "component": op.component.name},
            )
        )
    op.notifications.append(
        notifier.event(
            OPERATION_FINISHED,
            op.event_detail(
                operationId=op.id,
                status=status,
                reason=op.reason,
                finishedAt=clock.iso(clock.now()),
                **({"parent": op.parent} if op.parent else {}),
            ),
            status=status,
        )
    )
    return op
