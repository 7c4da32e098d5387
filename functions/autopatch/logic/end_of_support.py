"""The end-of-support watcher: each fleet cluster's Kubernetes version against its support dates.

Runs daily. Per region it lists the clusters, describes the fleet's clusters (version and
`upgradePolicy.supportType`) and reads the EKS version catalogue once (`DescribeClusterVersions`).
A cluster's deadline is the end of standard support while its version is in standard support,
else the end of extended support. At the policy's thresholds (days before the deadline; default
90, 60, 30, 14, 7) it puts `EKS Version End Of Support Approaching` on our bus: per cluster only
the tightest threshold crossed and not yet announced, and every looser one is marked announced
with it, so a watcher that was down for weeks sends one event, not five.

Ledger: `ANNOUNCED#control-plane#eos#<version>#<phase>#<threshold>` per announced threshold (the
Health translator adds `...#<phase>#health` and marks the thresholds it covers the same way).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from autopatch import clock
from autopatch.clients.eks import Eks
from autopatch.clients.ledger import Ledger
from autopatch.logic.watcher import announcement_due
from autopatch.models import END_OF_SUPPORT_APPROACHING, EVENT_SOURCE, RETRYABLE_STATUSES
from autopatch.policy import ClusterPolicy, FleetPolicy

EVENTS_PER_PUT = 10  # PutEvents takes at most 10 entries
CONTROL_PLANE = {"kind": "control-plane", "name": "control-plane"}
# Without an upgrade policy in DescribeCluster, EKS's default applies (FIDELITY 3.32).
DEFAULT_SUPPORT_TYPE = "EXTENDED"

Phase = Literal["standard", "extended"]


def announcement_prefix(version: str, phase: str) -> str:
    """The ledger target-key prefix of every announcement about one (version, phase) deadline."""
    return f"control-plane#eos#{version}#{phase}#"


def threshold_key(version: str, phase: str, threshold: int) -> str:
    return f"{announcement_prefix(version, phase)}{threshold}"


def parse_date(value: Any) -> datetime | None:
    """A catalogue date: botocore gives aware datetimes; fakes and JSON give ISO text."""
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def day(moment: datetime) -> str:
    return clock.iso(moment)[:10]


@dataclass(frozen=True)
class SupportWindow:
    """One Kubernetes version's support dates, as `DescribeClusterVersions` gives them."""

    version: str
    end_of_standard: datetime | None
    end_of_extended: datetime | None
    status: str  # versionStatus: STANDARD_SUPPORT | EXTENDED_SUPPORT | UNSUPPORTED ("" if not given)

    @classmethod
    def from_entry(cls, entry: dict[str, Any]) -> SupportWindow:
        status = str(entry.get("versionStatus") or entry.get("status") or "")
        return cls(
            version=str(entry.get("clusterVersion", "")),
            end_of_standard=parse_date(entry.get("endOfStandardSupportDate")),
            end_of_extended=parse_date(entry.get("endOfExtendedSupportDate")),
            # The deprecated `status` is lowercase with hyphens (FIDELITY 3.38).
            status=status.upper().replace("-", "_"),
        )


@dataclass(frozen=True)
class Deadline:
    phase: Phase
    at: datetime
    past: bool  # the end of extended support has passed: EKS may upgrade at any time (3.35)


def deadline_of(window: SupportWindow, now: datetime) -> Deadline | None:
    """The support that ends next for this version, by the catalogue's dates and the clock.

    The dates decide, not `versionStatus`: the status is a snapshot, the clock is what counts
    (and the rehearsal moves it). Without the date that matters there is nothing to count down to.
    """
    standard, extended = window.end_of_standard, window.end_of_extended
    if standard is not None and now < standard:
        return Deadline("standard", standard, past=False)
    if standard is None and window.status not in ("EXTENDED_SUPPORT", "UNSUPPORTED"):
        return None
    if extended is None:
        return None
    return Deadline("extended", extended, past=now >= extended)


def days_left(deadline: datetime, now: datetime) -> int:
    """Whole days left before the deadline (negative once it has passed)."""
    return math.floor((deadline - now).total_seconds() / 86400)


def crossed(thresholds: Iterable[int], deadline: datetime, now: datetime) -> list[int]:
    """The thresholds already reached (no more than that many days left), tightest first."""
    return sorted({t for t in thresholds if deadline - now <= timedelta(days=t)})


