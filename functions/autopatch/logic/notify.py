"""The last step of every path after validate: settle the status, record it, tell people.

Also what keeps the operation's one Slack message current while the run moves: the approval
request, the decision (`tell_decision`, for whatever records one), and — with a bot token only —
`applying` and `verifying` along the way.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from autopatch import clock, messages
from autopatch.clients.ledger import Ledger
from autopatch.logic import upgrade
from autopatch.models import OPERATION_FINISHED, Notification, Operation
from autopatch.observability import logger


def to_slack(
    op: Operation,
    payload: dict[str, Any],
    *,
    status: str,
    summary: str,
    ledger: Ledger,
    notifier: Any,
) -> Notification:
    """The operation's message: in place with a bot token, else a new webhook message."""
    return notifier.post_or_update(op, payload, status=status, summary=summary, ledger=ledger)


def tell_progress(op: Operation, state: str, *, ledger: Ledger, notifier: Any, console_url: str) -> Operation:
    """Best effort: show `state` (applying, verifying) in the operation's message, in place.

    Only with a bot token (never a webhook message per step), only for a running operation that
    is not a step of an upgrade, and only when the message does not already say so (a retried or
    repeated step changes nothing). Whatever goes wrong is logged; the step goes on.
    """
    if op.parent is not None or op.status != "running":
        return op
    try:
        if not notifier.has_bot_token():
            return op
        shown = (ledger.slack_message(op.cluster.key, op.id) or {}).get("state")
        if shown == state:
            return op
        states = [state]
        if shown == "awaiting_approval" and op.approval.decision == "approved":
            # Decided where the message was not told (the CLI): say who approved before going on.
            states.insert(0, "approved")
        for each in states:
            note = notifier.post_or_update(
                op,
                messages.operation_blocks(op, console_url, state=each),
                status=each,
                summary=messages.headline(op, each),
                ledger=ledger,
                webhook_fallback=False,
            )
            op.notifications.append(note)
    except Exception as exc:
        logger.warning("Slack progress update failed", extra={"state": state, "error": str(exc)[:300]})
    return op


def tell_decision(
    op: Operation,
    decision_outcome: dict[str, Any],
    *,
    ledger: Ledger,
    notifier: Any,
    console_url: str,
    response_url: str | None = None,
) -> list[Notification]:
    """After a decision: the operation's message says "approved by X" or "rejected by X: why".

    `decision_outcome` is what `approval.decision_outcome` builds (what the workflow receives).
    In place with a bot token; else the message the button was on, through the interaction's
    `response_url` (`replace_original`); else a new webhook message. Never raises.
    """
    if op.parent is not None:
        return []
    told = op.model_copy(deep=True)
    told.absorb_decision({**decision_outcome, "notifications": []})
    state = "approved" if told.approval.decision == "approved" else "rejected"
    summary = messages.headline(told, state) + (f" by {told.approval.by}" if told.approval.by else "")
    try:
        payload = messages.operation_blocks(told, console_url, state=state)
        if notifier.has_bot_token():
            return [to_slack(told, payload, status=state, summary=summary, ledger=ledger, notifier=notifier)]
        if response_url:
            return [
                notifier.respond(
                    response_url, {**payload, "replace_original": True}, status=state, summary=summary
                )
            ]
        return [notifier.slack(payload, status=state, summary=summary)]
    except Exception as exc:
        logger.warning("Slack decision update failed", extra={"error": str(exc)[:300]})
        return [
            Notification(
                channel="slack",
                at=clock.now(),
                status=state,
                summary=summary,
                delivered=False,
                detail=f"not told: {type(exc).__name__}",
            )
        ]


def operation_of_approval(ledger: Ledger, approval: dict[str, Any]) -> Operation | None:
    """The operation an approval item (`ledger.get_approval`) asks about, as last saved."""
    found = ledger.operations(str(approval["clusterKey"]), str(approval["opKey"]))
    return next((op for op in found if op.id == approval.get("execution")), found[0] if found else None)


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
            to_slack(
                op,
                messages.operation_blocks(op, console_url),
                status=status,
                summary=messages.headline(op),
                ledger=ledger,
                notifier=notifier,
            )
        )
        op.notifications.append(
            notifier.sns(
                messages.headline(op),
                messages.plain_text(op),
                status=status,
                attributes={
                    "cluster": op.cluster.name,
                    "status": status,
                    "component": op.component.name,
                    "reason": op.reason or "",
                    "approver": op.approval.by or "",
                },
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
