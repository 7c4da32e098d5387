"""What people read: Slack Block Kit and plain-text summaries of an operation, in plain words."""

from __future__ import annotations

from typing import Any

from autopatch.models import Operation

MAX_CHECKS_SHOWN = 8
SECTION_LIMIT = 3000

STATUS_WORDS = {
    "running": "in progress",
    "succeeded": "patched",
    "failed": "failed",
    "rolled_back": "rolled back",
    "rejected": "rejected",
    "skipped": "skipped",
    "blocked": "blocked before any change",
}
STATUS_EMOJI = {
    "running": ":hourglass_flowing_sand:",
    "succeeded": ":white_check_mark:",
    "failed": ":x:",
    "rolled_back": ":leftwards_arrow_with_hook:",
    "rejected": ":no_entry_sign:",
    "skipped": ":fast_forward:",
    "blocked": ":octagonal_sign:",
}


def headline(op: Operation) -> str:
    return (
        f"{op.cluster.name}: {op.component.name} {op.fromVersion} → {op.toVersion} "
        f"{STATUS_WORDS.get(op.status, op.status)}"
    )


def explanation(op: Operation) -> str:
    """One or two sentences on why the run ended the way it did."""
    parts = []
    if op.reason:
        parts.append(f"Reason: `{op.reason}`.")
    if op.message:
        parts.append(escape(op.message))
    if op.approval.decision:
        by = op.approval.by or "unknown"
        parts.append(f"{op.approval.decision.capitalize()} by {by}.")
    if op.preservedEdits:
        kept = sum(1 for e in op.preservedEdits if e.before == e.after)
        parts.append(f"Customer edits preserved: {kept}/{len(op.preservedEdits)}.")
    return " ".join(parts)[:SECTION_LIMIT]


MAX_DETAIL = 300


