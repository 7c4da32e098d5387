"""A control-plane upgrade, one minor version (a hop) at a time: preflight, apply, verify.

Each hop is checked before anything changes (FIDELITY §3): EKS upgrade insights, managed node
groups on the control plane's version, self-managed kubelet skew, add-ons offered for the target,
free IPs in the cluster's subnets, AL2 node groups on 1.33+, objects last applied with an API the
target removes, and cluster-autoscaler's minor. A failed required check ends the upgrade `blocked`
naming what to fix. The add-on and node group steps of a hop are planned in `logic/upgrade.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from autopatch import clock, kubeversions
from autopatch.addons import AddonVersion
from autopatch.amis import not_tracked_reason
from autopatch.clients.eks import Eks
from autopatch.errors import UpdateRejected
from autopatch.logic.addon_update import POLL_FIRST_SECONDS, VERIFY_WAIT_SECONDS, request_token
from autopatch.logic.drain import read_drain_inputs, rehearse_drain
from autopatch.logic.nodegroup import desired_update_config, effective_max_unavailable
from autopatch.logic.watcher import choose_target
from autopatch.models import Approval, Check, Hop, Operation, SupportState, UpdateState
from autopatch.policy import ClusterPolicy

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
MIN_FREE_IPS = 5  # FIDELITY 3.12: "up to five available IP addresses"
VERIFY_ATTEMPTS = 10
# Objects of these kinds are requests, not stored objects: nothing to find in the cluster.
_NOT_STORED = {
    "TokenReview",
    "SubjectAccessReview",
    "LocalSubjectAccessReview",
    "SelfSubjectAccessReview",
    "Event",
}
# Objects EKS itself creates and retires with the version (the default PodSecurityPolicy of 1.24
# and older clusters): not the customer's to migrate.
EKS_MANAGED = {"eks.privileged"}
SubnetReader = Callable[[str, list[str]], list[dict[str, Any]]]


@lru_cache(maxsize=1)
def removed_apis() -> list[dict[str, Any]]:
    """The removed-API table (autopatch/data/removed_apis.json, with its sources)."""
    text = resources.files("autopatch").joinpath("data/removed_apis.json").read_text(encoding="utf-8")
    return list(json.loads(text)["removedApis"])


def _check(
    name: str,
    passed: bool,
    failed: str,
    reason: str | None = None,
    *,
    ok: str = "",
    severity: str = "required",
) -> Check:
    return Check(
        name=name,
        severity="required" if severity == "required" else "recommended",
        passed=passed,
        detail=ok if passed else failed,
        reason=None if passed else reason,
    )


def _blocked_by_checks(op: Operation, hop: Hop) -> Operation:
    failed = next((c for c in hop.checks if c.severity == "required" and not c.passed), None)
    op.checks = list(hop.checks)
    if failed is not None:
        hop.status, hop.reason, hop.endedAt = "blocked", failed.reason or "preflight_failed", clock.now()
        op.end(
            "blocked",
            failed.reason or "preflight_failed",
            f"Hop {hop.fromVersion} → {hop.toVersion}: check {failed.name} failed: {failed.detail}",
        )
    return op


# ---- preflight ---------------------------------------------------------------------------------
def preflight_hop(
    op: Operation,
    *,
    eks: Eks,
    kube: Any,
    subnets: SubnetReader,
    policy: ClusterPolicy | None,
) -> Operation:
    """Start the next hop from the cluster's actual version and check it before any change."""
    cluster = eks.describe_cluster(op.cluster.name)
    current = str(cluster["version"])
    op.kubernetesVersion = current
    if op.support is None:  # where the cluster stood when the upgrade began (the reports say so)
        op.support = _support_state(eks, cluster, current)
    if not op.hops and current != op.fromVersion:
        op.message = f"The event said {op.fromVersion}; EKS reports {current}, which is used."
        op.fromVersion = current
    if not (kubeversions.is_minor(op.toVersion) and kubeversions.is_minor(current)):
        return op.end("blocked", "incompatible", f"{op.toVersion!r} is not a Kubernetes version like 1.31")
    if kubeversions.distance(current, op.toVersion) < 0:
        return op.end(
            "blocked",
            "downgrade",
            f"The control plane runs {current}; {op.toVersion} would be a downgrade, which EKS refuses.",
        )
    if kubeversions.distance(current, op.toVersion) == 0:
        if op.hops:  # the last hop reached the target: finish_hop ends the run before this
            return op.end("succeeded", "upgraded", f"The cluster runs {current}.")
        return op.end("skipped", "already_current", f"The control plane already runs {current}.")
    if op.hop is not None and op.hop.approval is None:
        op.hop.approval = op.approval.model_copy()
    if op.hops:  # a later hop asks its own approval, if the policy wants one
        op.approval = Approval(required=op.approval.required, timeoutSeconds=op.approval.timeoutSeconds)
    target = kubeversions.next_minor(current)
    hop = Hop(fromVersion=current, toVersion=target, startedAt=clock.now())
    op.hops.append(hop)
    op.stage = "preflight"
    hop.checks = list(
        hop_checks(op, hop, eks=eks, kube=kube, cluster=cluster, subnets=subnets, policy=policy)
    )
    hop.insights = _rollback_insights(eks, op.cluster.name, target)
    return _blocked_by_checks(op, hop)


