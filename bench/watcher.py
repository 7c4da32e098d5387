"""Benchmark: one release-watcher pass over a simulated fleet of 200 clusters.

The fleet runs four Kubernetes versions; every cluster's policy lists all five supported add-ons
and every cluster has all five installed, some behind and some up to date, so the pass meets
4 x 5 = 20 distinct (Kubernetes version, add-on) pairs. The real watcher (`watch_releases`)
makes its boto3 EKS calls against the simulator, keeps its ledger in moto's DynamoDB and puts its
events on a moto EventBridge bus.

Prints one JSON object: the fleet as built, the EKS calls the pass made, the fewest it could have
made, and whether the targets are met. Exits 1 if a target is missed, including a fleet that is
not the specified one (an add-on missing from the simulator's catalogue, for instance).

    .venv/bin/python bench/watcher.py
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT, ROOT / "functions"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

import boto3  # noqa: E402
from autopatch import clock as product_clock  # noqa: E402
from autopatch.clients import eks as eks_clients  # noqa: E402
from autopatch.clients.ledger import Ledger  # noqa: E402
from autopatch.logic.watcher import watch_releases  # noqa: E402
from autopatch.policy import SUPPORTED_ADDONS, FleetPolicy  # noqa: E402
from moto import mock_aws  # noqa: E402

from rehearsal.clock import SimClock  # noqa: E402
from rehearsal.eks.simulator import MAX_PAGE_SIZE, EksSimulator  # noqa: E402
from rehearsal.eks_bridge import eks_routed_to  # noqa: E402
from rehearsal.engine import create_ledger_table  # noqa: E402
from rehearsal.kube.store import KubeStore  # noqa: E402

CLUSTERS = 200
KUBERNETES_VERSIONS = ("1.30", "1.31", "1.32", "1.33")
ACCOUNT = "111122223333"
REGION = "eu-west-1"
BUS = "autopatch"
TABLE = "autopatch-ledger"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TOTAL_TOLERANCE = 1.1  # the pass may make at most 10 % more EKS calls than the minimum


class CountingEvents:
    """The EventBridge client, counting PutEvents calls on the way through."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.put_events_calls = 0

    def put_events(self, **kwargs: Any) -> Any:
        self.put_events_calls += 1
        return self.client.put_events(**kwargs)


def cluster_name(index: int) -> str:
    return f"fleet-{index:03d}"


