"""The AWS Health translator: EKS planned lifecycle events into our end-of-support announcements.

AWS Health puts `AWS_EKS_PLANNED_LIFECYCLE_EVENT` (category `scheduledChange`) on the account's
default bus only, in its own shape (FIDELITY 5.10-5.13). A rule there hands it to this translator,
which matches `affectedEntities` to fleet clusters (a cluster ARN, or a bare name in the event's
region and account), skips entities Health lists as RESOLVED, and puts the same
`EKS Version End Of Support Approaching` event the end-of-support watcher puts on our bus, with
`deadline` = the event's `startTime`. Health delivers at least once (5.15): an announcement already
made for the same (cluster, version, support phase), by the watcher or by an earlier delivery, is
not made again. Entities that match no fleet cluster are reported, never dropped silently; an
event that is not what the rule promised is reported and nothing is put.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from botocore.exceptions import ClientError

from autopatch import clock
from autopatch.clients.eks import Eks, error_code
from autopatch.clients.ledger import Ledger
from autopatch.logic.end_of_support import (
    Announcement,
    Deadline,
    Pending,
    SupportWindow,
    announcement_prefix,
    day,
    days_left,
    deadline_of,
    event_detail,
    explain,
    put_announcements,
    support_type_of,
)
from autopatch.observability import logger, metrics
from autopatch.policy import ClusterPolicy, FleetPolicy

HEALTH_SOURCE = "aws.health"
HEALTH_DETAIL_TYPE = "AWS Health Event"
EKS_LIFECYCLE_EVENT = "AWS_EKS_PLANNED_LIFECYCLE_EVENT"
HEALTH_KEY = "health"
# How far Health's startTime may sit from the catalogue's date and still be the same deadline.
SAME_DEADLINE = timedelta(days=3)

_CLUSTER_ARN = re.compile(r"^arn:aws[a-z-]*:eks:([a-z0-9-]+):(\d{12}):cluster/([0-9A-Za-z][A-Za-z0-9_-]*)$")
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$")


class HealthEventError(ValueError):
    """The event is not an EKS planned lifecycle event this translator can read."""


def parse_health_time(value: Any) -> datetime | None:
    """Health's times: RFC 1123 in EventBridge ("Wed, 31 Jan 2024 02:00:00 GMT"), or ISO 8601."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return parsed if parsed.tzinfo else None


@dataclass(frozen=True)
class LifecycleEvent:
    arn: str
    region: str
    account: str
    start: datetime
    category: str
    status: str
    entities: list[dict[str, Any]]


def read_event(event: Any) -> LifecycleEvent:
    """The fields the translator needs, or `HealthEventError` saying what is wrong."""
    if not isinstance(event, dict):
        raise HealthEventError(f"the event is a {type(event).__name__}, not a JSON object")
    if event.get("source") != HEALTH_SOURCE:
        raise HealthEventError(f"source is {event.get('source')!r}, not {HEALTH_SOURCE!r}")
    if event.get("detail-type") != HEALTH_DETAIL_TYPE:
        raise HealthEventError(f"detail-type is {event.get('detail-type')!r}, not {HEALTH_DETAIL_TYPE!r}")
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise HealthEventError("the event has no detail object")
    if detail.get("service") != "EKS" or detail.get("eventTypeCode") != EKS_LIFECYCLE_EVENT:
        raise HealthEventError(
            f"detail is {detail.get('service')!r}/{detail.get('eventTypeCode')!r}, "
            f"not 'EKS'/{EKS_LIFECYCLE_EVENT!r}"
        )
    start = parse_health_time(detail.get("startTime"))
    if start is None:
        raise HealthEventError(f"detail.startTime {detail.get('startTime')!r} is not a date")
    region = str(detail.get("eventRegion") or event.get("region") or "")
    account = str(detail.get("affectedAccount") or event.get("account") or "")
    if not region or not account:
        raise HealthEventError(
            "neither detail.eventRegion/affectedAccount nor the envelope name a region and account"
        )
    entities = detail.get("affectedEntities", [])
    if not isinstance(entities, list):
        raise HealthEventError("detail.affectedEntities is not a list")
    return LifecycleEvent(
        arn=str(detail.get("eventArn", "")),
        region=region,
        account=account,
        start=start,
        category=str(detail.get("eventTypeCategory", "")),
        status=str(detail.get("statusCode", "")),
        entities=[e for e in entities if isinstance(e, dict)],
    )


