"""The per-cluster lease: one change at a time per cluster, freed by itself if a run dies."""

from __future__ import annotations

from autopatch import clock
from autopatch.clients.ledger import Ledger
from autopatch.errors import ClusterBusy, LockWaitExpired
from autopatch.models import Operation, StepRecord

# Renewed on every poll, so a crashed run frees the cluster within one lease.
LEASE_SECONDS = 15 * 60


def take_lock(op: Operation, *, ledger: Ledger) -> Operation:
    # The wait starts when the operation was ready for the lock: after preflight, or after the
    # approval (time spent waiting for a person does not use up the lock budget).
    ready_at = op.approval.at or (op.steps[-1].ended if op.steps else op.startedAt)
    holder = ledger.acquire_lock(op.cluster.key, op.lock_holder, LEASE_SECONDS)
    now = clock.now()
    if holder is None:
        op.lockHeld = True
        waited = (now - ready_at).total_seconds()
        if waited >= 1:
            op.steps.append(
                StepRecord(
                    name="lock_wait", started=ready_at, ended=now, outcome=f"cluster busy for {int(waited)} s"
                )
            )
        return op
    waited = (now - ready_at).total_seconds()
    if waited >= op.lockWaitBudget:
        raise LockWaitExpired(
            f"{op.cluster.name} stayed busy (held by {holder.get('holder')}) for {int(waited)} s, "
            f"longer than the lockWaitBudget of {op.lockWaitBudget} s"
        )
    raise ClusterBusy(f"{op.cluster.name} is being changed by {holder.get('holder')}")


def release_lock(op: Operation, *, ledger: Ledger) -> Operation:
    if op.lockHeld:
        ledger.release_lock(op.cluster.key, op.lock_holder)
        op.lockHeld = False
    return op
