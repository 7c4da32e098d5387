"""The release watcher: what AWS offers against what each fleet cluster runs.

AWS sends no event when a new add-on version is published, so this runs on a schedule and puts our
own `EKS Add-on Version Available` events on our bus. It asks `DescribeAddonVersions` once per
distinct (Kubernetes version, add-on) in a pass, not once per cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from autopatch import clock
from autopatch.addons import ONE_MINOR_PER_STEP, AddonVersion
from autopatch.clients.eks import Eks
from autopatch.clients.ledger import Ledger
from autopatch.models import ADDON_VERSION_AVAILABLE, EVENT_SOURCE, HOLDING_STATUSES, RETRYABLE_STATUSES
from autopatch.policy import ClusterPolicy, FleetPolicy

EVENTS_PER_PUT = 10  # PutEvents takes at most 10 entries


@dataclass
class Announcement:
    cluster: str
    addon: str
    current: str
    target: str
    why: str


@dataclass
class WatcherResult:
    clusters: int = 0
    announced: list[Announcement] = field(default_factory=list)
    quiet: list[dict[str, str]] = field(default_factory=list)  # up to date, or already announced
    missing: list[str] = field(default_factory=list)  # in the policy, not in EKS

    def as_dict(self) -> dict[str, Any]:
        return {
            "clusters": self.clusters,
            "announced": [a.__dict__ for a in self.announced],
            "quiet": self.quiet,
            "missing": self.missing,
        }


def choose_target(addon: str, installed: str, offered: list[dict[str, Any]], kubernetes: str) -> str | None:
    """The newest version compatible with the cluster, newer than installed (one minor for vpc-cni)."""
    try:
        current = AddonVersion.parse(installed)
    except ValueError:
        return None
    candidates = []
    for entry in offered:
        text = entry.get("addonVersion", "")
        if not AddonVersion.is_valid(text):
            continue
        if not any(c.get("clusterVersion") == kubernetes for c in entry.get("compatibilities", [])):
            continue
        version = AddonVersion.parse(text)
        if version <= current:
            continue
        if addon in ONE_MINOR_PER_STEP and version.minor_distance(current) > 1:
            continue
        candidates.append(version)
    return max(candidates).text if candidates else None


def _parse_time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def announcement_due(ledger: Ledger, policy: ClusterPolicy, target_key: str) -> str | None:
    """Why this target should be announced now, or None if it should not."""
    claim = ledger.get_target(policy.key, target_key)
    retry_after = timedelta(seconds=policy.retryAfter)
    now = clock.now()
    if claim and claim.get("status") in HOLDING_STATUSES:
        return None
    if claim and claim.get("status") in RETRYABLE_STATUSES:
        finished = _parse_time(claim.get("finishedAt"))
        if finished is None or finished + retry_after > now:
            return None
        announced = ledger.get_announced(policy.key, target_key)
        again = _parse_time(announced.get("announcedAt")) if announced else None
        if again is not None and again > finished:  # announced again already; wait for its workflow
            return "announced again but never claimed" if again + retry_after <= now else None
        return f"retry after {claim.get('status')} ({claim.get('reason')})"
    if claim:  # rolled_back or skipped: a person should look before it is tried again
        return None
    announced = ledger.get_announced(policy.key, target_key)
    if announced is None:
        return "new version"
    at = _parse_time(announced.get("announcedAt"))
    if at and at + retry_after <= now:
        return "announced before but never claimed"
    return None


def watch_addon_releases(
    *, policy: FleetPolicy, ledger: Ledger, eks_for: Callable[[str], Eks], events: Any, bus: str
) -> WatcherResult:
    result = WatcherResult()
    regions: dict[str, list[ClusterPolicy]] = {}
    for cluster_policy in policy.effective():
        regions.setdefault(cluster_policy.region, []).append(cluster_policy)
    pending: list[tuple[ClusterPolicy, str, dict[str, Any], Announcement]] = []
    for region, cluster_policies in sorted(regions.items()):
        eks = eks_for(region)
        existing, _ = eks.list_clusters()
        offered_by_pair: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for cluster_policy in cluster_policies:
            if cluster_policy.name not in existing:
                result.missing.append(cluster_policy.name)
                continue
            result.clusters += 1
            kubernetes = str(eks.describe_cluster(cluster_policy.name)["version"])
            installed_names = set(eks.list_addons(cluster_policy.name))
            for addon_name in cluster_policy.addons:
                if addon_name not in installed_names:
                    continue
                addon = eks.describe_addon(cluster_policy.name, addon_name) or {}
                installed = str(addon.get("addonVersion", ""))
                pair = (kubernetes, addon_name)
                if pair not in offered_by_pair:
                    offered_by_pair[pair] = eks.addon_versions(addon_name, kubernetes)
                target = choose_target(addon_name, installed, offered_by_pair[pair], kubernetes)
                if target is None:
                    result.quiet.append(
                        {"cluster": cluster_policy.name, "addon": addon_name, "why": "up to date"}
                    )
                    continue
                target_key = f"addon#{addon_name}#{target}"
                why = announcement_due(ledger, cluster_policy, target_key)
                if why is None:
                    result.quiet.append(
                        {
                            "cluster": cluster_policy.name,
                            "addon": addon_name,
                            "why": f"{target} already handled",
                        }
                    )
                    continue
                detail = {
                    "clusterName": cluster_policy.name,
                    "accountId": cluster_policy.accountId,
                    "region": cluster_policy.region,
                    "component": {"kind": "addon", "name": addon_name},
                    "currentVersion": installed,
                    "targetVersion": target,
                    "detectedAt": clock.iso(clock.now()),
                }
                pending.append(
                    (
                        cluster_policy,
                        target_key,
                        detail,
                        Announcement(cluster_policy.name, addon_name, installed, target, why),
                    )
                )
    for start in range(0, len(pending), EVENTS_PER_PUT):
        batch = pending[start : start + EVENTS_PER_PUT]
        response = events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": ADDON_VERSION_AVAILABLE,
                    "Detail": json.dumps(detail),
                    "EventBusName": bus,
                    "Resources": [],
                }
                for _, _, detail, _ in batch
            ]
        )
        for (cluster_policy, target_key, _, announcement), entry in zip(
            batch, response["Entries"], strict=True
        ):
            if "EventId" in entry:
                ledger.record_announced(cluster_policy.key, target_key, entry["EventId"])
                result.announced.append(announcement)
    return result
