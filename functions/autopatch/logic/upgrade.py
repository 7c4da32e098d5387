"""The control-plane upgrade's bookkeeping between the shared steps.

After the control plane of a hop is on its new version, the hop's add-ons go next (each to the
newest version offered for the new Kubernetes version that is not older than the installed one;
vpc-cni one minor per step), then every managed node group (to the recommended AMI release of the
new version). Each is an operation of its own (`parent` = the upgrade's id) that runs through the
same preflight, apply, poll, verify and notify Lambdas inside the upgrade's execution, under the
upgrade's lease. `next_child` hands them out one at a time; `fold_child` records each in the hop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autopatch import clock
from autopatch.amis import not_tracked_reason, release_parameter
from autopatch.clients import aws
from autopatch.clients.eks import Eks
from autopatch.logic.watcher import choose_target
from autopatch.models import (
    Approval,
    ChildResult,
    Operation,
    PlannedChild,
    PollState,
    UpdateState,
    VerifyState,
)
from autopatch.services import Services

SsmReader = Callable[[str, str], str | None]
# A step that ended like this leaves the hop unfinished.
_FINE = ("succeeded", "skipped")


def run_action(action: str, op: Operation, svc: Services) -> Operation:
    eks = svc.eks_for(op.cluster.region)
    if action == "plan_addons":
        return plan_addons(op, eks=eks)
    if action == "next_child":
        return next_child(op, eks=eks, ssm_parameter=aws.ssm_parameter)
    if action == "fold_child":
        return fold_child(op)
    if action == "finish_hop":
        return finish_hop(op)
    raise ValueError(f"unknown upgrade action {action!r}")


def plan_addons(op: Operation, *, eks: Eks) -> Operation:
    """The control plane is on the hop's version: plan each installed add-on's move."""
    hop = op.hop
    assert hop is not None, "plan_addons before preflight"
    now = clock.now()
    hop.controlPlaneEnded = hop.controlPlaneEnded or now
    hop.addonsStarted = now
    op.stage = "addons"
    op.kubernetesVersion = hop.toVersion
    op.pending = []
    for name in eks.list_addons(op.cluster.name):
        addon = eks.describe_addon(op.cluster.name, name) or {}
        installed = str(addon.get("addonVersion", ""))
        target = choose_target(name, installed, eks.addon_versions(name, hop.toVersion), hop.toVersion)
        if target is not None:
            op.pending.append(PlannedChild(kind="addon", name=name, fromVersion=installed, toVersion=target))
    return op


def _plan_nodegroups(op: Operation, *, eks: Eks, ssm_parameter: SsmReader) -> None:
    hop = op.hop
    assert hop is not None
    now = clock.now()
    hop.addonsEnded = hop.addonsEnded or now
    hop.nodegroupsStarted = now
    op.stage = "nodegroups"
    releases: dict[str, str | None] = {}
    for name in eks.list_nodegroups(op.cluster.name):
        nodegroup = eks.describe_nodegroup(op.cluster.name, name) or {}
        ami_type, current = str(nodegroup.get("amiType", "CUSTOM")), str(nodegroup.get("releaseVersion", ""))
        if str(nodegroup.get("version")) == hop.toVersion:
            continue
        untracked = not_tracked_reason(ami_type)
        parameter = release_parameter(ami_type, hop.toVersion)
        if untracked is not None or parameter is None:
            hop.children.append(
                ChildResult(
                    id=_child_id(op, "nodegroup", name),
                    kind="nodegroup",
                    name=name,
                    fromVersion=str(nodegroup.get("version")),
                    toVersion=hop.toVersion,
                    status="blocked",
                    reason="not_tracked",
                    message=f"{untracked or f'no {ami_type} AMI for {hop.toVersion}'}: its owner must "
                    f"move it to {hop.toVersion} before the next hop",
                    startedAt=now,
                    endedAt=now,
                )
            )
            continue
        if ami_type not in releases:
            releases[ami_type] = ssm_parameter(op.cluster.region, parameter)
        target = releases[ami_type]
        if target is None:
            hop.children.append(
                ChildResult(
                    id=_child_id(op, "nodegroup", name),
                    kind="nodegroup",
                    name=name,
                    fromVersion=current,
                    toVersion=hop.toVersion,
                    status="blocked",
                    reason="no_release",
                    message=f"AWS publishes no {ami_type} release for {hop.toVersion} ({parameter})",
                    startedAt=now,
                    endedAt=now,
                )
            )
            continue
        op.pending.append(PlannedChild(kind="nodegroup", name=name, fromVersion=current, toVersion=target))


def _child_id(op: Operation, kind: str, name: str) -> str:
    return f"{op.id}.hop{len(op.hops)}.{kind}.{name}"


def next_child(op: Operation, *, eks: Eks, ssm_parameter: SsmReader) -> Operation:
    """Hand out the next step of the hop at `$.child`; after the last, move to verify."""
    hop = op.hop
    assert hop is not None, "next_child before preflight"
    op.child = None
    if op.status != "running":
        return op
    if not op.pending and op.stage == "addons":
        _plan_nodegroups(op, eks=eks, ssm_parameter=ssm_parameter)
        blocked = [c for c in hop.children if c.kind == "nodegroup" and c.status not in _FINE]
        if blocked:
            return _fail_hop(op, blocked[0])
    if not op.pending:
        if op.stage == "nodegroups":
            hop.nodegroupsEnded = hop.nodegroupsEnded or clock.now()
        op.stage = "verify"
        op.verify = VerifyState()
        return op
    planned = op.pending.pop(0)
    op.child = Operation(
        id=_child_id(op, planned.kind, planned.name),
        executionArn=op.executionArn,
        eventId=op.eventId,
        cluster=op.cluster,
        component={"kind": planned.kind, "name": planned.name},
        fromVersion=planned.fromVersion,
        toVersion=planned.toVersion,
        detectedAt=op.detectedAt,
        startedAt=clock.now(),
        deadline=op.deadline,
        kubernetesVersion=hop.toVersion,
        rollbackOnFailure=op.rollbackOnFailure,
        lockWaitBudget=op.lockWaitBudget,
        resolveConflicts=op.resolveConflicts,
        approval=Approval(required=False),
        parent=op.id,
        lockHeld=True,
    )
    return op


def fold_child(op: Operation) -> Operation:
    """Record the finished step in the hop; a step that did not succeed ends the upgrade."""
    hop, child = op.hop, op.child
    assert hop is not None and child is not None, "fold_child without a step in hand"
    op.child = None
    if child.status == "running" and child.approval.required:
        # Forcing past a PDB needs its own approval: inside an upgrade the roll is not forced.
        pods = ", ".join(child.nodegroup.forcePods[:10]) if child.nodegroup else ""
        child.end("blocked", "drain_blocked", f"A PDB blocks the drain; force would delete {pods}.")
    elif child.status == "running":
        child.end("failed", "internal_error", "The step ended without an outcome.")
    result = ChildResult(
        id=child.id,
        kind=child.component.kind,
        name=child.component.name,
        fromVersion=child.fromVersion,
        toVersion=child.toVersion,
        status=child.status,
        reason=child.reason,
        message=child.message,
        startedAt=child.startedAt,
        endedAt=clock.now(),
    )
    hop.children.append(result)
    if result.status not in _FINE:
        return _fail_hop(op, result)
    return op


def _fail_hop(op: Operation, result: ChildResult) -> Operation:
    hop = op.hop
    assert hop is not None
    now = clock.now()
    hop.status, hop.reason, hop.endedAt = "failed", f"{result.kind}_{result.status}", now
    if op.stage == "addons":
        hop.addonsEnded = hop.addonsEnded or now
    if op.stage == "nodegroups":
        hop.nodegroupsEnded = hop.nodegroupsEnded or now
    op.pending = []
    return op.end(
        "failed",
        f"{result.kind}_{result.status}",
        f"Hop {hop.fromVersion} → {hop.toVersion}: the control plane is on {hop.toVersion}, but "
        f"{result.kind} {result.name} {result.status} ({result.reason}): {result.message or ''}".strip(),
    )


def finish_hop(op: Operation) -> Operation:
    hop = op.hop
    assert hop is not None, "finish_hop before preflight"
    hop.status = "succeeded"
    hop.reason = hop.reason if hop.reason == "already_current" else "upgraded"
    hop.endedAt = clock.now()
    hop.approval = op.approval.model_copy()
    op.update = UpdateState()
    op.poll = PollState()
    op.verify = VerifyState()
    if hop.toVersion == op.toVersion:
        op.stage = "done"
        hops = " → ".join([op.hops[0].fromVersion, *(h.toVersion for h in op.hops)])
        return op.end("succeeded", "upgraded", f"The cluster runs {op.toVersion} everywhere ({hops}).")
    op.stage = "preflight"
    return op


def close_hop(op: Operation) -> None:
    """At the end of the run: a hop still open takes the upgrade's outcome."""
    hop = op.hop
    if hop is None or hop.status != "running" or op.status == "running":
        return
    hop.status, hop.reason, hop.endedAt = op.status, op.reason, hop.endedAt or clock.now()
    if hop.approval is None:
        hop.approval = op.approval.model_copy()


def summary(op: Operation) -> dict[str, Any]:
    """The hops as the report and messages show them."""
    return {
        "hops": [
            {
                "from": hop.fromVersion,
                "to": hop.toVersion,
                "status": hop.status,
                "reason": hop.reason,
                "durations": hop.durations(),
                "children": [c.model_dump(mode="json") for c in hop.children],
            }
            for hop in op.hops
        ]
    }
