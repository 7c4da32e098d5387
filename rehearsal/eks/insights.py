"""EKS upgrade insights (UPGRADE_READINESS) of one simulated cluster (FIDELITY 3.19-3.28).

Real EKS refreshes insights every 24 hours and judges deprecated API usage over a rolling 30 days
(FIDELITY 3.25); the simulator computes them whenever they are asked for, from the cluster as it is
then. The names, descriptions and PASSING reasons are those of the AWS examples
(api_samples/insights.json); the other reasons, recommendations and links are [INF], marked below.

Checks, for the next minor version N+1 (and, for deprecated APIs, N+2 as WARNING, 3.24):
- "Deprecated APIs removed in Kubernetes vX.Y": objects whose last `kubectl apply` used a group/version
  removed in X.Y, and requests to such a path in the last 30 days (the audit log: `KubeStore.api_usage`).
- "Kubelet version skew": a node whose kubelet would be outside the supported skew after the upgrade.
- "EKS add-on version compatibility": an installed EKS add-on with no version compatible with N+1.
- "Cluster health issues": always PASSING (the simulator models no cluster health issue).
- "kube-proxy version skew": kube-proxy outside the supported skew after the upgrade.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rehearsal.eks.catalog import AddonCatalog, minor_key
from rehearsal.kube.store import KINDS, KubeStore, removed_apis

CATEGORY = "UPGRADE_READINESS"
USAGE_WINDOW = timedelta(days=30)  # FIDELITY 3.25
DEPRECATED_APIS = "Deprecated APIs removed in Kubernetes v{version}"
KUBELET_SKEW = "Kubelet version skew"
ADDON_COMPATIBILITY = "EKS add-on version compatibility"
CLUSTER_HEALTH = "Cluster health issues"
KUBE_PROXY_SKEW = "kube-proxy version skew"
_NAMESPACE = uuid.UUID("6f1f3c1e-8a55-4e0b-9d53-0c2b7f6d8a10")
_MINOR = re.compile(r"v?(\d+)\.(\d+)")

# Texts of the AWS examples (api_samples/insights.json).
DESCRIPTIONS = {
    KUBELET_SKEW: "Checks for kubelet versions of worker nodes in the cluster to see if upgrade would cause "
    "noncompliance with supported Kubernetes kubelet version skew policy.",
    ADDON_COMPATIBILITY: "Checks version of installed EKS add-ons to ensure they are compatible with the "
    "next version of Kubernetes. ",
    CLUSTER_HEALTH: "Checks for any cluster health issues that prevent successful upgrade to the next "
    "Kubernetes version on EKS.",
    KUBE_PROXY_SKEW: "Checks version of kube-proxy in cluster to see if upgrade would cause noncompliance "
    "with supported Kubernetes kube-proxy version skew policy.",
}
PASSING_REASONS = {
    KUBELET_SKEW: "Node kubelet versions match the cluster control plane version.",
    ADDON_COMPATIBILITY: "All installed EKS add-on versions are compatible with next Kubernetes version.",
    CLUSTER_HEALTH: "No cluster health issues detected.",
    KUBE_PROXY_SKEW: "kube-proxy versions match the cluster control plane version.",
    DEPRECATED_APIS: "No deprecated API usage detected within the last 30 days.",
}
RECOMMENDATIONS = {
    KUBELET_SKEW: "Upgrade your worker nodes to match the Kubernetes version of your cluster control plane.",
    # [INF] the four below: no AWS example shows them.
    ADDON_COMPATIBILITY: "Upgrade your EKS add-ons to versions compatible with the next Kubernetes version.",
    CLUSTER_HEALTH: "Resolve the cluster health issues before upgrading the cluster.",
    KUBE_PROXY_SKEW: "Upgrade kube-proxy to match the Kubernetes version of your cluster control plane.",
}
ADDITIONAL_INFO = {
    KUBELET_SKEW: {
        "Kubelet version skew policy": "https://kubernetes.io/releases/version-skew-policy/#kubelet",
        "Updating a managed node group": "https://docs.aws.amazon.com/eks/latest/userguide/update-managed-node-group.html",
    },
    ADDON_COMPATIBILITY: {  # [INF]
        "Amazon EKS add-ons": "https://docs.aws.amazon.com/eks/latest/userguide/eks-add-ons.html",
    },
    CLUSTER_HEALTH: {  # [INF]
        "EKS update cluster documentation": "https://docs.aws.amazon.com/eks/latest/userguide/update-cluster.html",
    },
    KUBE_PROXY_SKEW: {  # [INF]
        "Kube-proxy version skew policy": "https://kubernetes.io/releases/version-skew-policy/#kube-proxy",
        "Updating the kube-proxy add-on": "https://docs.aws.amazon.com/eks/latest/userguide/managing-kube-proxy.html",
    },
}


@dataclass(frozen=True)
class ClusterFacts:
    """What the checks read about one cluster."""

    name: str
    arn: str
    version: str
    store: KubeStore
    addons: dict[str, tuple[str, str]]  # add-on name -> (installed version, add-on ARN)
    catalog: AddonCatalog
    known_versions: tuple[str, ...]  # Kubernetes minors of the version calendar
    now: datetime


def insight_id(cluster_arn: str, name: str, version: str) -> str:
    """The same id for the same cluster, check and target version, on every run."""
    return str(uuid.uuid5(_NAMESPACE, f"{cluster_arn}|{name}|{version}"))


def next_minor(version: str, step: int = 1) -> str:
    major, minor = minor_key(version)
    return f"{major}.{minor + step}"


def upgrade_insights(facts: ClusterFacts) -> list[dict[str, Any]]:
    """Full Insight objects (DescribeInsight shape) without lastRefreshTime and lastTransitionTime."""
    insights = []
    target = next_minor(facts.version)
    if target in facts.known_versions:
        insights.append(_deprecated_apis(facts, target, "ERROR"))
        insights.append(_skew(facts, target, KUBELET_SKEW, _kubelet_versions(facts.store)))
        insights.append(_addon_compatibility(facts, target))
        insights.append(_insight(facts, CLUSTER_HEALTH, target, "PASSING", PASSING_REASONS[CLUSTER_HEALTH]))
        insights.append(_skew(facts, target, KUBE_PROXY_SKEW, _kube_proxy_versions(facts)))
    after_next = next_minor(facts.version, 2)
    if after_next in facts.known_versions:
        insights.append(_deprecated_apis(facts, after_next, "WARNING"))
    return insights


def _insight(
    facts: ClusterFacts,
    name: str,
    version: str,
    status: str,
    reason: str,
    *,
    description: str | None = None,
    recommendation: str | None = None,
    additional_info: dict[str, str] | None = None,
    resources: list[dict[str, Any]] | None = None,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": insight_id(facts.arn, name, version),
        "name": name,
        "category": CATEGORY,
        "kubernetesVersion": version,
        "description": description or DESCRIPTIONS[name],
        "insightStatus": {"status": status, "reason": reason},
        "recommendation": recommendation or RECOMMENDATIONS[name],
        "additionalInfo": dict(additional_info if additional_info is not None else ADDITIONAL_INFO[name]),
        "resources": resources or [],
        "categorySpecificSummary": summary or {"deprecationDetails": []},
    }


# ---- deprecated APIs --------------------------------------------------------------------------


def _deprecated_apis(facts: ClusterFacts, version: str, status_when_used: str) -> dict[str, Any]:
    name = DEPRECATED_APIS.format(version=version)
    since = facts.now - USAGE_WINDOW
    usage = [u for u in facts.store.api_usage() if u.last_request_time >= since]
    details, resources = [], []
    # [INF] The reason when usage is found mirrors the PASSING one.
    used_reason = "Deprecated API usage detected within the last 30 days."
    for row in removed_apis():
        if row.removed_in != version:
            continue
        path = f"/apis/{row.group_version}/{row.plural}"
        stats = [
            {
                "userAgent": u.user_agent,
                "numberOfRequestsLast30Days": u.requests,
                "lastRequestTime": u.last_request_time,
            }
            for u in usage
            if u.path == path
        ]
        detail: dict[str, Any] = {
            "usage": path,
            "replacedWith": f"/apis/{row.replacement}/{row.plural}" if row.replacement else "",
            "stopServingVersion": version,
            "startServingReplacementVersion": row.replacement_since or "",
            "clientStats": stats,
        }
        details.append(detail)
        if row.kind not in KINDS:
            continue
        for obj in facts.store.list(row.kind):
            if KubeStore.last_applied_api_version(obj) != row.group_version:
                continue
            meta = obj["metadata"]
            where = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
            resources.append(
                {
                    "insightStatus": {"status": status_when_used, "reason": used_reason},
                    "kubernetesResourceUri": f"/apis/{row.group_version}{where}/{row.plural}/{meta['name']}",
                }
            )
    used = bool(resources) or any(d["clientStats"] for d in details)
    return _insight(
        facts,
        name,
        version,
        status_when_used if used else "PASSING",
        used_reason if used else PASSING_REASONS[DEPRECATED_APIS],
        description="Checks for usage of deprecated APIs that are scheduled for removal in Kubernetes "
        f"v{version}. Upgrading your cluster before migrating to the updated APIs supported by "
        f"v{version} could cause application impact.",
        recommendation="Update manifests and API clients to use newer Kubernetes APIs if applicable before "
        f"upgrading to Kubernetes v{version}.",
        additional_info={
            "EKS update cluster documentation": "https://docs.aws.amazon.com/eks/latest/userguide/update-cluster.html",
            f"Kubernetes v{version} deprecation guide": "https://kubernetes.io/docs/reference/using-api/"
            f"deprecation-guide/#v{version.replace('.', '-')}",
        },
        resources=resources,
        summary={"deprecationDetails": details},
    )


# ---- version skew -----------------------------------------------------------------------------


def allowed_skew(component_minor: tuple[int, int], control_plane: tuple[int, int]) -> int:
    """How many minors older than the API server a kubelet (or kube-proxy) may be (FIDELITY 3.29):
    3 from Kubernetes 1.28 for a kubelet on 1.25 or later, 2 otherwise."""
    return 3 if control_plane >= (1, 28) and component_minor >= (1, 25) else 2


def _minor_of(text: str | None) -> tuple[int, int] | None:
    match = _MINOR.match(text or "")
    return (int(match[1]), int(match[2])) if match else None


def _kubelet_versions(store: KubeStore) -> list[tuple[str, tuple[int, int]]]:
    found = []
    for node in store.list("Node"):
        minor = _minor_of(((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion"))
        if minor is not None:
            found.append((f"/api/v1/nodes/{node['metadata']['name']}", minor))
    return found


def _kube_proxy_versions(facts: ClusterFacts) -> list[tuple[str, tuple[int, int]]]:
    """The kube-proxy add-on's version, or else the image tag of the kube-proxy DaemonSet."""
    addon = facts.addons.get("kube-proxy")
    if addon is not None:
        minor = _minor_of(addon[0])
        return [(addon[1], minor)] if minor else []
    daemonset = facts.store.get("DaemonSet", "kube-system", "kube-proxy")
    if daemonset is None:
        return []
    containers = daemonset.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
    found = []
    for container in containers:
        minor = _minor_of(str(container.get("image", "")).rpartition(":")[2])
        if minor is not None:
            found.append(("/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy", minor))
    return found