def explain(*, version: str, deadline: Deadline, support_type: str, left: int, target: str) -> str:
    """Why this cluster should move, in words for the report and Slack."""
    date = day(deadline.at)
    if deadline.past:
        return (
            f"Kubernetes {version} reached the end of extended support on {date} ({-left} days ago): "
            "EKS may upgrade the control plane at any time, without notice, and leaves node groups on "
            f"the old version. Upgrade to {target} now."
        )
    if deadline.phase == "standard":
        after = (
            "upgradePolicy.supportType is STANDARD, so EKS will upgrade the control plane "
            "automatically at the end of standard support."
            if support_type == "STANDARD"
            else "after that the cluster runs in extended support, which costs more."
        )
        return f"Kubernetes {version} leaves standard support on {date} ({left} days); {after}"
    automatic = (
        " upgradePolicy.supportType is STANDARD, so EKS may upgrade it at any time now."
        if support_type == "STANDARD"
        else ""
    )
    return (
        f"Kubernetes {version} is in extended support (it costs more); extended support ends on {date} "
        f"({left} days), after which EKS upgrades the control plane at any time without notice." + automatic
    )


@dataclass
class Announcement:
    cluster: str
    version: str
    phase: str
    deadline: str
    daysLeft: int
    threshold: int
    supportType: str
    inExtendedSupport: bool
    target: str
    why: str


@dataclass
class EndOfSupportResult:
    clusters: int = 0
    announced: list[Announcement] = field(default_factory=list)
    quiet: list[dict[str, Any]] = field(default_factory=list)  # not near a threshold, or told already
    missing: list[str] = field(default_factory=list)  # in the policy, not in EKS
    past_end_of_support: list[dict[str, Any]] = field(default_factory=list)  # past extended support
    pinned: list[dict[str, Any]] = field(default_factory=list)  # pinned target reached, deadline near

    def as_dict(self) -> dict[str, Any]:
        return {
            "clusters": self.clusters,
            "announced": [a.__dict__ for a in self.announced],
            "quiet": self.quiet,
            "missing": self.missing,
            "pastEndOfSupport": self.past_end_of_support,
            "pinned": self.pinned,
        }


def support_type_of(cluster: dict[str, Any]) -> str:
    value = str((cluster.get("upgradePolicy") or {}).get("supportType") or DEFAULT_SUPPORT_TYPE)
    return value if value in ("STANDARD", "EXTENDED") else DEFAULT_SUPPORT_TYPE


def event_detail(
    cluster_policy: ClusterPolicy,
    *,
    current: str,
    target: str,
    deadline: Deadline,
    support_type: str,
    threshold: int,
    now: datetime,
) -> dict[str, Any]:
    """The `EKS Version End Of Support Approaching` detail (models.TriggerDetail)."""
    return {
        "clusterName": cluster_policy.name,
        "accountId": cluster_policy.accountId,
        "region": cluster_policy.region,
        "component": dict(CONTROL_PLANE),
        "currentVersion": current,
        "targetVersion": target,
        "detectedAt": clock.iso(now),
        "deadline": clock.iso(deadline.at),
        "supportPhase": deadline.phase,
        "supportType": support_type,
        "thresholdDays": threshold,
    }


@dataclass
class Pending:
    """An event to put, and the ledger keys to mark announced once it has an EventId."""

    cluster_policy: ClusterPolicy
    detail: dict[str, Any]
    keys: list[str]
    announcement: Announcement


def put_announcements(
    pending: list[Pending], *, events: Any, bus: str, ledger: Ledger, result: list[Announcement]
) -> None:
    """PutEvents in batches of 10; only an entry that got an EventId is recorded and reported."""
    for start in range(0, len(pending), EVENTS_PER_PUT):
        batch = pending[start : start + EVENTS_PER_PUT]
        response = events.put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": END_OF_SUPPORT_APPROACHING,
                    "Detail": json.dumps(item.detail),
                    "EventBusName": bus,
                    "Resources": [],
                }
                for item in batch
            ]
        )
        for item, entry in zip(batch, response["Entries"], strict=True):
            if "EventId" not in entry:
                continue
            for key in item.keys:
                ledger.record_announced(item.cluster_policy.key, key, entry["EventId"])
            result.append(item.announcement)