def hop_checks(
    op: Operation,
    hop: Hop,
    *,
    eks: Eks,
    kube: Any,
    cluster: dict[str, Any],
    subnets: SubnetReader,
    policy: ClusterPolicy | None,
) -> Iterable[Check]:
    name, current, target = op.cluster.name, hop.fromVersion, hop.toVersion
    yield _check(
        "cluster_active",
        cluster.get("status") == "ACTIVE",
        f"the cluster is {cluster.get('status')}",
        "cluster_not_active",
        ok="ACTIVE",
    )
    yield _target_offered(eks, target)
    nodegroups = [ng for ng in (eks.describe_nodegroup(name, n) for n in eks.list_nodegroups(name)) if ng]
    yield _nodegroups_on_control_plane(nodegroups, current)
    yield _nodegroups_can_drain(kube, nodegroups, policy)
    yield _al2_check(nodegroups, target)
    nodes = kube.list_nodes()
    yield _self_managed_skew(nodes, target)
    yield _addons_offered(eks, name, target)
    yield _cluster_ips(op.cluster.region, cluster, subnets)
    yield _removed_apis_check(kube, current, target)
    # After the object-level check: EKS's insight sees the same removed APIs by their callers; the
    # objects named first tell a person what to change.
    yield from _insight_checks(eks, name, target)
    yield _autoscaler_check(kube, target, must_match=bool(policy and policy.autoscalerMustMatch))


def _support_state(eks: Eks, cluster: dict[str, Any], version: str) -> SupportState:
    support = SupportState(supportType=(cluster.get("upgradePolicy") or {}).get("supportType"))
    entry = eks.cluster_versions([version]).get(version)
    if entry is not None:
        support.versionStatus = entry.get("versionStatus")
        support.endOfStandardSupport = _as_datetime(entry.get("endOfStandardSupportDate"))
        support.endOfExtendedSupport = _as_datetime(entry.get("endOfExtendedSupportDate"))
    return support


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _target_offered(eks: Eks, target: str) -> Check:
    entry = eks.cluster_versions([target]).get(target)
    status = (entry or {}).get("versionStatus")
    return _check(
        "target_version_offered",
        entry is not None and status != "UNSUPPORTED",
        f"EKS does not offer Kubernetes {target}" if entry is None else f"{target} is {status}",
        "version_not_offered",
        ok=f"{target} is {status}",
    )


def _insight_checks(eks: Eks, cluster: str, target: str) -> Iterable[Check]:
    """EKS upgrade insights for the target (FIDELITY 3.23-3.28): ERROR blocks, WARNING is shown."""
    insights = eks.list_insights(cluster, category="UPGRADE_READINESS", kubernetes_version=target)
    errors = [i for i in insights if (i.get("insightStatus") or {}).get("status") == "ERROR"]
    warnings = [i for i in insights if (i.get("insightStatus") or {}).get("status") == "WARNING"]
    found = []
    for insight in errors:
        found.append(_describe_insight(eks.describe_insight(cluster, str(insight["id"])) or insight))
    yield _check(
        "upgrade_insights",
        not errors,
        "; ".join(found),
        "insights_error",
        ok=f"{len(insights)} insights for {target}, none ERROR" if insights else f"no insights for {target}",
    )
    if warnings:
        yield _check(
            "upgrade_insights_warnings",
            False,
            "; ".join(str(i.get("name")) for i in warnings),
            severity="recommended",
        )