def _skew(
    facts: ClusterFacts, target: str, name: str, components: list[tuple[str, tuple[int, int]]]
) -> dict[str, Any]:
    """ERROR when a component would be outside the supported skew after the upgrade to `target`;
    [INF] WARNING when one is older than the control plane but would stay within it."""
    target_key, current_key = minor_key(target), minor_key(facts.version)
    what = "kubelet" if name == KUBELET_SKEW else "kube-proxy"
    outside, older = [], []
    for where, minor in components:
        behind = target_key[1] - minor[1] if target_key[0] == minor[0] else 99
        if minor > target_key or behind > allowed_skew(minor, target_key):
            outside.append((where, minor))
        elif minor != current_key:
            older.append((where, minor))
    resources = []
    for where, minor in outside:
        # [INF] reason wording.
        version = f"{minor[0]}.{minor[1]}"
        reason = f"{what} {version} would be outside the supported version skew of Kubernetes {target}."
        resource: dict[str, Any] = {"insightStatus": {"status": "ERROR", "reason": reason}}
        resource["arn" if where.startswith("arn:") else "kubernetesResourceUri"] = where
        resources.append(resource)
    if outside:
        status, reason = (
            "ERROR",
            f"{what} versions would be outside the supported version skew after the upgrade.",
        )
    elif older:
        status, reason = "WARNING", f"{what} versions are older than the cluster control plane version."
    else:
        status, reason = "PASSING", PASSING_REASONS[name]
    return _insight(facts, name, target, status, reason, resources=resources)


