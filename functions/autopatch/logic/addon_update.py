"""Apply, poll, verify and roll back an add-on update."""

from __future__ import annotations

import hashlib
from typing import Any

from autopatch.addons import ADDON_OBJECTS
from autopatch.clients.eks import Eks
from autopatch.clients.ledger import Ledger
from autopatch.errors import UpdateRejected
from autopatch.fields import get_path, parse_path
from autopatch.logic.addon_checks import customer_edits, workload_state
from autopatch.logic.lock import LEASE_SECONDS
from autopatch.models import EditedField, Operation, UpdateState

POLL_FIRST_SECONDS = 15
POLL_MAX_SECONDS = 120
VERIFY_ATTEMPTS = 6
VERIFY_WAIT_SECONDS = 60


def request_token(op: Operation, step: str, version: str) -> str:
    """Idempotency token: the same execution, step and target never start two updates.

    EKS takes at most 64 characters: a longer one keeps its start and ends with a digest of the
    whole, so that the steps of one upgrade (long ids, one shared prefix) never share a token."""
    token = f"{op.id}:{step}:{version}"
    if len(token) <= 64:
        return token
    return f"{token[:47]}~{hashlib.sha256(token.encode()).hexdigest()[:16]}"


def _start_update(
    op: Operation, *, eks: Eks, version: str, step: str, resolve_conflicts: str
) -> dict[str, Any]:
    update = eks.update_addon(
        op.cluster.name,
        op.component.name,
        version,
        resolve_conflicts=resolve_conflicts,
        token=request_token(op, step, version),
    )
    op.update = UpdateState(
        id=update["id"], type=update.get("type"), status=update["status"], toVersion=version
    )
    op.poll.attempt = 0
    op.poll.waitSeconds = POLL_FIRST_SECONDS
    return update


def apply_update(op: Operation, *, eks: Eks) -> Operation:
    try:
        _start_update(op, eks=eks, version=op.toVersion, step="apply", resolve_conflicts=op.resolveConflicts)
    except UpdateRejected as exc:
        return op.end("failed", "update_rejected", f"EKS refused the update: {exc}")
    return op


def poll_update(op: Operation, *, eks: Eks, ledger: Ledger) -> Operation:
    if op.lockHeld:
        ledger.renew_lock(op.cluster.key, op.lock_holder, LEASE_SECONDS)
    if op.component.kind == "control-plane":
        update = eks.describe_update(op.cluster.name, str(op.update.id))
    elif op.component.kind == "nodegroup":
        update = eks.describe_update(op.cluster.name, str(op.update.id), nodegroup=op.component.name)
    else:
        update = eks.describe_update(op.cluster.name, str(op.update.id), addon=op.component.name)
    op.update.status = update["status"]
    op.update.errors = [
        {k: e.get(k) for k in ("errorCode", "errorMessage", "resourceIds")} for e in update.get("errors", [])
    ]
    op.update.errorCode = str(op.update.errors[0].get("errorCode") or "") if op.update.errors else ""
    op.poll.attempt += 1
    op.poll.waitSeconds = min(POLL_MAX_SECONDS, int(POLL_FIRST_SECONDS * 1.5**op.poll.attempt))
    if op.update.status == "Successful" and op.phase == "config" and op.nodegroup is not None:
        # The node group's updateConfig is in place; the version update comes next.
        op.nodegroup.configChange = False
        op.nodegroup.updateConfig = dict(op.nodegroup.desiredUpdateConfig or op.nodegroup.updateConfig)
        op.phase = "update"
        return op
    if op.update.status in ("Failed", "Cancelled"):
        said = "; ".join(f"{e['errorCode']}: {e['errorMessage']}" for e in op.update.errors) or "no detail"
        if op.phase == "rollback":
            return op.end(
                "failed", "rollback_failed", f"The rollback to {op.update.toVersion} failed: {said}"
            )
        return op.end("failed", "update_failed", f"EKS reported the update {op.update.status}: {said}")
    return op


