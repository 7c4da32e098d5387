"""One step, the logic of the component's kind: add-ons and node groups share the workflow steps."""

from __future__ import annotations

from autopatch.clients import aws
from autopatch.logic import addon_checks, addon_update, control_plane, nodegroup, notify
from autopatch.models import Operation
from autopatch.services import Services


def preflight(op: Operation, svc: Services) -> Operation:
    eks, kube = svc.eks_for(op.cluster.region), svc.kube_for(op.cluster.name, op.cluster.region)
    policy = svc.policy.cluster(op.cluster.accountId, op.cluster.region, op.cluster.name)
    if op.component.kind == "control-plane":
        return control_plane.preflight_hop(op, eks=eks, kube=kube, subnets=aws.subnets, policy=policy)
    if op.component.kind == "nodegroup":
        return nodegroup.preflight_nodegroup(op, eks=eks, kube=kube, subnets=aws.subnets, policy=policy)
    return addon_checks.preflight_addon(op, eks=eks, kube=kube)


def recheck(op: Operation, svc: Services) -> Operation:
    eks = svc.eks_for(op.cluster.region)
    if op.component.kind == "control-plane":
        return control_plane.recheck_hop(op, eks=eks)
    if op.component.kind == "nodegroup":
        return nodegroup.recheck_nodegroup(op, eks=eks)
    return addon_checks.recheck_addon(op, eks=eks)


def apply(op: Operation, svc: Services) -> Operation:
    eks = svc.eks_for(op.cluster.region)
    if op.component.kind == "control-plane":
        op = control_plane.apply_hop(op, eks=eks)
    elif op.component.kind == "nodegroup":
        op = nodegroup.apply_nodegroup(op, eks=eks)
    else:
        op = addon_update.apply_update(op, eks=eks)
    return _progress(op, "applying", svc)


def verify(op: Operation, svc: Services) -> Operation:
    op = _progress(op, "verifying", svc)
    kube = svc.kube_for(op.cluster.name, op.cluster.region)
    if op.component.kind == "control-plane":
        return control_plane.verify_hop(op, eks=svc.eks_for(op.cluster.region), kube=kube)
    if op.component.kind == "nodegroup":
        if op.status == "failed":  # the roll failed: name what held it
            return nodegroup.explain_failure(op, kube=kube)
        return nodegroup.verify_nodegroup(op, eks=svc.eks_for(op.cluster.region), kube=kube)
    return addon_update.verify_update(op, eks=svc.eks_for(op.cluster.region), kube=kube)


def _progress(op: Operation, state: str, svc: Services) -> Operation:
    """The operation's Slack message says `state` (bot token only; never fails the step)."""
    return notify.tell_progress(
        op, state, ledger=svc.ledger, notifier=svc.notifier, console_url=svc.settings.console_url
    )
