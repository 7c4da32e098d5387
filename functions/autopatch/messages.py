"""What people read: Slack Block Kit and plain-text summaries of an operation, in plain words."""

from __future__ import annotations

from typing import Any

from autopatch.models import Operation

MAX_CHECKS_SHOWN = 8
SECTION_LIMIT = 3000
TEXT_LIMIT = 4000  # the top-level `text`, the notification fallback

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

# Where an operation stands, as its Slack message says it: the run's progress, then how it ended.
STATES = (
    "awaiting_approval",
    "approved",
    "applying",
    "verifying",
    "succeeded",
    "failed",
    "rolled_back",
    "rejected",
    "timed_out",
    "blocked",
    "skipped",
)
PROGRESS_STATES = ("running", "awaiting_approval", "approved", "applying", "verifying")
STATE_WORDS = {
    **STATUS_WORDS,
    "awaiting_approval": "awaiting approval",
    "approved": "approved",
    "applying": "applying",
    "verifying": "verifying",
    "timed_out": "not approved in time",
}
STATE_EMOJI = {
    **STATUS_EMOJI,
    "awaiting_approval": ":raised_hand:",
    "approved": ":+1:",
    "applying": ":gear:",
    "verifying": ":mag:",
    "timed_out": ":hourglass:",
}


def state_of(op: Operation) -> str:
    """Where the operation stands, from its record: how it ended, or how far a running one got."""
    if op.status == "rejected":
        return "timed_out" if op.reason == "approval_timeout" else "rejected"
    if op.status != "running":
        return op.status
    if op.approval.required and op.approval.decision is None and op.approval.id:
        return "awaiting_approval"
    if op.verify.attempt or op.verify.findings:
        return "verifying"
    if op.update.id:
        return "applying"
    if op.approval.decision == "approved":
        return "approved"
    return "running"


def headline(op: Operation, state: str | None = None) -> str:
    """`<cluster>: <component> <from> → <to> <what happened>`; `state` defaults to how it ended."""
    words = STATE_WORDS.get(state, state) if state else STATUS_WORDS.get(op.status, op.status)
    if (state or op.status) in ("approved", "rejected") and op.approval.decision and op.approval.by:
        words += f" by {op.approval.by}"
    return f"{op.cluster.name}: {op.component.name} {op.fromVersion} → {op.toVersion} {words}"[:TEXT_LIMIT]


def decision_line(op: Operation, state: str | None = None) -> str:
    """Who decided, in one line: "Approved by alice.", "Rejected by bob: not today.", or the timeout."""
    if (state or state_of(op)) == "timed_out":
        hours = op.approval.timeoutSeconds / 3600
        return f"Nobody decided within {hours:g} h (approval_timeout), so nothing changed."
    if not op.approval.decision:
        return ""
    by = escape(op.approval.by or "unknown")
    why = escape(op.approval.reason or "")
    if op.approval.decision == "rejected" and why:
        return f"Rejected by {by}: {why}"[:MAX_DETAIL] + ("" if why.endswith(".") else ".")
    return f"{op.approval.decision.capitalize()} by {by}."


def explanation(op: Operation, state: str | None = None) -> str:
    """One or two sentences on why the run ended the way it did (or where it stands)."""
    state = state or state_of(op)
    parts = []
    decided = decision_line(op, state)
    if state == "timed_out":
        parts.append(decided)
    else:
        if op.reason and state not in PROGRESS_STATES:
            parts.append(f"Reason: `{op.reason}`.")
        # "Rejected by bob (…)." is what the decision line says, better.
        repeated = bool(decided) and (op.message or "").startswith("Rejected by")
        if op.message and state not in PROGRESS_STATES and not repeated:
            parts.append(escape(op.message))
        if decided:
            parts.append(decided)
    if op.preservedEdits and state not in PROGRESS_STATES:
        kept = sum(1 for e in op.preservedEdits if e.before == e.after)
        parts.append(f"Customer edits preserved: {kept}/{len(op.preservedEdits)}.")
    return " ".join(parts)[:SECTION_LIMIT]