def cluster_of(entity_value: str, *, region: str, account: str) -> tuple[str, str, str] | None:
    """(account, region, name) of an affected entity: a cluster ARN, or a bare cluster name."""
    match = _CLUSTER_ARN.match(entity_value)
    if match:
        return match.group(2), match.group(1), match.group(3)
    if _CLUSTER_NAME.match(entity_value):
        return account, region, entity_value
    return None


def phase_for(window: SupportWindow | None, start: datetime, now: datetime) -> tuple[str, str] | None:
    """Which support Health's startTime ends ("standard"/"extended") and how that was decided.

    None: the catalogue says the cluster's version is supported well past that date, so the notice
    is about a version the cluster has left (Health updates entities asynchronously, up to 72 h).
    """
    if window is None:
        return "standard", "inferred: the version is not in DescribeClusterVersions"
    for phase, end in (("standard", window.end_of_standard), ("extended", window.end_of_extended)):
        if end is not None and abs(end - start) <= SAME_DEADLINE:
            return phase, f"startTime is the end of {phase} support in DescribeClusterVersions"
    ends = [d for d in (window.end_of_standard, window.end_of_extended) if d is not None]
    if ends and all(end > start + SAME_DEADLINE for end in ends):
        return None
    current = deadline_of(window, now)
    return (current.phase if current else "standard"), "inferred from the version's support dates"


def in_extended_support(window: SupportWindow | None, phase: str, now: datetime) -> bool:
    """Whether the cluster's version is in (paid) extended support now."""
    current = deadline_of(window, now) if window is not None else None
    return current.phase == "extended" if current is not None else phase == "extended"


@dataclass
class HealthResult:
    status: str = "translated"  # translated | invalid
    reason: str | None = None
    eventArn: str = ""
    region: str = ""
    account: str = ""
    deadline: str | None = None
    announced: list[Announcement] = field(default_factory=list)
    quiet: list[dict[str, Any]] = field(default_factory=list)  # already announced
    unmatched: list[dict[str, Any]] = field(default_factory=list)  # no fleet cluster
    resolved: list[str] = field(default_factory=list)  # Health lists them RESOLVED
    stale: list[dict[str, Any]] = field(default_factory=list)  # the cluster left that version
    pinned: list[dict[str, Any]] = field(default_factory=list)
    notFound: list[str] = field(default_factory=list)  # in the fleet, not in EKS

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["announced"] = [a.__dict__ for a in self.announced]
        return out