# ---- add-ons ----------------------------------------------------------------------------------


def _addon_compatibility(facts: ClusterFacts, target: str) -> dict[str, Any]:
    """ERROR when an installed add-on has no version compatible with `target`; the details list every
    installed add-on with the versions compatible with `target` (newest first). [INF] An add-on whose
    installed version is not compatible but that has compatible versions passes: EKS documents
    updating add-ons after the control plane (FIDELITY 3.39-3.42)."""
    details, resources = [], []
    all_installed_compatible = True
    for addon_name, (installed, arn) in sorted(facts.addons.items()):
        entry = facts.catalog.get(addon_name)
        compatible = [v.addon_version for v in entry.versions_for(target)] if entry is not None else []
        details.append({"name": addon_name, "compatibleVersions": compatible})
        all_installed_compatible = all_installed_compatible and installed in compatible
        if not compatible:
            reason = f"No version of {addon_name} is compatible with Kubernetes {target}."  # [INF]
            resources.append({"insightStatus": {"status": "ERROR", "reason": reason}, "arn": arn})
    if resources:
        status, reason = (
            "ERROR",
            "Installed EKS add-ons are not compatible with next Kubernetes version.",
        )  # [INF]
    elif all_installed_compatible:
        status, reason = "PASSING", PASSING_REASONS[ADDON_COMPATIBILITY]
    else:  # [INF] reason wording
        status, reason = (
            "PASSING",
            "Every installed EKS add-on has versions compatible with next Kubernetes version.",
        )
    summary = {"deprecationDetails": [], "addonCompatibilityDetails": details}
    return _insight(facts, ADDON_COMPATIBILITY, target, status, reason, resources=resources, summary=summary)