class _Pass:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.now = clock.now()
        self.result = EndOfSupportResult()
        self.pending: list[Pending] = []

    def cluster(
        self, cluster_policy: ClusterPolicy, cluster: dict[str, Any], catalogue: dict[str, Any]
    ) -> None:
        self.result.clusters += 1
        where = {"cluster": cluster_policy.name, "region": cluster_policy.region}
        version = str(cluster.get("version", ""))
        support_type = support_type_of(cluster)
        if str(cluster.get("status", "")) == "DELETING":
            self.result.quiet.append({**where, "version": version, "why": "the cluster is being deleted"})
            return
        entry = catalogue.get(version)
        if entry is None:
            why = f"DescribeClusterVersions does not list Kubernetes {version}"
            self.result.quiet.append({**where, "version": version, "why": why})
            return
        deadline = deadline_of(SupportWindow.from_entry(entry), self.now)
        if deadline is None:
            why = f"no end-of-support date is published for Kubernetes {version}"
            self.result.quiet.append({**where, "version": version, "why": why})
            return
        left = days_left(deadline.at, self.now)
        target = cluster_policy.upgrade_target(version)
        facts = {
            **where,
            "version": version,
            "phase": deadline.phase,
            "deadline": clock.iso(deadline.at),
            "daysLeft": left,
            "supportType": support_type,
            "inExtendedSupport": deadline.phase == "extended",
        }
        if deadline.past:
            self.result.past_end_of_support.append(
                {
                    **facts,
                    "target": target,
                    "why": f"Kubernetes {version} reached the end of extended support on "
                    f"{day(deadline.at)}: EKS may upgrade the control plane at any time, without notice "
                    "(node groups stay behind).",
                }
            )
        reached = crossed(cluster_policy.endOfSupportThresholds, deadline.at, self.now)
        if not reached:
            self.result.quiet.append({**facts, "why": f"{left} days left; no threshold reached"})
            return
        if target is None:
            self.result.pinned.append(
                {
                    **facts,
                    "why": f"pinned at {cluster_policy.upgradeTarget}, which reaches the end of "
                    f"{deadline.phase} support on {day(deadline.at)}; raise the pin",
                }
            )
            return
        tightest = 0 if deadline.past else reached[0]
        target_key = f"control-plane#control-plane#{target}"
        keys = [threshold_key(version, deadline.phase, t) for t in sorted({tightest, *reached})]
        why = explain(version=version, deadline=deadline, support_type=support_type, left=left, target=target)
        if self.ledger.get_announced(cluster_policy.key, threshold_key(version, deadline.phase, tightest)):
            # Sent already. An upgrade that then ended failed, rejected or blocked (say a node group
            # lagged) is announced again after the policy's retryAfter, like any other target.
            claim = self.ledger.get_target(cluster_policy.key, target_key)
            retry = (
                announcement_due(self.ledger, cluster_policy, target_key)
                if claim and claim.get("status") in RETRYABLE_STATUSES
                else None
            )
            if retry is None:
                self.result.quiet.append({**facts, "why": f"the {tightest}-day notice was sent already"})
                return
            why, keys = f"{why} Again: {retry}.", [target_key]
        self.pending.append(
            Pending(
                cluster_policy=cluster_policy,
                detail=event_detail(
                    cluster_policy,
                    current=version,
                    target=target,
                    deadline=deadline,
                    support_type=support_type,
                    threshold=tightest,
                    now=self.now,
                ),
                # The tightest, and every looser one with it: they will not be sent later.
                keys=keys,
                announcement=Announcement(
                    cluster=cluster_policy.name,
                    version=version,
                    phase=deadline.phase,
                    deadline=clock.iso(deadline.at),
                    daysLeft=left,
                    threshold=tightest,
                    supportType=support_type,
                    inExtendedSupport=deadline.phase == "extended",
                    target=target,
                    why=why,
                ),
            )
        )


def watch_end_of_support(
    *, policy: FleetPolicy, ledger: Ledger, eks_for: Callable[[str], Eks], events: Any, bus: str
) -> EndOfSupportResult:
    """Announce the control-plane upgrades that end-of-support dates call for."""
    watch = _Pass(ledger)
    regions: dict[str, list[ClusterPolicy]] = {}
    for cluster_policy in policy.effective():
        regions.setdefault(cluster_policy.region, []).append(cluster_policy)
    for region, cluster_policies in sorted(regions.items()):
        eks = eks_for(region)
        existing, _ = eks.list_clusters()
        described: list[tuple[ClusterPolicy, dict[str, Any]]] = []
        for cluster_policy in cluster_policies:
            if cluster_policy.name not in existing:
                watch.result.missing.append(cluster_policy.name)
                continue
            described.append((cluster_policy, eks.describe_cluster(cluster_policy.name)))
        if not described:
            continue
        catalogue = eks.cluster_versions(sorted({str(c.get("version", "")) for _, c in described}))
        for cluster_policy, cluster in described:
            watch.cluster(cluster_policy, cluster, catalogue)
    put_announcements(watch.pending, events=events, bus=bus, ledger=ledger, result=watch.result.announced)
    return watch.result
