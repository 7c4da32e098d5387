"""Human approval: ask (pausing the workflow on its task token) and decide.

The task token never leaves the ledger: messages carry only an opaque approval id. `decide` is the
one way a decision is made — the CLI, the rehearsal's simulated approver and (later) Slack buttons
and signed links all call it — so its checks hold everywhere.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, Protocol

from autopatch import clock, messages
from autopatch.clients.ledger import Ledger
from autopatch.errors import ApprovalError
from autopatch.links import sign_link
from autopatch.logic import notify
from autopatch.models import APPROVAL_REQUESTED, Operation
from autopatch.observability import logger
from autopatch.policy import Approver, FleetPolicy


def new_approval_id() -> str:
    return "apr-" + secrets.token_urlsafe(12)


def request_approval(
    op: Operation,
    task_token: str,
    *,
    ledger: Ledger,
    policy: FleetPolicy,
    notifier: Any,
    console_url: str,
    approval_mail: ApprovalMail | None = None,
) -> Operation:
    cluster_policy = policy.cluster(op.cluster.accountId, op.cluster.region, op.cluster.name)
    approvers = [a.name for a in cluster_policy.approvers] if cluster_policy else []
    approval_id = new_approval_id()
    ledger.put_approval(
        approval_id,
        {
            "taskToken": task_token,
            "clusterKey": op.cluster.key,
            "cluster": op.cluster.name,
            "opKey": op.op_sort_key,
            "component": f"{op.component.kind}/{op.component.name}",
            # A control-plane upgrade asks per hop: the approver decides on this one minor version.
            "fromVersion": op.hop.fromVersion if op.hop else op.fromVersion,
            "toVersion": op.hop.toVersion if op.hop else op.toVersion,
            "approvers": approvers,
            "execution": op.id,
        },
    )
    ledger.link_approval(op.cluster.key, op.id, approval_id)
    op.approval.id = approval_id
    payload = messages.approval_blocks(op, approval_id, approvers, console_url)
    summary = f"approval requested from {', '.join(approvers)}"
    op.notifications.append(
        notify.to_slack(
            op, payload, status="awaiting_approval", summary=summary, ledger=ledger, notifier=notifier
        )
    )
    op.notifications.append(
        notifier.sns(
            f"Approval needed: {op.cluster.name} {op.component.name} "
            f"{op.hop.toVersion if op.hop else op.toVersion}",
            messages.plain_text(op) + f"\n\nApprove with: autopatch approve {approval_id} --as <name>",
            status="awaiting_approval",
            attributes={
                "cluster": op.cluster.name,
                "status": "awaiting_approval",
                "approver": ",".join(approvers),
            },
        )
    )
    op.notifications.append(
        notifier.event(
            APPROVAL_REQUESTED,
            op.event_detail(approvalId=approval_id, approvers=approvers),
            status="awaiting_approval",
        )
    )
    ledger.note_approval_request(approval_id, [n.model_dump(mode="json") for n in op.notifications[-3:]])
    if approval_mail is not None and cluster_policy is not None:
        email_approval_links(op, approval_id, cluster_policy.approvers, approval_mail)
    return op


class ApprovalMail(Protocol):
    """The approvals topic (one filtered email subscription per approver) and the link key."""

    api_url: str

    def link_key(self) -> str: ...

    def publish(self, *, approver: str, subject: str, text: str) -> str: ...


def email_approval_links(
    op: Operation, approval_id: str, approvers: list[Approver], mail: ApprovalMail
) -> list[str]:
    """One message per approver with an email, each with a link of their own.

    The message carries the `approver` attribute that the approver's subscription filters on, so
    nobody receives another approver's link. The link names the approval and the approver (never
    the task token), is signed, works once and expires when the approval times out. It opens a
    confirmation page; only that page's button decides.
    """
    key = mail.link_key()
    if not key:
        logger.warning("approval links not sent: the link key is empty", extra={"approval": approval_id})
        return []
    expires_at = clock.now() + timedelta(seconds=op.approval.timeoutSeconds)
    source, target = (op.hop.fromVersion, op.hop.toVersion) if op.hop else (op.fromVersion, op.toVersion)
    sent = []
    for approver in approvers:
        if not approver.email:
            continue
        token = sign_link(key, approval_id, approver.name, expires_at)
        link = f"{mail.api_url}/approvals/confirm?token={token}"
        text = (
            f"{approver.name}, Autopatch asks for your approval.\n\n{messages.plain_text(op)}\n\n"
            f"Review and decide ({op.cluster.name} {op.component.name} {source} → {target}):\n{link}\n\n"
            "Opening the link decides nothing: the page it opens asks you to confirm. The link is "
            f"yours alone, works once and expires at {clock.iso(expires_at)}. You can also decide in "
            f"Slack, or with: autopatch approve {approval_id} --as {approver.name}"
        )
        sent.append(
            mail.publish(
                approver=approver.name,
                subject=f"Approval needed: {op.cluster.name} {op.component.name} {target}",
                text=text,
            )
        )
    logger.info("approval links emailed", extra={"approval": approval_id, "messages": len(sent)})
    return sent


def decision_outcome(item: dict[str, Any], approval_id: str, **decision: Any) -> dict[str, Any]:
    """What the waiting workflow receives: the decision plus what the request had sent."""
    return {
        "approvalId": approval_id,
        "decision": decision.get("verdict"),
        "by": decision.get("by"),
        "at": decision.get("at"),
        "reason": decision.get("reason"),
        "requestedAt": item.get("createdAt"),
        "notifications": json.loads(item.get("requestNotifications") or "[]"),
    }


@dataclass(frozen=True)
class Decision:
    approval_id: str
    decision: Literal["approved", "rejected"]
    by: str
    at: str
    reason: str | None
    cluster: str


def decide(
    approval_id: str,
    decision: Literal["approve", "reject", "approved", "rejected"],
    approver: str,
    reason: str | None,
    *,
    ledger: Ledger,
    policy: FleetPolicy,
    sfn: Any,
) -> Decision:
    """Record a decision and resume (or stop) the waiting workflow.

    Refused, with nothing changed: an unknown approval id, an approver not listed for the cluster,
    an approval already decided (the first decision wins) or expired.
    """
    verdicts: dict[str, Literal["approved", "rejected"]] = {
        "approve": "approved",
        "approved": "approved",
        "reject": "rejected",
        "rejected": "rejected",
    }
    if decision not in verdicts:
        raise ApprovalError(f"unknown decision {decision!r}: approve or reject")
    verdict = verdicts[decision]
    item = ledger.get_approval(approval_id)
    if item is None:
        raise ApprovalError(f"no approval {approval_id!r}")
    account, region, name = str(item["clusterKey"]).split("#", 2)
    cluster_policy = policy.cluster(account, region, name)
    listed = cluster_policy.approver(approver) if cluster_policy else None
    if listed is None:
        raise ApprovalError(f"{approver} is not an approver for {name}")
    if item.get("status") != "pending":
        raise ApprovalError(
            f"already {item.get('decision', item.get('status'))} by {item.get('decidedBy', '-')} "
            f"at {item.get('decidedAt', '-')}"
        )
    at = clock.now()
    if not ledger.close_approval(approval_id, decision=verdict, by=listed.name, at=at, reason=reason):
        fresh = ledger.get_approval(approval_id) or {}
        raise ApprovalError(
            f"already {fresh.get('decision')} by {fresh.get('decidedBy')} at {fresh.get('decidedAt')}"
        )
    outcome = decision_outcome(
        item, approval_id, verdict=verdict, by=listed.name, at=clock.iso(at), reason=reason
    )
    from botocore.exceptions import ClientError

    try:
        if verdict == "approved":
            sfn.send_task_success(taskToken=item["taskToken"], output=json.dumps(outcome))
        else:
            sfn.send_task_failure(
                taskToken=item["taskToken"], error="ApprovalRejected", cause=json.dumps(outcome)
            )
    except ClientError as exc:
        # The workflow stopped waiting (timed out or was stopped): the decision came too late and
        # must not stand in the record as if it had been acted on.
        ledger.void_late_decision(approval_id, decision=verdict, by=listed.name, at=at)
        raise ApprovalError(f"the operation no longer waits for a decision: {exc}") from exc
    return Decision(approval_id, verdict, listed.name, clock.iso(at), reason, name)
