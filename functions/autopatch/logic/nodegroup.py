"""A managed node group's roll onto a new EKS AMI release: preflight, apply, verify, explain.

EKS rolls the group itself (FIDELITY §1): it surges new nodes, drains old ones at random through
the eviction API, and fails with PodEvictionFailure naming only nodes. The product never drains:
it rehearses the drain first (names every pod and PDB that would block), asks EKS with
`version` always set, then checks the nodes and pods, and when EKS fails it names the pods.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from autopatch.amis import ReleaseVersion, not_tracked_reason
from autopatch.clients.eks import Eks
from autopatch.errors import UpdateRejected
from autopatch.logic.addon_update import (
    POLL_FIRST_SECONDS,
    VERIFY_ATTEMPTS,
    VERIFY_WAIT_SECONDS,
    request_token,
)
from autopatch.logic.drain import DrainInputs, explain_eviction_failure, read_drain_inputs, rehearse_drain
from autopatch.models import BlockingPod, Check, NodegroupPlan, Operation, UpdateState
from autopatch.policy import ClusterPolicy

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
UNHEALTHY_REASONS = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull")


def _check(name: str, passed: bool, failed: str, reason: str | None = None, *, ok: str = "") -> Check:
    return Check(
        name=name,
        severity="required",
        passed=passed,
        detail=ok if passed else failed,
        reason=None if passed else reason,
    )


def _blocked_by_checks(op: Operation, *, except_names: tuple[str, ...] = ()) -> Operation:
    failed = next(
        (c for c in op.checks if c.severity == "required" and not c.passed and c.name not in except_names),
        None,
    )
    if failed is not None:
        op.end("blocked", failed.reason or "preflight_failed", f"Check {failed.name} failed: {failed.detail}")
    return op


def effective_max_unavailable(update_config: dict[str, Any], desired_size: int) -> int:
    """Nodes drained at a time. A percentage is rounded up (EKS's rounding is not documented)."""
    if update_config.get("maxUnavailable"):
        return int(update_config["maxUnavailable"])
    if update_config.get("maxUnavailablePercentage"):
        return max(1, math.ceil(desired_size * int(update_config["maxUnavailablePercentage"]) / 100))
    return 1


def desired_update_config(policy: ClusterPolicy | None, current: dict[str, Any]) -> dict[str, Any] | None:
    """The updateConfig the policy asks for, if it differs from the group's (else None)."""
    if policy is None:
        return None
    wanted: dict[str, Any] = {}
    if policy.maxUnavailable is not None:
        wanted["maxUnavailable"] = policy.maxUnavailable
    elif policy.maxUnavailablePercentage is not None:
        wanted["maxUnavailablePercentage"] = policy.maxUnavailablePercentage
    else:
        return None
    same = all(current.get(k) == v for k, v in wanted.items()) and not (
        set(current) & {"maxUnavailable", "maxUnavailablePercentage"} - set(wanted)
    )
    return None if same else wanted


def preflight_nodegroup(
    op: Operation, *, eks: Eks, kube: Any, subnets: Any, policy: ClusterPolicy | None
) -> Operation:
    cluster_name, name = op.cluster.name, op.component.name
    op.kubernetesVersion = str(eks.describe_cluster(cluster_name)["version"])
    op.checks = []
    nodegroup = eks.describe_nodegroup(cluster_name, name)
    if nodegroup is None:
        op.checks.append(
            _check("nodegroup_exists", False, f"{name} is not a managed node group", "nodegroup_not_found")
        )
        return _blocked_by_checks(op)
    ami_type = str(nodegroup.get("amiType", "CUSTOM"))
    untracked = not_tracked_reason(ami_type)
    if untracked is not None:
        return op.end("skipped", "not_tracked", f"{name} is not tracked by release version: {untracked}")
    installed = str(nodegroup.get("releaseVersion", ""))
    if installed != op.fromVersion:
        op.message = f"The event said {op.fromVersion}; EKS reports {installed}, which is used."
        op.fromVersion = installed
    if not ReleaseVersion.is_valid(op.toVersion):
        op.checks.append(
            _check("target_release_format", False, f"{op.toVersion!r} is not a release", "incompatible")
        )
        return _blocked_by_checks(op)
    target, current = ReleaseVersion.parse(op.toVersion), ReleaseVersion.parse(installed)
    if target == current:
        return op.end("skipped", "already_current", f"{name} already runs {installed}.")
    update_config = dict(nodegroup.get("updateConfig") or {"maxUnavailable": 1})
    desired = desired_update_config(policy, update_config)
    scaling = nodegroup.get("scalingConfig") or {}
    max_unavailable = effective_max_unavailable(desired or update_config, int(scaling.get("desiredSize", 1)))
    plan = NodegroupPlan(
        amiType=ami_type,
        version=str(nodegroup.get("version", "")),
        updateConfig=update_config,
        desiredUpdateConfig=desired,
        configChange=desired is not None,
        maxUnavailable=max_unavailable,
    )
    op.nodegroup = plan
    op.checks.append(
        _check(
            "not_a_rollback",
            target > current,
            f"{op.toVersion} is older than {installed}; a node group cannot be rolled back",
            "downgrade",
            ok=f"{installed} → {op.toVersion}",
        )
    )
    op.checks.append(
        _check(
            "kubelet_matches_control_plane",
            target.kubernetes_minor == op.kubernetesVersion,
            f"{op.toVersion} is for Kubernetes {target.kubernetes_minor}; "
            f"the control plane runs {op.kubernetesVersion}",
            "version_mismatch",
            ok=f"nodes will run kubelet {target.kubelet} with control plane {op.kubernetesVersion}",
        )
    )
    op.checks.extend(_state_checks(op, eks=eks, nodegroup=nodegroup))
    op.checks.append(_free_ips_check(op, nodegroup=nodegroup, subnets=subnets))

    inputs = read_drain_inputs(kube, nodegroup=name)
    plan.oldNodes = [n.name for n in inputs.nodes]
    drain = rehearse_drain(inputs, max_unavailable=max_unavailable)
    plan.blocking = [BlockingPod(pod=b.pod, node=b.node, pdb=b.pdb, why=b.why) for b in drain.blocking]
    plan.baselinePods, plan.baselineUnhealthy = pod_baseline(inputs)
    op.checks.extend(drain.checks())
    if drain.blocking:
        allow_force = bool(policy and policy.allowForce)
        if not allow_force:
            return _blocked_by_checks(op)
        # The policy allows force: an approver must see exactly the pods force=true would delete.
        plan.force = True
        plan.forcePods = list(drain.would_force_evict)
        op.approval.required = True
        return _blocked_by_checks(op, except_names=("drain_rehearsal",))
    return _blocked_by_checks(op)


def _state_checks(op: Operation, *, eks: Eks, nodegroup: dict[str, Any], prefix: str = "") -> list[Check]:
    status = str(nodegroup.get("status"))
    busy = eks.nodegroup_updates_in_progress(op.cluster.name, op.component.name)
    issues = (nodegroup.get("health") or {}).get("issues") or []
    return [
        _check(
            f"{prefix}nodegroup_active",
            status == "ACTIVE",
            f"the node group is {status}",
            "nodegroup_not_active",
        ),
        _check(
            f"{prefix}no_update_in_progress",
            not busy,
            f"update {', '.join(busy)} is still in progress",
            "update_in_progress",
        ),
        Check(
            name=f"{prefix}nodegroup_healthy",
            severity="recommended",
            passed=not issues,
            detail="; ".join(f"{i.get('code')}: {i.get('message')}" for i in issues),
        ),
    ]


def _free_ips_check(op: Operation, *, nodegroup: dict[str, Any], subnets: Any) -> Check:
    """The surge needs an IP per new node: max(2 x AZs, maxUnavailable) under DEFAULT (FIDELITY 1.37)."""
    assert op.nodegroup is not None
    found = subnets(op.cluster.region, list(nodegroup.get("subnets") or []))
    zones = {s.get("AvailabilityZone") for s in found}
    strategy = (nodegroup.get("updateConfig") or {}).get("updateStrategy", "DEFAULT")
    surge = (
        op.nodegroup.maxUnavailable
        if strategy == "MINIMAL"
        else max(2 * len(zones), op.nodegroup.maxUnavailable)
    )
    op.nodegroup.surge = surge
    free = sum(int(s.get("AvailableIpAddressCount", 0)) for s in found)
    return _check(
        "free_ips_for_surge",
        free >= surge,
        f"{free} free IPs in the group's {len(found)} subnets; the roll launches up to {surge} nodes",
        "insufficient_ips",
        ok=f"{free} free IPs for up to {surge} new nodes in {len(zones)} AZs",
    )


def pod_baseline(inputs: DrainInputs) -> tuple[dict[str, int], list[str]]:
    """Ready pods per workload that has pods on the group, and pods unhealthy before the roll."""
    on_group = {n.name for n in inputs.nodes}
    workloads = {p.workload for p in inputs.pods if p.node in on_group and p.workload and p.drained}
    ready = Counter(p.workload for p in inputs.pods if p.workload in workloads and p.ready and p.live)
    return {w: ready.get(w, 0) for w in sorted(workloads)}, sorted(unhealthy_pods(inputs))


def unhealthy_pods(inputs: DrainInputs) -> set[str]:
    return {
        p.key
        for p in inputs.pods
        if p.live and (p.phase == "Pending" or (p.phase == "Running" and not p.ready))
    }


def recheck_nodegroup(op: Operation, *, eks: Eks) -> Operation:
    nodegroup = eks.describe_nodegroup(op.cluster.name, op.component.name)
    if nodegroup is None:
        op.checks.append(_check("recheck_exists", False, "the node group was deleted", "nodegroup_not_found"))
        return _blocked_by_checks(op, except_names=("drain_rehearsal",))
    installed = str(nodegroup.get("releaseVersion", ""))
    if installed == op.toVersion:
        return op.end("skipped", "already_current", f"{op.component.name} reached {installed} meanwhile.")
    if (
        ReleaseVersion.is_valid(installed)
        and ReleaseVersion.is_valid(op.toVersion)
        and ReleaseVersion.parse(installed) > ReleaseVersion.parse(op.toVersion)
    ):
        # e.g. a control-plane upgrade rolled it onto the next Kubernetes version meanwhile
        return op.end("skipped", "superseded", f"{op.component.name} moved on to {installed} meanwhile.")
    rechecks = [
        _check(
            "recheck_release_unchanged",
            installed == op.fromVersion,
            f"the node group moved from {op.fromVersion} to {installed} since preflight",
            "state_changed",
        ),
        *_state_checks(op, eks=eks, nodegroup=nodegroup, prefix="recheck_"),
    ]
    op.checks = [c for c in op.checks if not c.name.startswith("recheck_")] + rechecks
    return _blocked_by_checks(op, except_names=("drain_rehearsal",))


def apply_nodegroup(op: Operation, *, eks: Eks) -> Operation:
    """First the updateConfig the policy wants (if different), then the version update."""
    plan = op.nodegroup
    assert plan is not None
    try:
        if plan.configChange and plan.desiredUpdateConfig:
            op.phase = "config"
            update = eks.update_nodegroup_config(
                op.cluster.name,
                op.component.name,
                update_config=plan.desiredUpdateConfig,
                token=request_token(op, "config", str(plan.maxUnavailable)),
            )
        else:
            op.phase = "update"
            update = eks.update_nodegroup_version(
                op.cluster.name,
                op.component.name,
                version=str(op.kubernetesVersion),
                release_version=op.toVersion,
                force=plan.force,
                token=request_token(op, "apply", op.toVersion),
            )
    except UpdateRejected as exc:
        return op.end("failed", "update_rejected", f"EKS refused the update: {exc}")
    op.update = UpdateState(
        id=update["id"], type=update.get("type"), status=update["status"], toVersion=op.toVersion
    )
    op.poll.attempt = 0
    op.poll.waitSeconds = POLL_FIRST_SECONDS
    return op


def verify_nodegroup(op: Operation, *, eks: Eks, kube: Any) -> Operation:
    """Every node of the group Ready on the new kubelet, none of the old release left, pods back."""
    plan = op.nodegroup
    assert plan is not None
    target = ReleaseVersion.parse(op.toVersion)
    findings: list[str] = []
    nodegroup = eks.describe_nodegroup(op.cluster.name, op.component.name) or {}
    if nodegroup.get("status") != "ACTIVE":
        findings.append(f"node group status is {nodegroup.get('status')}")
    if nodegroup.get("releaseVersion") != op.toVersion:
        findings.append(f"node group runs {nodegroup.get('releaseVersion')}, expected {op.toVersion}")
    nodes = kube.list("Node", label_selector=f"{NODEGROUP_LABEL}={op.component.name}")
    for node in nodes:
        name = node["metadata"]["name"]
        kubelet = str(((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""))
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (node.get("status") or {}).get("conditions") or []
        )
        if name in plan.oldNodes:
            findings.append(f"old node {name} is still in the group")
        elif not kubelet.startswith(target.kubelet + "-") and kubelet != target.kubelet:
            findings.append(f"node {name} runs kubelet {kubelet}, expected {target.kubelet}")
        if not ready:
            findings.append(f"node {name} is not Ready")
    if not nodes:
        findings.append("the node group has no nodes")
    inputs = read_drain_inputs(kube, nodegroup=op.component.name)
    ready_now = Counter(p.workload for p in inputs.pods if p.workload and p.ready and p.live)
    for workload, before in plan.baselinePods.items():
        if ready_now.get(workload, 0) < before:
            findings.append(f"{workload}: {ready_now.get(workload, 0)} of {before} pods Ready")
    new_unhealthy = sorted(unhealthy_pods(inputs) - set(plan.baselineUnhealthy))
    if new_unhealthy:
        findings.append(f"pods not Ready since the roll: {', '.join(new_unhealthy[:5])}")
    op.verify.attempt += 1
    op.verify.findings = findings
    op.verify.passed = not findings
    op.verify.retry = bool(findings) and op.verify.attempt < VERIFY_ATTEMPTS
    op.verify.waitSeconds = VERIFY_WAIT_SECONDS
    if op.verify.passed:
        return op.end(
            "succeeded", "updated", f"{op.component.name} runs {op.toVersion} on {len(nodes)} nodes."
        )
    if op.verify.retry:
        return op
    # A node group cannot be rolled back (FIDELITY 1.8): say what is wrong and stop.
    return op.end("failed", "verify_failed", "Verification failed: " + "; ".join(findings[:5]))


def explain_failure(op: Operation, *, kube: Any) -> Operation:
    """EKS's PodEvictionFailure names nodes; name the pods still on them and the PDBs that held them."""
    nodes = sorted(
        {
            n
            for e in op.update.errors
            if e.get("errorCode") == "PodEvictionFailure"
            for n in e.get("resourceIds") or []
        }
    )
    if not nodes or op.nodegroup is None:
        return op
    inputs = read_drain_inputs(kube, nodegroup=op.component.name)
    op.nodegroup.evictionFailure = explain_eviction_failure(inputs, nodes)
    held = "; ".join(op.nodegroup.evictionFailure[:5])
    op.reason = "pod_eviction_failure"
    op.message = f"EKS could not drain {', '.join(nodes)} within 15 minutes (PodEvictionFailure). {held}"
    return op
