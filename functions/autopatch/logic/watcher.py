"""The release watcher: what AWS offers against what each fleet cluster runs.

AWS sends no event when a new add-on version or EKS AMI is published, so this runs on a schedule
and puts our own `EKS Add-on Version Available` and `EKS AMI Release Available` events on our bus.
In a pass it asks `DescribeAddonVersions` once per distinct (Kubernetes version, add-on) and the
AMI release parameter once per (Kubernetes version, AMI type), not once per cluster or node group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from autopatch import clock
from autopatch.addons import ONE_MINOR_PER_STEP, AddonVersion
from autopatch.amis import ReleaseVersion, not_tracked_reason, release_parameter
from autopatch.clients import aws
from autopatch.clients.eks import Eks
from autopatch.clients.ledger import Ledger
from autopatch.models import (
    ADDON_VERSION_AVAILABLE,
    AMI_RELEASE_AVAILABLE,
    EVENT_SOURCE,
    HOLDING_STATUSES,
    RETRYABLE_STATUSES,
)
from autopatch.policy import ClusterPolicy, FleetPolicy

EVENTS_PER_PUT = 10  # PutEvents takes at most 10 entries


@dataclass
class Announcement:
    cluster: str
    kind: str  # addon | nodegroup
    component: str
    current: str
    target: str
    why: str


@dataclass
class WatcherResult:
    clusters: int = 0
    announced: list[Announcement] = field(default_factory=list)
    quiet: list[dict[str, str]] = field(default_factory=list)  # up to date, or already announced
    missing: list[str] = field(default_factory=list)  # in the policy, not in EKS
    not_tracked: list[dict[str, str]] = field(default_factory=list)  # node groups we cannot follow

    def as_dict(self) -> dict[str, Any]:
        return {
            "clusters": self.clusters,
            "announced": [a.__dict__ for a in self.announced],
            "quiet": self.quiet,
            "missing": self.missing,
            "notTracked": self.not_tracked,
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


DETAIL_TYPES = {"addon": ADDON_VERSION_AVAILABLE, "nodegroup": AMI_RELEASE_AVAILABLE}


class _Pass:
    """One watcher pass: what to announce, asking each question of AWS once."""

    def __init__(self, *, ledger: Ledger, ssm_parameter: Callable[[str, str], str | None]) -> None:
        self.ledger = ledger
        self.ssm_parameter = ssm_parameter
        self.result = WatcherResult()
        self.pending: list[tuple[ClusterPolicy, str, dict[str, Any], Announcement]] = []
        self.offered: dict[tuple[str, str], list[dict[str, Any]]] = {}  # (k8s, add-on) -> versions
        self.releases: dict[tuple[str, str, str], str | None] = {}  # (region, k8s, AMI type) -> release

    def cluster(self, cluster_policy: ClusterPolicy, eks: Eks) -> None:
        self.result.clusters += 1
        kubernetes = str(eks.describe_cluster(cluster_policy.name)["version"])
        installed = set(eks.list_addons(cluster_policy.name))
        for addon_name in cluster_policy.addons:
            if addon_name not in installed:
                continue
            addon = eks.describe_addon(cluster_policy.name, addon_name) or {}
            current = str(addon.get("addonVersion", ""))
            pair = (kubernetes, addon_name)
            if pair not in self.offered:
                self.offered[pair] = eks.addon_versions(addon_name, kubernetes)
            target = choose_target(addon_name, current, self.offered[pair], kubernetes)
            self.consider(cluster_policy, "addon", addon_name, current, target)
        if cluster_policy.nodegroups == []:
            return  # the policy rolls no node groups here: nothing to ask
        for name in eks.list_nodegroups(cluster_policy.name):
            if cluster_policy.nodegroups is not None and name not in cluster_policy.nodegroups:
                continue
            nodegroup = eks.describe_nodegroup(cluster_policy.name, name) or {}
            self.nodegroup(cluster_policy, nodegroup, kubernetes)

    def nodegroup(self, cluster_policy: ClusterPolicy, nodegroup: dict[str, Any], kubernetes: str) -> None:
        name, ami_type = str(nodegroup.get("nodegroupName")), str(nodegroup.get("amiType", "CUSTOM"))
        reason = not_tracked_reason(ami_type)
        parameter = release_parameter(ami_type, kubernetes)
        if reason is None and parameter is None:
            reason = f"{ami_type}: no AMI is published for Kubernetes {kubernetes}"
        if reason is not None or parameter is None:
            self.result.not_tracked.append(
                {"cluster": cluster_policy.name, "nodegroup": name, "amiType": ami_type, "why": str(reason)}
            )
            return
        key = (cluster_policy.region, kubernetes, ami_type)
        if key not in self.releases:
            self.releases[key] = self.ssm_parameter(cluster_policy.region, parameter)
        recommended, current = self.releases[key], str(nodegroup.get("releaseVersion", ""))
        newer = (
            recommended is not None
            and ReleaseVersion.is_valid(recommended)
            and ReleaseVersion.is_valid(current)
            and ReleaseVersion.parse(recommended) > ReleaseVersion.parse(current)
        )
        target = recommended if newer else None
        self.consider(cluster_policy, "nodegroup", name, current, target)

    def consider(
        self, cluster_policy: ClusterPolicy, kind: str, name: str, current: str, target: str | None
    ) -> None:
        where = {"cluster": cluster_policy.name, "kind": kind, "component": name}
        if target is None:
            self.result.quiet.append({**where, "why": "up to date"})
            return
        target_key = f"{kind}#{name}#{target}"
        why = announcement_due(self.ledger, cluster_policy, target_key)
        if why is None:
            self.result.quiet.append({**where, "why": f"{target} already handled"})
            return
        detail = {
            "clusterName": cluster_policy.name,
            "accountId": cluster_policy.accountId,
            "region": cluster_policy.region,
            "component": {"kind": kind, "name": name},
            "currentVersion": current,
            "targetVersion": target,
            "detectedAt": clock.iso(clock.now()),
        }
        announcement = Announcement(cluster_policy.name, kind, name, current, target, why)
        self.pending.append((cluster_policy, target_key, detail, announcement))

    def announce(self, events: Any, bus: str) -> None:
        for start in range(0, len(self.pending), EVENTS_PER_PUT):
            batch = self.pending[start : start + EVENTS_PER_PUT]
            response = events.put_events(
                Entries=[
                    {
                        "Source": EVENT_SOURCE,
                        "DetailType": DETAIL_TYPES[announcement.kind],
                        "Detail": json.dumps(detail),
                        "EventBusName": bus,
                        "Resources": [],
                    }
                    for _, _, detail, announcement in batch
                ]
            )
            for (cluster_policy, target_key, _, announcement), entry in zip(
                batch, response["Entries"], strict=True
            ):
                if "EventId" in entry:
                    self.ledger.record_announced(cluster_policy.key, target_key, entry["EventId"])
                    self.result.announced.append(announcement)


def watch_releases(
    *,
    policy: FleetPolicy,
    ledger: Ledger,
    eks_for: Callable[[str], Eks],
    events: Any,
    bus: str,
    ssm_parameter: Callable[[str, str], str | None] = aws.ssm_parameter,
) -> WatcherResult:
    """Compare what AWS offers with what the fleet runs; announce what a cluster could move to."""
    watch = _Pass(ledger=ledger, ssm_parameter=ssm_parameter)
    regions: dict[str, list[ClusterPolicy]] = {}
    for cluster_policy in policy.effective():
        regions.setdefault(cluster_policy.region, []).append(cluster_policy)
    for region, cluster_policies in sorted(regions.items()):
        eks = eks_for(region)
        existing, _ = eks.list_clusters()
        for cluster_policy in cluster_policies:
            if cluster_policy.name not in existing:
                watch.result.missing.append(cluster_policy.name)
                continue
            watch.cluster(cluster_policy, eks)
    watch.announce(events, bus)
    return watch.result