def verify_update(op: Operation, *, eks: Eks, kube: Any) -> Operation:
    """EKS says ACTIVE with no health issues; workloads rolled out; customer edits unchanged."""
    expected = op.update.toVersion or op.toVersion
    findings: list[str] = []
    addon = eks.describe_addon(op.cluster.name, op.component.name) or {}
    if addon.get("status") != "ACTIVE":
        findings.append(f"add-on status is {addon.get('status')}")
    if addon.get("addonVersion") != expected:
        findings.append(f"add-on runs {addon.get('addonVersion')}, expected {expected}")
    issues = (addon.get("health") or {}).get("issues") or []
    findings += [f"health issue {i.get('code')}: {i.get('message')}" for i in issues]
    for ref in ADDON_OBJECTS.get(op.component.name, ()):
        obj = kube.get(ref.kind, ref.namespace, ref.name)
        if obj is None:
            findings.append(f"{ref} is missing")
            continue
        state = workload_state(obj)
        if state is not None and not state.rolled_out:
            findings.append(f"{state.object}: {state.ready}/{state.desired} ready, {state.updated} updated")
    op.preservedEdits = compare_edits(op.baseline.edits, kube)
    # With OVERWRITE (only where a cluster's policy asks for it) EKS resets edits on purpose.
    lost = [e for e in op.preservedEdits if e.before != e.after and op.resolveConflicts == "PRESERVE"]
    findings += [f"customer edit lost: {e.object} {e.path}" for e in lost]
    op.verify.attempt += 1
    op.verify.findings = findings
    op.verify.passed = not findings
    # Pods take a while to roll after EKS says Successful: look again before calling it a failure.
    op.verify.retry = bool(findings) and not lost and op.verify.attempt < VERIFY_ATTEMPTS
    op.verify.waitSeconds = VERIFY_WAIT_SECONDS
    if op.verify.passed:
        if op.phase == "rollback":
            return op.end(
                "rolled_back",
                op.reason or "verify_failed",
                f"Back on {op.fromVersion} after {op.toVersion} failed verification.",
            )
        return op.end("succeeded", "updated", f"{op.component.name} runs {expected}.")
    if op.verify.retry:
        return op
    summary = "; ".join(findings[:5])
    if op.phase == "rollback":
        return op.end("failed", "rollback_failed", f"The rollback did not verify: {summary}")
    if lost:
        op.reason = "edits_lost"
    else:
        op.reason = "verify_failed"
    op.message = f"Verification failed: {summary}"
    if not op.rollbackOnFailure:
        return op.end("failed", op.reason, op.message)
    return op  # still running: the ASL goes to Rollback


def compare_edits(before: list[EditedField], kube: Any) -> list[EditedField]:
    """The customer's fields as they are now, next to what they were before the update."""
    current: dict[tuple[str, str], Any] = {}
    objects: dict[str, dict[str, Any] | None] = {}
    for edit in before:
        if edit.object not in objects:
            kind, rest = edit.object.split(" ", 1)
            namespace, name = rest.split("/", 1)
            objects[edit.object] = kube.get(kind, namespace, name)
        obj = objects[edit.object]
        current[(edit.object, edit.path)] = (
            None if obj is None else get_path(obj, tuple(edit.steps) or parse_path(edit.path), None)
        )
    after_managers = {
        (e.object, e.path): e.manager for obj in objects.values() if obj for e in customer_edits(obj)
    }
    return [
        EditedField(
            object=e.object,
            path=e.path,
            steps=e.steps,
            manager=after_managers.get((e.object, e.path), e.manager),
            before=e.before,
            after=current[(e.object, e.path)],
        )
        for e in before
    ]


def start_rollback(op: Operation, *, eks: Eks) -> Operation:
    """Back to the version before the update, with PRESERVE, then poll and verify again."""
    op.phase = "rollback"
    try:
        _start_update(op, eks=eks, version=op.fromVersion, step="rollback", resolve_conflicts="PRESERVE")
    except UpdateRejected as exc:
        return op.end("failed", "rollback_failed", f"EKS refused the rollback to {op.fromVersion}: {exc}")
    op.verify.attempt = 0
    op.verify.passed = False
    return op
