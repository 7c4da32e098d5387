"""The release watcher against the EKS simulator, moto's DynamoDB and a moto EventBridge bus.

Three clusters on two Kubernetes versions, three add-ons each: some behind, one cluster up to
date. The watcher must make the fewest EKS calls a pass can (one DescribeAddonVersions per
distinct (Kubernetes version, add-on)), announce the right targets in the event contract, stay
quiet on the next pass, and try a blocked target again only after the policy's `retryAfter`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from autopatch import clock as product_clock
from autopatch.clients import eks as eks_clients
from autopatch.clients.ledger import Ledger
from autopatch.logic.watcher import WatcherResult, watch_releases
from autopatch.models import (
    ADDON_VERSION_AVAILABLE,
    EVENT_SOURCE,
    ClusterRef,
    Component,
    Operation,
    TriggerEvent,
)
from autopatch.policy import FleetPolicy
from moto import mock_aws

from rehearsal.clock import SimClock
from rehearsal.eks.simulator import EksSimulator
from rehearsal.eks_bridge import eks_routed_to
from rehearsal.engine import create_ledger_table
from rehearsal.kube.store import KubeStore

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "111122223333"
REGION = "eu-west-1"
BUS = "autopatch"
TABLE = "autopatch-ledger"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
RETRY_AFTER = timedelta(hours=24)

# blue is on 1.30 with vpc-cni two minors behind; green is on 1.31 with everything behind;
# teal is on 1.31 with everything up to date (scenarios/data/addon_catalog.json).
FLEET: dict[str, tuple[str, dict[str, str]]] = {
    "blue": (
        "1.30",
        {
            "vpc-cni": "v1.18.3-eksbuild.1",
            "coredns": "v1.11.1-eksbuild.9",
            "kube-proxy": "v1.30.14-eksbuild.8",
        },
    ),
    "green": (
        "1.31",
        {
            "vpc-cni": "v1.19.2-eksbuild.5",
            "coredns": "v1.11.4-eksbuild.22",
            "kube-proxy": "v1.31.10-eksbuild.8",
        },
    ),
    "teal": (
        "1.31",
        {
            "vpc-cni": "v1.20.1-eksbuild.3",
            "coredns": "v1.11.4-eksbuild.24",
            "kube-proxy": "v1.31.13-eksbuild.2",
        },
    ),
}
# (cluster, add-on) -> (installed, target). blue's vpc-cni goes to the newest 1.19 build, not to
# v1.20.1-eksbuild.3 (offered for 1.30 too, but two minors up); the others to the newest offered.
EXPECTED_TARGETS = {
    ("blue", "vpc-cni"): ("v1.18.3-eksbuild.1", "v1.19.2-eksbuild.5"),
    ("blue", "coredns"): ("v1.11.1-eksbuild.9", "v1.11.4-eksbuild.24"),
    ("green", "vpc-cni"): ("v1.19.2-eksbuild.5", "v1.20.1-eksbuild.3"),
    ("green", "coredns"): ("v1.11.4-eksbuild.22", "v1.11.4-eksbuild.24"),
    ("green", "kube-proxy"): ("v1.31.10-eksbuild.8", "v1.31.13-eksbuild.2"),
}
DISTINCT_PAIRS = len({(version, addon) for version, addons in FLEET.values() for addon in addons})

T = TypeVar("T")


@dataclass
class Pass:
    result: WatcherResult
    calls: Counter[str]
    events: list[dict[str, Any]]  # as delivered by a rule with the addon-update workflow's pattern
    at: datetime

    @property
    def announced(self) -> dict[tuple[str, str], tuple[str, str]]:
        return {(a.cluster, a.component): (a.current, a.target) for a in self.result.announced}


class World:
    def __init__(self, clock: SimClock, simulator: EksSimulator, ledger: Ledger, queue_url: str) -> None:
        self.clock = clock
        self.simulator = simulator
        self.ledger = ledger
        self.queue_url = queue_url
        self.policy = FleetPolicy.model_validate(
            {
                "defaults": {"addons": ["vpc-cni", "coredns", "kube-proxy"], "retryAfter": "24h"},
                "clusters": [{"name": name, "accountId": ACCOUNT, "region": REGION} for name in FLEET],
            }
        )

    def at(self, moment: datetime, action: Callable[[], T]) -> T:
        """Run `action` when the simulated clock reads `moment` (time only moves forward)."""
        box: list[T] = []
        self.clock.call_at(moment, lambda: box.append(action()))
        assert self.clock.run_until_idle(real_timeout=60)
        assert self.clock.errors == []
        assert self.clock.now() == moment
        return box[0]

    def watch(self) -> Pass:
        before = Counter(self.simulator.calls)
        result = watch_releases(
            policy=self.policy,
            ledger=self.ledger,
            eks_for=eks_clients.Eks.for_region,
            events=boto3.client("events"),
            bus=BUS,
        )
        calls = Counter(self.simulator.calls)
        calls.subtract(before)
        return Pass(result, +calls, self.delivered_events(), self.clock.now())

    def watch_at(self, moment: datetime) -> Pass:
        return self.at(moment, self.watch)

    def delivered_events(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs")
        events: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return events
            for message in messages:
                events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def operation(self, cluster: str, addon: str, execution: str) -> Operation:
        current, target = EXPECTED_TARGETS[(cluster, addon)]
        now = self.clock.now()
        return Operation(
            id=execution,
            executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:autopatch-addon-update:{execution}",
            eventId=execution,
            cluster=ClusterRef(name=cluster, accountId=ACCOUNT, region=REGION),
            component=Component(kind="addon", name=addon),
            fromVersion=current,
            toVersion=target,
            detectedAt=now,
            startedAt=now,
        )


def _addon_update_pattern() -> dict[str, Any]:
    rules = json.loads((ROOT / "statemachines" / "rules.json").read_text())["rules"]
    return next(r["eventPattern"] for r in rules if r["stateMachine"] == "addon-update")


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "MOTO_ACCOUNT_ID": ACCOUNT,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    clock = SimClock(START)
    product_clock.set_clock(clock.now)
    simulator = EksSimulator(clock)
    for name, (kubernetes, addons) in FLEET.items():
        store = KubeStore(name, kubernetes)
        store.clock_now = lambda: clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        simulator.add_cluster(
            name,
            account_id=ACCOUNT,
            region=REGION,
            version=kubernetes,
            store=store,
            endpoint=f"https://{name}.test.invalid",  # the watcher never calls Kubernetes
        )
        for addon, version in addons.items():
            simulator.install_addon(name, addon, version)
    eks_clients.eks_client.cache_clear()
    with mock_aws(), eks_routed_to(simulator):
        create_ledger_table(boto3.client("dynamodb"), TABLE)
        events = boto3.client("events")
        events.create_event_bus(Name=BUS)
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="addon-update-starts")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_rule(
            Name="addon-version-available", EventBusName=BUS, EventPattern=json.dumps(_addon_update_pattern())
        )
        events.put_targets(
            Rule="addon-version-available", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}]
        )
        yield World(clock, simulator, Ledger(TABLE, resource=boto3.resource("dynamodb")), queue_url)
    eks_clients.eks_client.cache_clear()
    product_clock.set_clock(lambda: datetime.now(UTC))


def _calls_of_a_pass() -> Counter[str]:
    return Counter(
        {
            "ListClusters": 1,
            "DescribeCluster": 3,
            "ListAddons": 3,
            "ListNodegroups": 3,  # node groups are followed too; these clusters have none
            "DescribeAddon": 9,
            "DescribeAddonVersions": DISTINCT_PAIRS,
        }
    )


def test_a_pass_makes_the_fewest_eks_calls_and_announces_the_right_targets(world: World) -> None:
    # When the watcher runs over the fleet
    first = world.watch_at(START)

    # Then it asked EKS for nothing more than it needed: one DescribeAddonVersions per pair
    assert DISTINCT_PAIRS == 6
    assert first.calls == _calls_of_a_pass()
    # and announced each add-on that is behind, at the newest version it may move to
    assert first.announced == EXPECTED_TARGETS
    assert {(q["cluster"], q["component"]) for q in first.result.quiet} == {
        ("blue", "kube-proxy"),
        ("teal", "vpc-cni"),
        ("teal", "coredns"),
        ("teal", "kube-proxy"),
    }
    assert first.result.clusters == 3 and first.result.missing == []

    # and every announcement reached the bus in the event contract, matching the workflow's rule
    assert len(first.events) == len(EXPECTED_TARGETS)
    seen = {}
    for event in first.events:
        assert event["source"] == EVENT_SOURCE
        assert event["detail-type"] == ADDON_VERSION_AVAILABLE
        TriggerEvent.model_validate(event)  # what the workflow's first step accepts
        detail = event["detail"]
        assert set(detail) == {
            "clusterName",
            "accountId",
            "region",
            "component",
            "currentVersion",
            "targetVersion",
            "detectedAt",
        }
        assert (detail["accountId"], detail["region"]) == (ACCOUNT, REGION)
        assert detail["component"]["kind"] == "addon"
        assert detail["detectedAt"] == "2026-11-23T09:00:00Z"
        seen[(detail["clusterName"], detail["component"]["name"])] = (
            detail["currentVersion"],
            detail["targetVersion"],
        )
    assert seen == EXPECTED_TARGETS


def test_a_second_pass_right_after_announces_nothing(world: World) -> None:
    world.watch_at(START)

    second = world.watch_at(START + timedelta(minutes=5))

    assert second.result.announced == []
    assert second.events == []
    assert second.calls == _calls_of_a_pass()
    already = [q for q in second.result.quiet if q["why"].endswith("already handled")]
    assert len(already) == len(EXPECTED_TARGETS)


def test_a_blocked_target_is_announced_again_only_after_retry_after(world: World) -> None:
    # Given a pass whose five announcements each started a workflow that claimed its target
    world.watch_at(START)
    for (cluster, addon), _ in EXPECTED_TARGETS.items():
        op = world.operation(cluster, addon, f"{cluster}-{addon}-1")
        claimed, _holder = world.ledger.claim_target(op)
        assert claimed
    # and green's coredns update ended blocked ten minutes later; the other four are still running
    blocked_at = START + timedelta(minutes=10)

    def block() -> None:
        op = world.operation("green", "coredns", "green-coredns-1")
        world.ledger.finish_target(op.end("blocked", "addon_not_active", "the add-on is DEGRADED"))

    world.at(blocked_at, block)

    # When the watcher runs just before retryAfter has passed since the block, it stays quiet
    early = world.watch_at(blocked_at + RETRY_AFTER - timedelta(seconds=1))
    assert early.result.announced == []
    assert early.events == []

    # and once retryAfter has passed, it announces that target again, and only that one
    due = world.watch_at(blocked_at + RETRY_AFTER)
    assert due.announced == {("green", "coredns"): EXPECTED_TARGETS[("green", "coredns")]}
    assert [a.why for a in due.result.announced] == ["retry after blocked (addon_not_active)"]
    assert [e["detail"]["detectedAt"] for e in due.events] == ["2026-11-24T09:10:00Z"]
    assert due.calls == _calls_of_a_pass()

    # and once the workflow it starts has claimed the target again, the next pass is quiet
    retry = world.operation("green", "coredns", "green-coredns-2")
    assert world.at(due.at + timedelta(seconds=1), lambda: world.ledger.claim_target(retry))[0]
    after = world.watch_at(due.at + timedelta(minutes=5))
    assert after.result.announced == []
    assert after.events == []


def test_a_re_announced_target_waits_for_its_workflow_before_being_announced_again(world: World) -> None:
    world.watch_at(START)
    op = world.operation("green", "coredns", "green-coredns-1")
    assert world.ledger.claim_target(op)[0]
    world.ledger.finish_target(op.end("blocked", "addon_not_active", "the add-on is DEGRADED"))
    due = world.watch_at(START + RETRY_AFTER)
    assert ("green", "coredns") in due.announced

    # A pass before the retried workflow has claimed the target (a watcher run soon after, or an
    # event that was never delivered) should not announce it a second time.
    soon_after = world.watch_at(due.at + timedelta(minutes=5))

    assert ("green", "coredns") not in soon_after.announced
