"""The rehearsal report (docs/report.md is the contract): JSON for tools, Markdown for people."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autopatch.models import Operation

STATUS_ORDER = ("succeeded", "rolled_back", "skipped", "blocked", "rejected", "failed", "running")


def _operation_entry(op: Operation, execution: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": op.id,
        "cluster": op.cluster.name,
        "accountId": op.cluster.accountId,
        "region": op.cluster.region,
        "component": op.component.model_dump(),
        "from": op.fromVersion,
        "to": op.toVersion,
        "status": op.status,
        "reason": op.reason,
        "message": op.message,
        "startedAt": op.startedAt.isoformat(),
        "endedAt": op.steps[-1].ended.isoformat() if op.steps else None,
        "steps": [
            {
                "name": s.name,
                "started": s.started.isoformat(),
                "ended": s.ended.isoformat(),
                "outcome": s.outcome,
            }
            for s in op.steps
        ],
        "checks": [c.model_dump() for c in op.checks],
        "approval": {
            "required": op.approval.required,
            "id": op.approval.id,
            "decision": op.approval.decision,
            "by": op.approval.by,
            "at": op.approval.at.isoformat() if op.approval.at else None,
            "reason": op.approval.reason,
        },
        "update": op.update.model_dump(),
        "nodegroup": op.nodegroup.model_dump() if op.nodegroup else None,
        "preserved_edits": [_edit(e) for e in op.preservedEdits],
        "parent": op.parent,
        "hops": [_hop_entry(hop) for hop in op.hops],
        "support": _support_entry(op),
        "deadline": op.deadline.isoformat() if op.deadline else None,
        "notifications": [n.model_dump(mode="json") for n in op.notifications],
        "execution": {
            "arn": op.executionArn,
            "status": (execution or {}).get("status"),
            "error": (execution or {}).get("error"),
        },
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _hop_entry(hop: Any) -> dict[str, Any]:
    approval = hop.approval
    return {
        "from": hop.fromVersion,
        "to": hop.toVersion,
        "status": hop.status,
        "reason": hop.reason,
        "updateId": hop.updateId,
        "checks": [c.model_dump() for c in hop.checks],
        "insights": hop.insights,
        "approval": (
            {
                "required": approval.required,
                "decision": approval.decision,
                "by": approval.by,
                "at": _iso(approval.at),
                "reason": approval.reason,
            }
            if approval is not None
            else None
        ),
        "startedAt": _iso(hop.startedAt),
        "endedAt": _iso(hop.endedAt),
        "durations": hop.durations(),
        "addons": [c.model_dump(mode="json") for c in hop.children if c.kind == "addon"],
        "nodegroups": [c.model_dump(mode="json") for c in hop.children if c.kind == "nodegroup"],
    }


def _support_entry(op: Operation) -> dict[str, Any] | None:
    if op.support is None:
        return None
    return {
        "versionStatus": op.support.versionStatus,
        "inExtendedSupport": op.support.in_extended_support,
        "supportType": op.support.supportType,
        "endOfStandardSupport": _iso(op.support.endOfStandardSupport),
        "endOfExtendedSupport": _iso(op.support.endOfExtendedSupport),
    }


def _edit(edit: Any) -> dict[str, Any]:
    return {
        "object": edit.object,
        "field": edit.path,
        "manager": edit.manager,
        "before": edit.before,
        "after": edit.after,
        "preserved": edit.before == edit.after,
    }


def _timeline_entry(event: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in event.items()}


def build_report(rehearsal: Any, engine: Any, simulator: Any, *, wall_seconds: float) -> dict[str, Any]:
    scenario = rehearsal.scenario
    eks_calls = dict(sorted(simulator.calls.items()))  # before the report's own reads below
    items = engine.ledger_items()
    executions = {e["executionArn"]: e for e in engine.executions()}
    operations = sorted(
        (Operation.model_validate_json(i["record"]) for i in items if str(i["sk"]).startswith("OP#")),
        key=lambda op: (op.startedAt, op.cluster.name, op.component.name, op.id),
    )
    entries = [_operation_entry(op, executions.get(op.executionArn)) for op in operations]
    known = {op.executionArn for op in operations}
    invalid = [
        {
            "execution": i["sk"],
            "receivedAt": i.get("receivedAt"),
            "problems": i.get("problems", []),
            "executionStatus": next(
                (e["status"] for arn, e in executions.items() if arn.endswith(":" + str(i["sk"]))), None
            ),
            "error": next(
                (e.get("error") for arn, e in executions.items() if arn.endswith(":" + str(i["sk"]))), None
            ),
        }
        for i in items
        if str(i["pk"]).startswith("INVALID#")
    ]
    unrecorded = [
        {"execution": arn, "status": e["status"], "error": e.get("error")}
        for arn, e in executions.items()
        if arn not in known and not any(arn.endswith(":" + x["execution"]) for x in invalid)
    ]
    clusters = []
    for seed in scenario.clusters:
        described = simulator.call("DescribeCluster", {"name": seed.name})["cluster"]
        components = []
        for name in simulator.call("ListAddons", {"clusterName": seed.name})["addons"]:
            addon = simulator.call("DescribeAddon", {"clusterName": seed.name, "addonName": name})["addon"]
            components.append(
                {"kind": "addon", "name": name, "version": addon["addonVersion"], "status": addon["status"]}
            )
        edits = [
            {**_edit(e), "operation": op.id}
            for op in operations
            if op.cluster.name == seed.name
            for e in op.preservedEdits
        ]
        nodegroups = []
        for group in seed.nodegroups:
            described_group = simulator.call(
                "DescribeNodegroup", {"clusterName": seed.name, "nodegroupName": group.name}
            )["nodegroup"]
            components.append(
                {
                    "kind": "nodegroup",
                    "name": group.name,
                    "version": described_group.get("releaseVersion"),
                    "status": described_group.get("status"),
                }
            )
            nodegroups.append(
                {
                    "name": group.name,
                    "amiType": described_group.get("amiType"),
                    "kubernetesVersion": described_group.get("version"),
                    "releaseVersion": described_group.get("releaseVersion"),
                    "timeline": [
                        _timeline_entry(e) for e in simulator.nodegroup_timeline(seed.name, group.name)
                    ],
                }
            )
        clusters.append(
            {
                "name": seed.name,
                "kubernetesVersion": described["version"],
                "platformVersion": described.get("platformVersion"),
                "supportType": (described.get("upgradePolicy") or {}).get("supportType"),
                "components": components,
                "nodegroups": nodegroups,
                "preserved_edits": edits,
            }
        )
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "simulatedStart": rehearsal.clock.start.isoformat(),
        "simulatedEnd": rehearsal.clock.now().isoformat(),
        "simulatedSeconds": rehearsal.clock.elapsed(),
        "wallSeconds": round(wall_seconds, 2),
        "summary": counts,
        "operations": entries,
        "clusters": clusters,
        "invalidEvents": invalid,
        "unrecordedExecutions": unrecorded,
        "watcherPasses": rehearsal.watcher_passes,
        "endOfSupportPasses": rehearsal.support_passes,
        "approvals": rehearsal.approver_log,
        "slackMessages": list(engine.slack.messages),
        "busEvents": engine.bus_events,
        "eksCalls": eks_calls,
        "unexpectedErrors": engine.unexpected_errors,
    }


def write_report(report: dict[str, Any], directory: Path, *, lambda_log: str = "") -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / "report.json"
    json_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    md_path = directory / "report.md"
    md_path.write_text(markdown(report))
    paths = [json_path, md_path]
    if lambda_log:
        log_path = directory / "lambda.log"
        log_path.write_text(lambda_log)
        paths.append(log_path)
    return paths


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    return f"{seconds // 60} min {seconds % 60:02d} s"


NODE_EVENTS = ("launched", "ready", "cordoned", "drain started", "drained", "terminated")


def _node_timeline(timeline: list[dict[str, Any]]) -> list[str]:
    """One row per node: when it was launched, Ready, cordoned, drained and terminated."""
    nodes: dict[str, dict[str, str]] = {}
    evicted: dict[str, int] = {}
    for event in timeline:
        row = nodes.setdefault(event["node"], {})
        name = str(event["event"])
        if name in NODE_EVENTS:
            row.setdefault(name, str(event["at"])[11:19])
        elif "evicted pod" in name:
            evicted[event["node"]] = evicted.get(event["node"], 0) + 1
    if not nodes:
        return ["No roll in this run."]
    lines = [
        "| node | " + " | ".join(NODE_EVENTS) + " | pods evicted |",
        "|---" * (len(NODE_EVENTS) + 2) + "|",
    ]
    for node, row in nodes.items():
        cells = " | ".join(row.get(e, "") for e in NODE_EVENTS)
        lines.append(f"| {node} | {cells} | {evicted.get(node, 0)} |")
    return lines


def _support_line(support: dict[str, Any] | None) -> str:
    if not support:
        return ""
    if support["inExtendedSupport"]:
        where = f"in **extended support** (costs more) until {str(support['endOfExtendedSupport'])[:10]}"
    elif support["versionStatus"] == "STANDARD_SUPPORT":
        where = f"in standard support until {str(support['endOfStandardSupport'])[:10]}"
    else:
        where = f"{support['versionStatus'] or 'support status unknown'}"
    return f"The version was {where}; upgrade policy supportType {support['supportType']}."


def _upgrade_lines(op: dict[str, Any]) -> list[str]:
    lines = [f"### {op['cluster']}: {op['from']} → {op['to']}, **{op['status']}** ({op['reason'] or ''})", ""]
    support = _support_line(op.get("support"))
    if support:
        lines += [support, ""]
    lines += ["| hop | status | approval | control plane | add-ons | node groups | total |", "|---" * 7 + "|"]
    for hop in op["hops"]:
        approval = hop.get("approval") or {}
        who = (
            f"{approval['decision']} by {approval['by']}"
            if approval.get("decision")
            else ("not required" if not approval.get("required") else "pending")
        )
        d = hop["durations"]
        cells = " | ".join(
            _duration(d[k]) if d[k] is not None else ""
            for k in ("controlPlane", "addons", "nodegroups", "total")
        )
        lines.append(f"| {hop['from']} → {hop['to']} | {hop['status']} | {who} | {cells} |")
    for hop in op["hops"]:
        lines += ["", f"Hop {hop['from']} → {hop['to']}:"]
        for check in hop["checks"]:
            mark = (
                "ok" if check["passed"] else ("**FAILED**" if check["severity"] == "required" else "warning")
            )
            lines.append(f"- {check['name']} ({check['severity']}): {mark}. {check['detail']}")
        for insight in hop.get("insights") or []:
            lines.append(
                f"- rollback readiness (information): {insight.get('name')}: {insight.get('status')}"
            )
        for child in hop["addons"] + hop["nodegroups"]:
            lines.append(
                f"- {child['kind']} {child['name']} {child['fromVersion']} → {child['toVersion']}: "
                f"{child['status']}" + (f" ({child['reason']})" if child.get("reason") else "")
            )
    lines.append("")
    return lines


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Rehearsal: {report['scenario']}",
        "",
        report.get("description") or "",
        "",
        f"Simulated {report['simulatedStart']} → {report['simulatedEnd']} "
        f"({_duration(report['simulatedSeconds'])}); wall time {report['wallSeconds']} s.",
        "",
        "## Operations",
        "",
        "| cluster | component | from → to | status | reason | approval |",
        "|---|---|---|---|---|---|",
    ]
    for op in report["operations"]:
        approval = op["approval"]
        who = (
            f"{approval['decision']} by {approval['by']}"
            if approval["decision"]
            else ("pending" if approval["required"] else "not required")
        )
        name = op["component"]["name"] if not op.get("parent") else f"↳ {op['component']['name']}"
        lines.append(
            f"| {op['cluster']} | {name} | {op['from']} → {op['to']} | "
            f"**{op['status']}** | {op['reason'] or ''} | {who} |"
        )
    upgrades = [op for op in report["operations"] if op.get("hops")]
    if upgrades:
        lines += ["", "## Control-plane upgrades", ""]
    for op in upgrades:
        lines += _upgrade_lines(op)
    lines += ["", "## Clusters after the run", ""]
    for cluster in report["clusters"]:
        versions = ", ".join(f"{c['name']} {c['version']}" for c in cluster["components"])
        lines.append(f"- **{cluster['name']}** (Kubernetes {cluster['kubernetesVersion']}): {versions}")
        for edit in cluster["preserved_edits"]:
            state = "preserved" if edit["preserved"] else "**changed**"
            lines.append(
                f"  - customer edit {edit['object']} `{edit['field']}` by {edit['manager']}: {state}"
            )
    for cluster in report["clusters"]:
        for group in cluster.get("nodegroups", []):
            lines += ["", f"## Node group {cluster['name']}/{group['name']}: {group['releaseVersion']}", ""]
            lines += _node_timeline(group["timeline"])
    not_tracked = {
        (item["cluster"], item["nodegroup"]): item
        for p in report["watcherPasses"]
        for item in p.get("notTracked", [])
    }
    if not_tracked:
        lines += ["", "## Node groups not tracked by release version", ""]
        for (cluster_name, group), item in sorted(not_tracked.items()):
            lines.append(f"- {cluster_name}/{group} ({item['amiType']}): {item['why']}")
    lines += ["", "## What happened, step by step", ""]
    for op in report["operations"]:
        lines.append(
            f"### {op['cluster']} {op['component']['name']} {op['from']} → {op['to']}: {op['status']}"
        )
        if op["message"]:
            lines.append("")
            lines.append(op["message"])
        lines.append("")
        for step in op["steps"]:
            lines.append(f"- {step['started'][11:19]} {step['name']}: {step['outcome']}")
        failed = [c for c in op["checks"] if not c["passed"]]
        for check in failed:
            lines.append(f"- check **{check['name']}** ({check['severity']}): {check['detail']}")
        lines.append("")
    if report["invalidEvents"]:
        lines += ["## Refused events", ""]
        for item in report["invalidEvents"]:
            lines.append(f"- {item['execution']}: {'; '.join(item['problems'])}")
        lines.append("")
    lines += ["## Slack messages", ""]
    lines += slack_histories(report["slackMessages"])
    return "\n".join(lines) + "\n"


def slack_histories(records: list[dict[str, Any]]) -> list[str]:
    """Each Slack message: what it said first, then each update in place, in order."""
    order: list[str] = []
    said: dict[str, list[str]] = {}
    for n, record in enumerate(records):
        ts = record.get("ts")
        updated = record.get("method") in ("chat.update", "response_url") and ts in said
        key = str(ts) if updated or record.get("method") == "chat.postMessage" else f"#{n}"
        if key not in said:
            order.append(key)
            said[key] = []
        said[key].append(str(record.get("text", "")))
    lines = []
    for key in order:
        first, *updates = said[key]
        lines += [f"- {first}", *(f"  - then: {text}" for text in updates)]
    return lines