def _metric(name: str, value: int) -> None:
    from aws_lambda_powertools.metrics import MetricUnit

    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def translate_health_event(
    event: Any, *, policy: FleetPolicy, ledger: Ledger, eks_for: Callable[[str], Eks], events: Any, bus: str
) -> HealthResult:
    """Put our end-of-support event for each fleet cluster an EKS planned lifecycle event names."""
    try:
        health = read_event(event)
    except HealthEventError as exc:
        logger.error("not an EKS planned lifecycle event; nothing translated", extra={"problem": str(exc)})
        _metric("HealthEventsInvalid", 1)
        return HealthResult(status="invalid", reason=str(exc))
    now = clock.now()
    result = HealthResult(
        eventArn=health.arn, region=health.region, account=health.account, deadline=clock.iso(health.start)
    )
    if health.category != "scheduledChange":
        logger.warning("unexpected eventTypeCategory (5.14)", extra={"category": health.category})

    matched: dict[str, ClusterPolicy] = {}
    for entity in health.entities:
        value = str(entity.get("entityValue", ""))
        if str(entity.get("status", "")).upper() == "RESOLVED":
            result.resolved.append(value)
            continue
        where = cluster_of(value, region=health.region, account=health.account)
        cluster_policy = policy.cluster(*where) if where else None
        if cluster_policy is None:
            result.unmatched.append({"entityValue": value, "status": entity.get("status")})
            continue
        matched.setdefault(cluster_policy.key, cluster_policy)  # an ARN and a name may both be listed

    pending: list[Pending] = []
    by_region: dict[str, list[ClusterPolicy]] = {}
    for cluster_policy in matched.values():
        by_region.setdefault(cluster_policy.region, []).append(cluster_policy)
    for region, cluster_policies in sorted(by_region.items()):
        eks = eks_for(region)
        described: list[tuple[ClusterPolicy, dict[str, Any]]] = []
        for cluster_policy in cluster_policies:
            try:
                described.append((cluster_policy, eks.describe_cluster(cluster_policy.name)))
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                result.notFound.append(cluster_policy.name)
        if not described:
            continue
        catalogue = eks.cluster_versions(sorted({str(c.get("version", "")) for _, c in described}))
        for cluster_policy, cluster in described:
            item = _consider(cluster_policy, cluster, catalogue, health, now, ledger, result)
            if item is not None:
                pending.append(item)
    put_announcements(pending, events=events, bus=bus, ledger=ledger, result=result.announced)

    if result.unmatched:
        logger.warning(
            "AWS Health names EKS resources that are not fleet clusters",
            extra={"eventArn": health.arn, "unmatched": result.unmatched},
        )
        _metric("HealthEntitiesUnmatched", len(result.unmatched))
    _metric("HealthAnnouncements", len(result.announced))
    return result


def _consider(
    cluster_policy: ClusterPolicy,
    cluster: dict[str, Any],
    catalogue: dict[str, Any],
    health: LifecycleEvent,
    now: datetime,
    ledger: Ledger,
    result: HealthResult,
) -> Pending | None:
    version = str(cluster.get("version", ""))
    support_type = support_type_of(cluster)
    entry = catalogue.get(version)
    window = SupportWindow.from_entry(entry) if entry is not None else None
    where = {"cluster": cluster_policy.name, "region": cluster_policy.region, "version": version}
    decided = phase_for(window, health.start, now)
    if decided is None:
        why = (
            f"Kubernetes {version} is supported well past {day(health.start)}: "
            "the notice is about a version the cluster has left"
        )
        result.stale.append({**where, "why": why})
        return None
    phase, how = decided
    left = days_left(health.start, now)
    deadline = Deadline("extended" if phase == "extended" else "standard", health.start, past=left < 0)
    target = cluster_policy.upgrade_target(version)
    if target is None:
        result.pinned.append(
            {
                **where,
                "why": f"pinned at {cluster_policy.upgradeTarget}, which reaches the end of {phase} "
                f"support on {day(health.start)}; raise the pin",
            }
        )
        return None
    prefix = announcement_prefix(version, phase)
    earlier = ledger.announced_under(cluster_policy.key, prefix)
    if earlier:
        told = sorted(str(item["sk"]).rsplit("#", 1)[-1] for item in earlier)
        result.quiet.append({**where, "phase": phase, "why": f"already announced ({', '.join(told)})"})
        return None
    threshold = max(left, 0)
    why = "AWS Health planned lifecycle event: " + explain(
        version=version, deadline=deadline, support_type=support_type, left=left, target=target
    )
    # The watcher's thresholds this notice already covers are marked too, so it does not repeat them.
    # (Those with no fewer days than are left, in whole days: a notice 90.3 days out covers 90.)
    keys = [prefix + HEALTH_KEY] + [
        prefix + str(t) for t in sorted(set(cluster_policy.endOfSupportThresholds)) if t >= left
    ]
    return Pending(
        cluster_policy=cluster_policy,
        detail=event_detail(
            cluster_policy,
            current=version,
            target=target,
            deadline=deadline,
            support_type=support_type,
            threshold=threshold,
            now=now,
        ),
        keys=keys,
        announcement=Announcement(
            cluster=cluster_policy.name,
            version=version,
            phase=phase,
            deadline=clock.iso(health.start),
            daysLeft=left,
            threshold=threshold,
            supportType=support_type,
            inExtendedSupport=in_extended_support(window, phase, now),
            target=target,
            why=f"{why} (phase {how})",
        ),
    )
