"""The EKS Kubernetes version calendar as `DescribeClusterVersions` serves it (FIDELITY 3.32-3.38).

Dates come from scenarios/data/kubernetes_versions.json; EKS states them as UTC calendar dates and
returns them as timestamps at 00:00 UTC of that date (api_samples/describe_cluster_versions.json:
2024-09-25T17:00:00-07:00 is 2024-09-26T00:00Z). Every status is computed from the simulated now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import cache
from typing import Any

from rehearsal.eks.catalog import KubernetesVersion, load_kubernetes_versions, minor_key

VERSION_STATUSES = ("UNSUPPORTED", "STANDARD_SUPPORT", "EXTENDED_SUPPORT")
# The deprecated `status` member (botocore's ClusterVersionStatus) spells the same values in lowercase.
DEPRECATED_STATUS = {
    "UNSUPPORTED": "unsupported",
    "STANDARD_SUPPORT": "standard-support",
    "EXTENDED_SUPPORT": "extended-support",
}
CLUSTER_TYPE = "eks"
# [INF] Every cluster the simulator creates or upgrades is on platform version eks.1 (the UpdateClusterVersion
# example of FIDELITY 3.3), so that is the platform version offered by default for every minor too. Real
# EKS offers the newest platform version of the minor (eks.21 for 1.31 in the docs' example).
DEFAULT_PLATFORM_VERSION = "eks.1"


@cache
def kubernetes_versions() -> tuple[KubernetesVersion, ...]:
    return tuple(sorted(load_kubernetes_versions(), key=lambda v: minor_key(v.version)))


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=UTC)


def version_entry(version: str) -> KubernetesVersion | None:
    return next((v for v in kubernetes_versions() if v.version == version), None)


def is_released(version: KubernetesVersion, now: datetime) -> bool:
    return now >= midnight(version.eks_release)


def version_status(version: KubernetesVersion, now: datetime) -> str:
    """UNSUPPORTED from the end of extended support, EXTENDED_SUPPORT from the end of standard support
    (billing starts at the beginning of that day), STANDARD_SUPPORT before."""
    if now >= midnight(version.end_of_extended_support):
        return "UNSUPPORTED"
    if now >= midnight(version.end_of_standard_support):
        return "EXTENDED_SUPPORT"
    return "STANDARD_SUPPORT"


def default_version(now: datetime) -> str | None:
    """[INF] The newest released version in standard support: the docs' example (December 2024) marks
    1.31, then the newest, as the default. No source states the rule."""
    candidates = [
        v.version
        for v in kubernetes_versions()
        if is_released(v, now) and version_status(v, now) == "STANDARD_SUPPORT"
    ]
    return candidates[-1] if candidates else None


def cluster_versions(
    params: dict[str, Any], now: datetime, patch_version: Callable[[str], str]
) -> list[dict[str, Any]]:
    """The ClusterVersionInformation entries a DescribeClusterVersions request selects, newest first
    ([INF] the order), before paging. Raises ValueError with the message of an invalid parameter."""
    version_status_filter = params.get("versionStatus")
    if version_status_filter is not None and version_status_filter not in VERSION_STATUSES:
        raise ValueError(f"versionStatus must be one of {', '.join(VERSION_STATUSES)}")
    status_filter = params.get("status")
    if status_filter is not None and status_filter not in DEPRECATED_STATUS.values():
        raise ValueError(f"status must be one of {', '.join(DEPRECATED_STATUS.values())}")
    if params.get("clusterType") not in (None, CLUSTER_TYPE):
        return []  # [INF] the simulator models EKS clusters only (not EKS on Outposts)
    wanted = params.get("clusterVersions")
    asks_for_unsupported = "UNSUPPORTED" in (version_status_filter, status_filter and status_filter.upper())
    default = default_version(now)
    entries = []
    for version in reversed(kubernetes_versions()):
        if not is_released(version, now):
            continue  # not on EKS yet: not listed
        status = version_status(version, now)
        # [INF] Without includeAll, versions past the end of extended support are left out: the API
        # model says includeAll "include[s] all kubernetes versions in the response"; which ones are
        # omitted without it is not documented.
        if status == "UNSUPPORTED" and not params.get("includeAll") and not asks_for_unsupported:
            continue
        if wanted and version.version not in wanted:
            continue
        if version_status_filter is not None and status != version_status_filter:
            continue
        if status_filter is not None and DEPRECATED_STATUS[status] != status_filter:
            continue
        if params.get("defaultOnly") and version.version != default:
            continue
        entries.append(
            {
                "clusterVersion": version.version,
                "clusterType": CLUSTER_TYPE,
                "defaultPlatformVersion": DEFAULT_PLATFORM_VERSION,
                "defaultVersion": version.version == default,
                "releaseDate": midnight(version.eks_release),
                "endOfStandardSupportDate": midnight(version.end_of_standard_support),
                "endOfExtendedSupportDate": midnight(version.end_of_extended_support),
                "status": DEPRECATED_STATUS[status],
                "versionStatus": status,
                "kubernetesPatchVersion": patch_version(version.version),
            }
        )
    return entries