def escape(text: str) -> str:
    """Slack mrkdwn reserves &, < and >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nodegroup_lines(op: Operation, limit: int = MAX_CHECKS_SHOWN) -> list[str]:
    """What a person must know about a node group roll: pods that block, pods force would delete,
    and what held the nodes EKS could not drain."""
    plan = op.nodegroup
    if plan is None:
        return []
    lines: list[str] = []

    def listed(title: str, items: list[str]) -> None:
        if items:
            shown = [escape(i) for i in items[:limit]]
            more = f"\n+{len(items) - limit} more" if len(items) > limit else ""
            lines.append(f"*{title}*\n" + "\n".join(f"• {i}" for i in shown) + more)

    if plan.force:
        listed("With force=true these pods are deleted, not evicted", plan.forcePods)
    elif plan.blocking and op.status == "blocked":
        listed("Pods that would block the drain", [f"{b.pod} on {b.node}: {b.why}" for b in plan.blocking])
    listed("What held the nodes EKS could not drain", plan.evictionFailure)
    return lines


def check_lines(op: Operation, budget: int = SECTION_LIMIT - 20) -> list[str]:
    """One line per check, failed ones with their evidence; what does not fit is counted, not cut."""
    lines = []
    # What stopped the run first, then what a person should look at, then what passed.
    ordered = sorted(op.checks, key=lambda c: (c.passed, c.severity != "required"))
    for c in ordered:
        detail = c.detail if len(c.detail) <= MAX_DETAIL else c.detail[: MAX_DETAIL - 1] + "…"
        mark = "✅" if c.passed else ("⛔" if c.severity == "required" else "⚠️")
        lines.append(f"{mark} {c.name}" + (f": {escape(detail)}" if detail and not c.passed else ""))
    shown: list[str] = []
    used = 0
    for line in lines[:MAX_CHECKS_SHOWN]:
        if used + len(line) + 1 > budget:
            break
        shown.append(line)
        used += len(line) + 1
    hidden = len(lines) - len(shown)
    return [*shown, f"+{hidden} more"] if hidden else shown


def support_line(op: Operation) -> str:
    """Where the version stands in EKS support: extended support costs more, and STANDARD means EKS
    upgrades the cluster by itself when standard support ends."""
    support = op.support
    if support is None:
        return ""
    if support.in_extended_support:
        until = support.endOfExtendedSupport.date().isoformat() if support.endOfExtendedSupport else "?"
        where = f"{op.fromVersion} is in extended support (billed at the higher rate) until {until}"
    elif support.versionStatus == "STANDARD_SUPPORT":
        until = support.endOfStandardSupport.date().isoformat() if support.endOfStandardSupport else "?"
        where = f"{op.fromVersion} is in standard support until {until}"
    else:
        where = f"{op.fromVersion}: {support.versionStatus or 'support status unknown'}"
    return f"{where}; upgrade policy: {support.supportType or 'unknown'}."


def hop_lines(op: Operation) -> list[str]:
    """One line per hop: versions, outcome, who approved, how long each part took."""
    lines = []
    for hop in op.hops:
        durations = hop.durations()
        parts = [
            f"{label} {seconds // 60} min"
            for key, label in (
                ("controlPlane", "control plane"),
                ("addons", "add-ons"),
                ("nodegroups", "nodes"),
            )
            if (seconds := durations[key]) is not None
        ]
        approval = hop.approval or (op.approval if hop is op.hop else None)
        who = f", {approval.decision} by {approval.by}" if approval and approval.decision else ""
        steps = [f"{c.name} {c.status}" for c in hop.children if c.status != "succeeded"]
        done = sum(1 for c in hop.children if c.status == "succeeded")
        lines.append(
            f"• {hop.fromVersion} → {hop.toVersion}: {hop.status}{who}"
            + (f" ({', '.join(parts)})" if parts else "")
            + (f"; {done} add-on/node group steps done" if done else "")
            + (f"; {escape(', '.join(steps))}" if steps else "")
        )
    return lines


def _detail_sections(op: Operation) -> list[dict[str, Any]]:
    """The hops and support status of an upgrade, the checks, then what a node group roll needs a
    person to know."""
    checks = check_lines(op)
    upgrade = []
    if op.hops:
        upgrade.append("*Hops*\n" + "\n".join(hop_lines(op)[:20]))
    if support_line(op):
        upgrade.append(support_line(op))
    texts = upgrade + (["*Checks*\n" + "\n".join(checks)] if checks else []) + nodegroup_lines(op)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": t[:SECTION_LIMIT]}} for t in texts]


def _execution_link(op: Operation, console_url: str) -> str:
    return f"<{console_url}#/v2/executions/details/{op.executionArn}|execution {op.id}>"


def operation_blocks(op: Operation, console_url: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{STATUS_EMOJI.get(op.status, '')} *{headline(op)}*"},
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Cluster*\n{op.cluster.name} ({op.cluster.region})"},
                {"type": "mrkdwn", "text": f"*Component*\n{op.component.kind} {op.component.name}"},
                {"type": "mrkdwn", "text": f"*Version*\n{op.fromVersion} → {op.toVersion}"},
                {"type": "mrkdwn", "text": f"*Status*\n{op.status}"},
            ],
        },
    ]
    why = explanation(op)
    if why:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": why}})
    blocks += _detail_sections(op)
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _execution_link(op, console_url)}]}
    )
    return {"text": headline(op), "blocks": blocks}


def approval_blocks(
    op: Operation, approval_id: str, approvers: list[str], console_url: str
) -> dict[str, Any]:
    versions = (
        f"{op.hop.fromVersion} → {op.hop.toVersion}" if op.hop else f"{op.fromVersion} → {op.toVersion}"
    )
    ask = (
        f":raised_hand: *Approval needed: {op.cluster.name} {op.component.name} "
        f"{versions}*\nApprovers: {', '.join(approvers)}. "
        f"Or from a shell: `autopatch approve {approval_id} --as <name>`"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": ask[:SECTION_LIMIT]}},
    ]
    blocks += _detail_sections(op)
    blocks.append(
        {
            "type": "actions",
            "block_id": f"approval:{approval_id}",
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": approval_id,
                },
                {
                    "type": "button",
                    "action_id": "reject",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "value": approval_id,
                },
            ],
        }
    )
    blocks.append(
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _execution_link(op, console_url)}]}
    )
    return {"text": f"Approval needed: {op.cluster.name} {op.component.name}", "blocks": blocks}


def plain_text(op: Operation) -> str:
    lines = [
        headline(op),
        "",
        f"Cluster:   {op.cluster.name} ({op.cluster.accountId}, {op.cluster.region})",
        f"Component: {op.component.kind} {op.component.name}",
        f"Version:   {op.fromVersion} -> {op.toVersion}",
        f"Status:    {op.status}" + (f" ({op.reason})" if op.reason else ""),
    ]
    why = explanation(op)
    if why:
        lines += ["", why]
    if support_line(op):
        lines += ["", support_line(op)]
    if op.hops:
        lines += ["", "Hops:"] + [f"  {line.lstrip('• ')}" for line in hop_lines(op)]
    plan = op.nodegroup
    if plan is not None and plan.force:
        lines += ["", "With force=true these pods are deleted, not evicted:"] + [
            f"  {p}" for p in plan.forcePods
        ]
    if plan is not None and plan.evictionFailure:
        lines += ["", "What held the nodes EKS could not drain:"] + [f"  {x}" for x in plan.evictionFailure]
    if op.checks:
        lines += ["", "Checks:"] + [
            f"  [{'ok' if c.passed else 'FAIL'}] {c.name} ({c.severity}){': ' + c.detail if c.detail else ''}"
            for c in op.checks
        ]
    lines += ["", f"Execution: {op.executionArn}"]
    return "\n".join(lines)
