"""Claim the target so that identical events start one update, not twenty."""

from __future__ import annotations

from autopatch.clients.ledger import Ledger
from autopatch.models import Operation


def claim_operation(op: Operation, *, ledger: Ledger) -> Operation:
    claimed, holder = ledger.claim_target(op)
    if claimed:
        return op
    holder = holder or {}
    return op.end(
        "skipped",
        "duplicate",
        f"{op.component.name} {op.toVersion} is already {holder.get('status', 'claimed')} "
        f"by execution {holder.get('holder', 'unknown')}.",
    )