def build_fleet(simulator: EksSimulator, addons: list[str]) -> list[tuple[str, str, dict[str, str]]]:
    """Clusters spread evenly over the Kubernetes versions; each add-on on one of the versions the
    catalogue offers for its Kubernetes version (newest first, so index 0 is up to date)."""
    fleet = []
    for index in range(CLUSTERS):
        name = cluster_name(index)
        kubernetes = KUBERNETES_VERSIONS[index % len(KUBERNETES_VERSIONS)]
        store = KubeStore(name, kubernetes)
        store.clock_now = lambda: simulator.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        # The watcher never calls Kubernetes: the endpoint is only what DescribeCluster reports.
        simulator.add_cluster(
            name,
            account_id=ACCOUNT,
            region=REGION,
            version=kubernetes,
            store=store,
            endpoint=f"https://{name}.bench.invalid",
        )
        installed = {}
        for position, addon in enumerate(addons):
            catalog_addon = simulator.catalog.get(addon)
            if catalog_addon is None:
                raise RuntimeError(f"{addon} is not in the simulator's catalogue")
            offered = catalog_addon.versions_for(kubernetes)
            version = offered[(index // len(KUBERNETES_VERSIONS) + position) % len(offered)].addon_version
            simulator.install_addon(name, addon, version)
            installed[addon] = version
        fleet.append((name, kubernetes, installed))
    return fleet


def fleet_policy() -> FleetPolicy:
    return FleetPolicy.model_validate(
        {
            "defaults": {"addons": list(SUPPORTED_ADDONS)},
            "clusters": [
                {
                    "name": cluster_name(i),
                    "accountId": ACCOUNT,
                    "region": REGION,
                    "addons": list(SUPPORTED_ADDONS),
                }
                for i in range(CLUSTERS)
            ],
        }
    )


def new_ledger() -> Ledger:
    create_ledger_table(boto3.client("dynamodb"), TABLE)
    return Ledger(TABLE, resource=boto3.resource("dynamodb"))


def asked_pairs(call_log: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """The (Kubernetes version, add-on) of every DescribeAddonVersions call in `call_log`."""
    return [
        (str(params.get("kubernetesVersion")), str(params.get("addonName")))
        for operation, params in call_log
        if operation == "DescribeAddonVersions"
    ]


def run() -> dict[str, Any]:
    clock = SimClock(START)
    product_clock.set_clock(clock.now)
    simulator = EksSimulator(clock)
    catalogued = set(simulator.catalog.names())
    addons = [a for a in SUPPORTED_ADDONS if a in catalogued]
    not_simulated = [a for a in SUPPORTED_ADDONS if a not in catalogued]

    setup_started = time.perf_counter()
    fleet = build_fleet(simulator, addons)
    policy = fleet_policy()
    setup_seconds = time.perf_counter() - setup_started

    eks_clients.eks_client.cache_clear()
    ledger = new_ledger()
    events = CountingEvents(boto3.client("events"))
    events.client.create_event_bus(Name=BUS)

    before = Counter(simulator.calls)
    log_start = len(simulator.call_log)
    started = time.perf_counter()
    with eks_routed_to(simulator):
        result = watch_releases(
            policy=policy, ledger=ledger, eks_for=eks_clients.Eks.for_region, events=events, bus=BUS
        )
    wall_seconds = time.perf_counter() - started
    calls = Counter(simulator.calls)
    calls.subtract(before)
    calls = +calls
    asked = asked_pairs(simulator.call_log[log_start:])
    eks_clients.eks_client.cache_clear()

    installs = sum(len(installed) for _, _, installed in fleet)
    addons_per_cluster = Counter(len(installed) for _, _, installed in fleet)
    pairs = {(kubernetes, addon) for _, kubernetes, installed in fleet for addon in installed}
    specified_pairs = len(KUBERNETES_VERSIONS) * len(SUPPORTED_ADDONS)
    list_pages = math.ceil(CLUSTERS / MAX_PAGE_SIZE)
    # The watcher also follows managed node groups: one ListNodegroups per cluster is part of the
    # minimum (this fleet has no node groups, so no DescribeNodegroup or AMI parameter reads).
    minimum = list_pages + CLUSTERS + CLUSTERS + CLUSTERS + installs + len(pairs)
    total = sum(calls.values())
    describe_addon_versions = calls["DescribeAddonVersions"]
    met = {
        "fleet": (
            len(fleet) == CLUSTERS
            and len({kubernetes for _, kubernetes, _ in fleet}) == len(KUBERNETES_VERSIONS)
            and addons_per_cluster == Counter({len(SUPPORTED_ADDONS): CLUSTERS})
            and len(pairs) == specified_pairs
        ),
        "describeAddonVersions": (
            describe_addon_versions == len(pairs) == specified_pairs and set(asked) == pairs
        ),
        "total": total <= TOTAL_TOLERANCE * minimum,
    }
    return {
        "benchmark": "release watcher, one pass",
        "fleet": {
            "clusters": CLUSTERS,
            "kubernetesVersions": list(KUBERNETES_VERSIONS),
            "addonsInPolicy": list(SUPPORTED_ADDONS),
            "addonsInstalled": addons,
            "addonsNotInSimulatorCatalogue": not_simulated,
            "clustersByAddonCount": {str(count): n for count, n in sorted(addons_per_cluster.items())},
            "installs": installs,
            "installedVersionsPerAddon": {
                addon: len({installed[addon] for _, _, installed in fleet if addon in installed})
                for addon in addons
            },
        },
        "setupSeconds": round(setup_seconds, 3),
        "wallSeconds": round(wall_seconds, 3),
        "eksCalls": total,
        "eksCallsByOperation": dict(sorted(calls.items())),
        "describeAddonVersionsCalls": describe_addon_versions,
        "describeAddonVersionsDistinctPairsAsked": len(set(asked)),
        "distinctVersionAddonPairs": len(pairs),
        "minimumEksCalls": minimum,
        "minimumBreakdown": {
            "ListClusters": list_pages,
            "DescribeCluster": CLUSTERS,
            "ListAddons": CLUSTERS,
            "ListNodegroups": CLUSTERS,
            "DescribeAddon": installs,
            "DescribeAddonVersions": len(pairs),
        },
        "ratioToMinimum": round(total / minimum, 4),
        "eventsAnnounced": len(result.announced),
        "eventsAnnouncedByAddon": dict(sorted(Counter(a.component for a in result.announced).items())),
        "quiet": len(result.quiet),
        "missingClusters": len(result.missing),
        "putEventsCalls": events.put_events_calls,
        "targets": {
            "fleet": (
                f"{CLUSTERS} clusters on {len(KUBERNETES_VERSIONS)} Kubernetes versions, "
                f"{len(SUPPORTED_ADDONS)} add-ons installed on each ({specified_pairs} distinct pairs)"
            ),
            "describeAddonVersions": f"= distinct pairs = {specified_pairs}, one call per pair",
            "total": f"<= {TOTAL_TOLERANCE} x minimum",
        },
        "targetsMet": met,
    }


def main() -> int:
    environment = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "MOTO_ACCOUNT_ID": ACCOUNT,
    }
    with mock.patch.dict(os.environ, environment):
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            os.environ.pop(name, None)  # restored by patch.dict
        with mock_aws():
            report = run()
    print(json.dumps(report, indent=2))
    return 0 if all(report["targetsMet"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
