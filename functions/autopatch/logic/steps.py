"""Bookkeeping every step shares: a timed step record, saved to the ledger with the operation."""

from __future__ import annotations

from collections.abc import Callable

from autopatch import clock
from autopatch.clients.ledger import Ledger
from autopatch.models import Operation, StepRecord


def run_step(name: str, op: Operation, ledger: Ledger, body: Callable[[Operation], Operation]) -> Operation:
    """Run `body`, append a step record (name, start, end, outcome) and save the operation.

    Exceptions propagate (the ASL retries or catches them by name); the attempt is still recorded.
    """
    started = clock.now()
    try:
        result = body(op)
    except Exception as exc:
        op.steps.append(StepRecord(name=name, started=started, ended=clock.now(), outcome=type(exc).__name__))
        ledger.save_operation(op)
        raise
    result.steps.append(StepRecord(name=name, started=started, ended=clock.now(), outcome=outcome_of(result)))
    ledger.save_operation(result)
    return result


def outcome_of(op: Operation) -> str:
    if op.status != "running":
        return f"{op.status}:{op.reason}" if op.reason else op.status
    return "ok"
