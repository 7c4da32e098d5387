"""`autopatch rehearse`: live progress, a summary table, the wall time and where the report is."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rehearsal.report import STATUS_ORDER
from rehearsal.scenario import ScenarioError, load_scenario


def rehearse(path: Path, *, approve: str | None, report_dir: Path | None, quiet: bool = False) -> int:
    from rich.console import Console
    from rich.table import Table

    # The console keeps the real stdout: while a handler runs, the engine captures what it prints.
    console = Console(
        file=sys.stdout, highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 150
    )
    try:
        scenario = load_scenario(path)
    except ScenarioError as exc:
        print(f"autopatch: {exc}", file=sys.stderr)
        return 2
    from rehearsal.run import Rehearsal

    report_dir = report_dir or Path("reports") / scenario.name
    mode = approve or scenario.approvals.mode
    console.print(f"[bold]Rehearsal: {scenario.name}[/bold] — simulated start {scenario.now.isoformat()}")
    console.print(
        f"{len(scenario.clusters)} clusters; approvals: {mode}"
        + (" (the cluster's first approver answers in Slack)" if mode == "auto" else "")
    )
    started = time.monotonic()
    rehearsal = Rehearsal(
        scenario,
        approve=approve,
        report_dir=report_dir,
        echo=(lambda line: None) if quiet else (lambda line: console.print(line, markup=False)),
    )
    result = rehearsal.run()
    wall = time.monotonic() - started
    report = result.report

    table = Table(title="Summary", show_lines=False)
    for column in ("cluster", "component", "from", "to", "status", "reason", "approved by"):
        table.add_column(column)
    for op in _parents_then_children(report["operations"]):
        if op.get("parent"):
            component, approved = (
                f"  ↳ {op['component']['kind']} {op['component']['name']}",
                "(the upgrade's)",
            )
        else:
            component = f"{op['component']['kind']} {op['component']['name']}"
            approvers = [
                h["approval"]["by"] for h in op.get("hops") or [] if (h.get("approval") or {}).get("by")
            ]
            approved = (
                ", ".join(approvers)
                or op["approval"]["by"]
                or ("—" if not op["approval"]["required"] else "(none)")
            )
        table.add_row(
            op["cluster"], component, op["from"], op["to"], op["status"], op["reason"] or "", approved
        )
    console.print(table)
    for op in report["operations"]:
        if op.get("hops"):
            hops = ", ".join(f"{h['from']} → {h['to']} {h['status']}" for h in op["hops"])
            support = op.get("support") or {}
            extended = " (was in extended support)" if support.get("inExtendedSupport") else ""
            console.print(f"Control-plane upgrade {op['cluster']}: {hops}{extended}")
    counts = ", ".join(f"{report['summary'][s]} {s}" for s in STATUS_ORDER if s in report["summary"])
    console.print(f"Operations: {counts or 'none'}")
    if report["invalidEvents"]:
        console.print(f"Refused events: {len(report['invalidEvents'])}")
    edits = [e for c in report["clusters"] for e in c["preserved_edits"]]
    if edits:
        kept = sum(1 for e in edits if e["preserved"])
        console.print(f"Customer edits preserved: {kept}/{len(edits)}")
    hours = report["simulatedSeconds"] / 3600
    console.print(f"Simulated time: {hours:.1f} h. Rehearsal wall time: {wall:.1f} s")
    for report_path in result.report_paths:
        console.print(f"Report: {report_path}")
    if report["unexpectedErrors"]:
        console.print(
            f"[red]{len(report['unexpectedErrors'])} unexpected errors in handlers; see lambda.log[/red]"
        )
        return 1
    if report["unrecordedExecutions"]:
        console.print(f"[red]{len(report['unrecordedExecutions'])} executions left no ledger record[/red]")
        return 1
    return 0


def _parents_then_children(operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The report's order, with each upgrade's add-on and node group steps right under it."""
    children: dict[str, list[dict[str, Any]]] = {}
    for op in operations:
        if op.get("parent"):
            children.setdefault(op["parent"], []).append(op)
    ordered = []
    for op in operations:
        if not op.get("parent"):
            ordered += [op, *children.pop(op["id"], [])]
    return ordered + [op for rest in children.values() for op in rest]