def why_now(op: Operation) -> str:
    """Why this change is on the way: the announcement, and the deadline if there is one."""
    since = op.detectedAt.date().isoformat()
    if op.component.kind == "control-plane":
        what = f"Kubernetes {op.fromVersion} is nearing its end of support (announced {since})"
    elif op.component.kind == "nodegroup":
        what = f"EKS published AMI release {op.toVersion} (seen {since})"
    else:
        what = f"EKS offers {op.component.name} {op.toVersion} (seen {since})"
    deadline = f"; deadline {op.deadline.date().isoformat()}" if op.deadline else ""
    return escape(f"{what}{deadline}.")


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


def _status_field(op: Operation, state: str) -> str:
    if op.status == "running":  # where it stands (applying, or approved by the decider)
        return state.replace("_", " ")
    return op.status + (" (approval_timeout)" if state == "timed_out" else "")


def operation_blocks(op: Operation, console_url: str, *, state: str | None = None) -> dict[str, Any]:
    """The operation's one Slack message, as it reads in `state` (derived from the record if not
    given): what changes where, where it stands, who decided, why now, the checks and the link."""
    state = state or state_of(op)
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"{STATE_EMOJI.get(state, '')} *{escape(headline(op, state))}*"[:SECTION_LIMIT],
            },
        },
        _fields(op, _status_field(op, state)),
    ]
    why = explanation(op, state)
    if why:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": why}})
    blocks += _detail_sections(op)
    blocks.append(_footer(op, console_url))
    return {"text": headline(op, state), "blocks": blocks[:50]}


def _fields(op: Operation, status: str) -> dict[str, Any]:
    def field(title: str, value: str) -> dict[str, str]:
        return {"type": "mrkdwn", "text": f"*{title}*\n{escape(value)}"[:2000]}

    return {
        "type": "section",
        "fields": [
            field("Cluster", f"{op.cluster.name} ({op.cluster.region})"),
            field("Component", f"{op.component.kind} {op.component.name}"),
            field("Version", f"{op.fromVersion} → {op.toVersion}"),
            field("Status", status),
        ],
    }


def _footer(op: Operation, console_url: str) -> dict[str, Any]:
    """Why now, and the execution to look at."""
    return {
        "type": "context",
        "elements": [
            {"type": "mrkdwn", "text": _execution_link(op, console_url)[:SECTION_LIMIT]},
            {"type": "mrkdwn", "text": f"Why now: {why_now(op)}"[:SECTION_LIMIT]},
        ],
    }


def approval_blocks(
    op: Operation, approval_id: str, approvers: list[str], console_url: str
) -> dict[str, Any]:
    """The approval request: the operation's message with Approve and Reject buttons (each carrying
    the approval id) and an optional reason that a Reject click sends along in `state.values`."""
    versions = (
        f"{op.hop.fromVersion} → {op.hop.toVersion}" if op.hop else f"{op.fromVersion} → {op.toVersion}"
    )
    ask = (
        f":raised_hand: *Approval needed: {escape(op.cluster.name)} {escape(op.component.name)} "
        f"{versions}*\nApprovers: {escape(', '.join(approvers))}. "
        f"Or from a shell: `autopatch approve {approval_id} --as <name>`"
    )
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": ask[:SECTION_LIMIT]}},
        _fields(op, "awaiting approval"),
    ]
    blocks += _detail_sections(op)
    blocks.append(
        {
            "type": "input",
            "block_id": f"reason:{approval_id}"[:255],
            "optional": True,
            "label": {"type": "plain_text", "text": "Reason (optional, sent with Reject)"},
            "element": {
                "type": "plain_text_input",
                "action_id": "reason",
                "max_length": 500,
                "placeholder": {"type": "plain_text", "text": "Why not now?"},
            },
        }
    )
    blocks.append(
        {
            "type": "actions",
            "block_id": f"approval:{approval_id}"[:255],
            "elements": [
                {
                    "type": "button",
                    "action_id": "approve",
                    "style": "primary",
                    "text": {"type": "plain_text", "text": "Approve"},
                    "value": approval_id[:2000],
                },
                {
                    "type": "button",
                    "action_id": "reject",
                    "style": "danger",
                    "text": {"type": "plain_text", "text": "Reject"},
                    "value": approval_id[:2000],
                },
            ],
        }
    )
    blocks.append(_footer(op, console_url))
    text = f"Approval needed: {op.cluster.name} {op.component.name} {versions}"
    return {"text": text[:TEXT_LIMIT], "blocks": blocks[:50]}


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