def _describe_insight(insight: dict[str, Any]) -> str:
    reason = (insight.get("insightStatus") or {}).get("reason") or ""
    parts = [f"{insight.get('name')}: {reason}".strip()]
    summary = insight.get("categorySpecificSummary") or {}
    details = summary.get("deprecationDetails") or []
    called = [d for d in details if d.get("clientStats")]
    for detail in called or details:
        callers = ", ".join(
            f"{c.get('userAgent')} ({c.get('numberOfRequestsLast30Days')} calls)"
            for c in detail.get("clientStats") or []
        )
        parts.append(
            f"{detail.get('usage')} → {detail.get('replacedWith') or 'no replacement'}"
            + (f", called by {callers}" if callers else "")
        )
    for addon in summary.get("addonCompatibilityDetails") or []:
        parts.append(f"add-on {addon.get('name')} compatible versions: {addon.get('compatibleVersions')}")
    return "; ".join(parts)


def _rollback_insights(eks: Eks, cluster: str, target: str) -> list[dict[str, Any]]:
    """ROLLBACK_READINESS insights, shown as information (control-plane rollback is not used)."""
    try:
        found = eks.list_insights(cluster, category="ROLLBACK_READINESS", kubernetes_version=target)
    except Exception:  # an older API or simulator without the category: nothing to show
        return []
    return [
        {
            "name": i.get("name"),
            "status": (i.get("insightStatus") or {}).get("status"),
            "reason": (i.get("insightStatus") or {}).get("reason"),
        }
        for i in found
    ]


def _nodegroups_on_control_plane(nodegroups: list[dict[str, Any]], current: str) -> Check:
    """FIDELITY 3.15-3.18: every managed node group on the control plane's version (lagging or newer)."""
    off = [ng for ng in nodegroups if str(ng.get("version")) != current]
    words = []
    for ng in off:
        name, version = ng.get("nodegroupName"), ng.get("version")
        untracked = not_tracked_reason(str(ng.get("amiType", "CUSTOM")))
        if untracked is not None:
            words.append(f"{name} runs {version} ({untracked}): its owner must move it to {current}")
        else:
            words.append(f"{name} runs {version}: the node group workflow must bring it to {current} first")
    return _check(
        "nodegroups_match_control_plane",
        not off,
        "; ".join(words),
        "nodegroup_version_lag",
        ok=f"{len(nodegroups)} managed node groups on {current}",
    )


def _nodegroups_can_drain(kube: Any, nodegroups: list[dict[str, Any]], policy: ClusterPolicy | None) -> Check:
    """Each managed node group the hop will roll must be able to drain: checked before the control
    plane moves, so that a PDB never leaves a group behind a control plane it can no longer follow."""
    blocking: list[str] = []
    pods = 0
    for nodegroup in nodegroups:
        name = str(nodegroup.get("nodegroupName"))
        if not_tracked_reason(str(nodegroup.get("amiType", "CUSTOM"))) is not None:
            continue  # not rolled by the upgrade: named by nodegroups_match_control_plane instead
        if policy is not None and policy.nodegroups is not None and name not in policy.nodegroups:
            continue
        update_config = dict(nodegroup.get("updateConfig") or {"maxUnavailable": 1})
        desired = desired_update_config(policy, update_config)
        size = int((nodegroup.get("scalingConfig") or {}).get("desiredSize", 1))
        plan = rehearse_drain(
            read_drain_inputs(kube, nodegroup=name),
            max_unavailable=effective_max_unavailable(desired or update_config, size),
        )
        pods += plan.pods_to_evict
        blocking += [f"{name}: {b.pod} on {b.node} ({b.why})" for b in plan.blocking]
    return _check(
        "nodegroups_can_drain",
        not blocking,
        "; ".join(blocking[:10])
        + (f" +{len(blocking) - 10} more" if len(blocking) > 10 else "")
        + ". Fix the PDBs (or roll the group with the node group workflow, which can ask to force) "
        "before the control plane moves.",
        "drain_blocked",
        ok=f"every one of {pods} pods on the managed node groups can be evicted",
    )


def _al2_check(nodegroups: list[dict[str, Any]], target: str) -> Check:
    al2 = [str(ng.get("nodegroupName")) for ng in nodegroups if str(ng.get("amiType", "")).startswith("AL2_")]
    applies = kubeversions.minor(target) >= (1, 33)
    return _check(
        "no_al2_nodegroups",
        not (applies and al2),
        f"{', '.join(al2)} use Amazon Linux 2, for which no {target} AMI is published: "
        "move them to AL2023 or Bottlerocket first",
        "al2_not_published",
        ok="no AL2 node groups" if not al2 else f"AL2 AMIs are published for {target}",
    )


def _self_managed_skew(nodes: list[dict[str, Any]], target: str) -> Check:
    """Nodes outside managed node groups may lag the API server by 3 minors (2 at kubelet ≤ 1.24)."""
    too_old = []
    counted = 0
    for node in nodes:
        labels = (node.get("metadata") or {}).get("labels") or {}
        if NODEGROUP_LABEL in labels:
            continue
        kubelet = str(((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion", ""))
        if not kubeversions.is_minor(kubelet):
            continue
        counted += 1
        lag = kubeversions.distance(kubelet, target)
        if lag > kubeversions.kubelet_skew_allowed(kubelet):
            too_old.append(f"{node['metadata']['name']} ({kubelet})")
    return _check(
        "self_managed_node_skew",
        not too_old,
        f"kubelet too old for {target}: {', '.join(too_old[:10])}"
        + (f" +{len(too_old) - 10} more" if len(too_old) > 10 else ""),
        "self_managed_skew",
        ok=f"{counted} self-managed nodes within the allowed skew of {target}",
    )


def _addons_offered(eks: Eks, cluster: str, target: str) -> Check:
    """Each installed add-on has a version for the target that is not older than the installed one."""
    problems, moves = [], []
    for name in eks.list_addons(cluster):
        addon = eks.describe_addon(cluster, name) or {}
        installed = str(addon.get("addonVersion", ""))
        if not AddonVersion.is_valid(installed):
            continue
        offered = eks.addon_versions(name, target)
        if _compatible(offered, installed, target):
            newer = choose_target(name, installed, offered, target)
            moves.append(f"{name} {installed}" + (f" → {newer}" if newer else " (stays)"))
            continue
        newer = choose_target(name, installed, offered, target)
        if newer is None:
            problems.append(
                f"{name} {installed}: no version for {target} that is not a downgrade in one step"
            )
        else:
            moves.append(f"{name} {installed} → {newer}")
    return _check(
        "addons_compatible",
        not problems,
        "; ".join(problems),
        "addon_incompatible",
        ok="; ".join(moves) or "no EKS add-ons installed",
    )


def _compatible(offered: list[dict[str, Any]], version: str, kubernetes: str) -> bool:
    return any(
        v.get("addonVersion") == version
        and any(c.get("clusterVersion") == kubernetes for c in v.get("compatibilities", []))
        for v in offered
    )


def _cluster_ips(region: str, cluster: dict[str, Any], subnets: SubnetReader) -> Check:
    ids = list((cluster.get("resourcesVpcConfig") or {}).get("subnetIds") or [])
    found = subnets(region, ids) if ids else []
    zones = {s.get("AvailabilityZone") for s in found}
    free = sum(int(s.get("AvailableIpAddressCount", 0)) for s in found)
    return _check(
        "cluster_subnet_ips",
        free >= MIN_FREE_IPS and len(zones) >= 2,
        f"{free} free IPs in {len(found)} cluster subnets across {len(zones)} AZs; the upgrade needs "
        f"{MIN_FREE_IPS} free IPs and subnets in at least 2 AZs",
        "insufficient_ips",
        ok=f"{free} free IPs in {len(found)} cluster subnets across {len(zones)} AZs",
    )


def _removed_apis_check(kube: Any, current: str, target: str) -> Check:
    """Objects last applied with an API the target no longer serves (their own last-applied
    configuration), never Secrets; the replacement API named."""
    removed = [
        entry
        for entry in removed_apis()
        if entry["kind"] not in _NOT_STORED
        and kubeversions.distance(current, entry["removed_in"]) > 0
        and kubeversions.distance(entry["removed_in"], target) >= 0
    ]
    if not removed:
        return _check("removed_apis", True, "", ok=f"no API is removed in {target}")
    served = kube.served_group_versions()
    found: list[str] = []
    looked = 0
    by_kind: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in removed:
        group = entry["group_version"].split("/")[0] if "/" in entry["group_version"] else ""
        by_kind.setdefault((group, entry["kind"]), []).append(entry)
    for (group, kind), entries in sorted(by_kind.items()):
        located = _locate(kube, served, group, kind)
        if located is None:
            continue
        group_version, plural = located
        gone = {e["group_version"]: e for e in entries}
        only_removed = group_version in gone  # served through a removed version only
        for obj in kube.iter_path(group_version, plural):
            looked += 1
            applied = _last_applied_version(obj)
            if applied in gone:
                meta = obj.get("metadata") or {}
                where = (
                    f"{meta.get('namespace')}/{meta.get('name')}"
                    if meta.get("namespace")
                    else meta.get("name")
                )
                replacement = gone[applied].get("replacement") or "no replacement: remove it"
                found.append(
                    f"{kind} {where} was last applied as {applied} (removed in {target}); use {replacement}"
                )
            elif only_removed and (obj.get("metadata") or {}).get("name") not in EKS_MANAGED:
                # every object of the kind goes with the version
                meta = obj.get("metadata") or {}
                found.append(f"{kind} {meta.get('name')} uses {group_version}, removed in {target}")
    return _check(
        "removed_apis",
        not found,
        "; ".join(found[:10]) + (f" +{len(found) - 10} more" if len(found) > 10 else ""),
        "removed_api_in_use",
        ok=f"{looked} objects of {len(by_kind)} kinds with APIs removed in {target}: none last applied "
        "with a removed API",
    )


def _locate(kube: Any, served: dict[str, list[str]], group: str, kind: str) -> tuple[str, str] | None:
    """A served group/version and plural through which objects of `kind` can be listed."""
    for version in served.get(group, []):
        group_version = f"{group}/{version}" if group else version
        for resource in kube.resources_of(group_version):
            if resource.get("kind") == kind and "/" not in str(resource.get("name")):
                return group_version, str(resource["name"])
    return None


def _last_applied_version(obj: dict[str, Any]) -> str | None:
    text = ((obj.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        return str(json.loads(text).get("apiVersion") or "") or None
    except (ValueError, AttributeError):
        return None


def _autoscaler_check(kube: Any, target: str, *, must_match: bool) -> Check:
    """FIDELITY 3.43-3.44: cluster-autoscaler's minor must match the cluster's."""
    found = []
    for deployment in kube.list("Deployment"):
        for container in ((deployment.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "containers"
        ) or []:
            image = str(container.get("image", ""))
            if "cluster-autoscaler" not in image.rsplit("/", 1)[-1]:
                continue
            name = image.split("@", 1)[0].rsplit("/", 1)[-1]  # "@sha256:…" pins a digest, not a tag
            tag = name.rsplit(":", 1)[-1] if ":" in name else ""
            meta = deployment.get("metadata") or {}
            found.append((f"{meta.get('namespace')}/{meta.get('name')}", tag))
    if not found:
        return _check("cluster_autoscaler_version", True, "", ok="cluster-autoscaler is not installed")
    off = [
        f"{where} runs {tag or 'an untagged image'}"
        for where, tag in found
        if not kubeversions.is_minor(tag) or kubeversions.minor(tag) != kubeversions.minor(target)
    ]
    return _check(
        "cluster_autoscaler_version",
        not off,
        f"{'; '.join(off)}: update cluster-autoscaler to {target} together with this hop",
        "autoscaler_mismatch",
        ok=f"cluster-autoscaler {found[0][1]} matches {target}",
        severity="required" if must_match else "recommended",
    )


# ---- recheck, apply, verify --------------------------------------------------------------------
def recheck_hop(op: Operation, *, eks: Eks) -> Operation:
    """Under the lock: the cluster may have moved, or a node group fallen behind, since preflight."""
    hop = op.hop
    assert hop is not None, "recheck before preflight"
    cluster = eks.describe_cluster(op.cluster.name)
    current = str(cluster["version"])
    if current == hop.toVersion:
        hop.status, hop.reason = "succeeded", "already_current"
        return op  # someone upgraded it meanwhile: carry on with the add-ons and node groups
    nodegroups = [
        ng
        for ng in (eks.describe_nodegroup(op.cluster.name, n) for n in eks.list_nodegroups(op.cluster.name))
        if ng
    ]
    rechecks = [
        _check(
            "recheck_version_unchanged",
            current == hop.fromVersion,
            f"the control plane moved from {hop.fromVersion} to {current} since preflight",
            "state_changed",
        ),
        _check(
            "recheck_cluster_active",
            cluster.get("status") == "ACTIVE",
            f"the cluster is {cluster.get('status')}",
            "cluster_not_active",
        ),
        _nodegroups_on_control_plane(nodegroups, current),
    ]
    rechecks[-1] = rechecks[-1].model_copy(update={"name": "recheck_nodegroups_match_control_plane"})
    hop.checks = [c for c in hop.checks if not c.name.startswith("recheck_")] + rechecks
    return _blocked_by_checks(op, hop)


def apply_hop(op: Operation, *, eks: Eks) -> Operation:
    hop = op.hop
    assert hop is not None, "apply before preflight"
    op.stage = "control-plane"
    hop.controlPlaneStarted = clock.now()
    if hop.reason == "already_current":  # found upgraded by the recheck
        hop.controlPlaneEnded = hop.controlPlaneStarted
        op.update = UpdateState(status="Successful", type="VersionUpdate", toVersion=hop.toVersion)
        op.poll.waitSeconds = 0
        return op
    try:
        update = eks.update_cluster_version(
            op.cluster.name,
            hop.toVersion,
            token=request_token(op, f"hop{len(op.hops)}", hop.toVersion),
        )
    except UpdateRejected as exc:
        hop.status, hop.reason, hop.endedAt = "failed", "update_rejected", clock.now()
        return op.end("failed", "update_rejected", f"EKS refused {hop.fromVersion} → {hop.toVersion}: {exc}")
    hop.updateId = str(update["id"])
    op.update = UpdateState(
        id=update["id"], type=update.get("type"), status=update["status"], toVersion=hop.toVersion
    )
    op.poll.attempt = 0
    op.poll.waitSeconds = POLL_FIRST_SECONDS
    return op


def verify_hop(op: Operation, *, eks: Eks, kube: Any) -> Operation:
    """The control plane, its add-ons and node groups all on the hop's version, nodes Ready."""
    hop = op.hop
    assert hop is not None, "verify before preflight"
    op.stage = "verify"
    name, target = op.cluster.name, hop.toVersion
    findings: list[str] = []
    cluster = eks.describe_cluster(name)
    if str(cluster.get("version")) != target:
        findings.append(f"the control plane runs {cluster.get('version')}, expected {target}")
    if cluster.get("status") != "ACTIVE":
        findings.append(f"the cluster is {cluster.get('status')}")
    served = kube.server_version()
    if served and kubeversions.is_minor(served) and kubeversions.name(kubeversions.minor(served)) != target:
        findings.append(f"the API server reports {served}")
    for ng_name in eks.list_nodegroups(name):
        nodegroup = eks.describe_nodegroup(name, ng_name) or {}
        if (
            str(nodegroup.get("version")) != target
            and not_tracked_reason(str(nodegroup.get("amiType"))) is None
        ):
            findings.append(f"node group {ng_name} runs {nodegroup.get('version')}")
    for addon_name in eks.list_addons(name):
        addon = eks.describe_addon(name, addon_name) or {}
        if addon.get("status") not in ("ACTIVE", None):
            findings.append(f"add-on {addon_name} is {addon.get('status')}")
    for node in kube.list_nodes():
        conditions = {
            c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []
        }
        if conditions.get("Ready") != "True":
            findings.append(f"node {node['metadata']['name']} is not Ready")
    op.verify.attempt += 1
    op.verify.findings = findings
    op.verify.passed = not findings
    op.verify.retry = bool(findings) and op.verify.attempt < VERIFY_ATTEMPTS
    op.verify.waitSeconds = VERIFY_WAIT_SECONDS
    if op.verify.passed or op.verify.retry:
        return op
    hop.status, hop.reason, hop.endedAt = "failed", "verify_failed", clock.now()
    return op.end(
        "failed",
        "verify_failed",
        f"Hop {hop.fromVersion} → {target} did not verify: {'; '.join(findings[:5])}",
    )
