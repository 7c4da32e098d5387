"""The end-of-support watcher with moto's DynamoDB ledger and EventBridge bus, and a stubbed EKS.

EKS answers come from botocore's Stubber on a real `Eks` client, so every request the watcher
makes is checked against the EKS API model (DescribeClusterVersions included) and counted: a pass
must read the version catalogue once per region, not once per cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from autopatch.clients.eks import Eks
from autopatch.clients.ledger import Ledger
from autopatch.handlers import end_of_support_watcher
from autopatch.logic.end_of_support import EndOfSupportResult, watch_end_of_support
from autopatch.models import END_OF_SUPPORT_APPROACHING, EVENT_SOURCE, TriggerEvent
from autopatch.policy import FleetPolicy
from autopatch.services import Services
from autopatch.settings import Settings
from botocore.stub import Stubber

from tests.conftest import ACCOUNT, LEDGER_TABLE, REGION, FakeClock, LambdaContext

ROOT = Path(__file__).resolve().parents[2]
BUS = "autopatch"
# 1.31 as in the EKS User Guide's describe-cluster-versions example (awsdocs/amazon-eks-user-guide
# @01385604, kubernetes-versions.adoc); 1.33 is made up for the tests (a year later).
END_OF_STANDARD_131 = datetime(2025, 11, 26, tzinfo=UTC)
CATALOGUE = [
    {
        "clusterVersion": "1.31",
        "clusterType": "eks",
        "defaultPlatformVersion": "eks.21",
        "defaultVersion": False,
        "releaseDate": datetime(2024, 9, 26, tzinfo=UTC),
        "endOfStandardSupportDate": END_OF_STANDARD_131,
        "endOfExtendedSupportDate": datetime(2026, 11, 26, tzinfo=UTC),
        "versionStatus": "STANDARD_SUPPORT",
        "kubernetesPatchVersion": "1.31.3",
    },
    {
        "clusterVersion": "1.33",
        "clusterType": "eks",
        "defaultVersion": True,
        "endOfStandardSupportDate": END_OF_STANDARD_131 + timedelta(days=365),
        "endOfExtendedSupportDate": datetime(2027, 11, 26, tzinfo=UTC),
        "versionStatus": "STANDARD_SUPPORT",
    },
]
FLEET = {"blue": "1.31", "green": "1.31", "teal": "1.33"}
POLICY = FleetPolicy.model_validate(
    {"clusters": [{"name": name, "accountId": ACCOUNT, "region": REGION} for name in FLEET]}
)


def end_of_support_pattern() -> dict[str, Any]:
    """The cluster-upgrade workflow's rule in rules.json, once it is there; the contract until then."""
    rules = json.loads((ROOT / "statemachines" / "rules.json").read_text())["rules"]
    for rule in rules:
        if END_OF_SUPPORT_APPROACHING in rule["eventPattern"].get("detail-type", []):
            return dict(rule["eventPattern"])
    return {"source": [EVENT_SOURCE], "detail-type": [END_OF_SUPPORT_APPROACHING]}


class Bus:
    """Our bus in moto, with a rule of the workflow's pattern delivering to a queue we can read."""

    def __init__(self) -> None:
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=BUS)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.queue_url = self.sqs.create_queue(QueueName="cluster-upgrade-starts")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_rule(Name="eos", EventBusName=BUS, EventPattern=json.dumps(end_of_support_pattern()))
        events.put_targets(Rule="eos", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])

    def delivered(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                out.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return out


class StubbedEks:
    """A real `Eks` on a stubbed client: each expected request, with its exact parameters."""

    def __init__(self) -> None:
        self.client = boto3.client("eks", region_name=REGION)
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.eks = Eks(self.client)

    def expect_pass(self, fleet: dict[str, str], support_type: str = "EXTENDED") -> None:
        self.stubber.add_response("list_clusters", {"clusters": sorted(fleet)}, {})
        for name in FLEET:
            if name not in fleet:
                continue
            cluster = {
                "name": name,
                "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{name}",
                "version": fleet[name],
                "status": "ACTIVE",
                "upgradePolicy": {"supportType": support_type},
            }
            self.stubber.add_response("describe_cluster", {"cluster": cluster}, {"name": name})
        # One paged call for the region: page one, then the rest.
        self.stubber.add_response(
            "describe_cluster_versions",
            {"clusterVersions": CATALOGUE[:1], "nextToken": "page-2"},
            {"includeAll": True},
        )
        self.stubber.add_response(
            "describe_cluster_versions",
            {"clusterVersions": CATALOGUE[1:]},
            {"includeAll": True, "nextToken": "page-2"},
        )


@pytest.fixture
def bus(aws: Ledger) -> Bus:
    return Bus()


@pytest.fixture
def eks() -> Iterator[StubbedEks]:
    stubbed = StubbedEks()
    yield stubbed
    stubbed.stubber.assert_no_pending_responses()


def watch(ledger: Ledger, eks: StubbedEks) -> EndOfSupportResult:
    return watch_end_of_support(
        policy=POLICY,
        ledger=ledger,
        eks_for=lambda region: eks.eks,
        events=boto3.client("events", region_name=REGION),
        bus=BUS,
    )


def announced_keys(ledger: Ledger, cluster: str) -> set[str]:
    items = ledger.announced_under(f"{ACCOUNT}#{REGION}#{cluster}", "control-plane#eos#")
    return {str(item["sk"]).removeprefix("ANNOUNCED#") for item in items}


def test_thirty_days_before_the_end_of_standard_support_one_event_per_cluster_then_none(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock
) -> None:
    fake_clock.set(END_OF_STANDARD_131 - timedelta(days=30))
    eks.expect_pass(FLEET)

    first = watch(aws, eks)

    events = bus.delivered()
    assert sorted(e["detail"]["clusterName"] for e in events) == ["blue", "green"]
    for event in events:
        parsed = TriggerEvent.model_validate(event)  # what the workflow's validate step accepts
        assert parsed.detail.component.kind == "control-plane"
        assert event["detail"] == {
            "clusterName": event["detail"]["clusterName"],
            "accountId": ACCOUNT,
            "region": REGION,
            "component": {"kind": "control-plane", "name": "control-plane"},
            "currentVersion": "1.31",
            "targetVersion": "1.32",
            "detectedAt": "2025-10-27T00:00:00Z",
            "deadline": "2025-11-26T00:00:00Z",
            "supportPhase": "standard",
            "supportType": "EXTENDED",
            "thresholdDays": 30,
        }
    assert [(a.cluster, a.threshold, a.daysLeft, a.inExtendedSupport) for a in first.announced] == [
        ("blue", 30, 30, False),
        ("green", 30, 30, False),
    ]
    assert announced_keys(aws, "blue") == {
        "control-plane#eos#1.31#standard#30",
        "control-plane#eos#1.31#standard#60",
        "control-plane#eos#1.31#standard#90",
    }
    assert announced_keys(aws, "teal") == set()

    fake_clock.advance(hours=24)
    eks.expect_pass(FLEET)
    second = watch(aws, eks)

    assert bus.delivered() == []
    assert second.announced == []
    assert second.clusters == 3


def test_the_lambda_runs_a_pass_and_returns_its_result(
    aws: Ledger,
    bus: Bus,
    eks: StubbedEks,
    fake_clock: FakeClock,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_clock.set(END_OF_STANDARD_131 - timedelta(days=7))
    eks.expect_pass({"blue": "1.31", "teal": "1.33"}, support_type="STANDARD")
    settings = Settings(LEDGER_TABLE, BUS, "arn:aws:sns:eu-west-1:1:t", "arn:secret", "fleet")
    monkeypatch.setattr(
        end_of_support_watcher,
        "services",
        lambda: Services(settings=settings, ledger=aws, policy=POLICY, eks_for=lambda region: eks.eks),
    )

    result = end_of_support_watcher.handler({}, lambda_context)

    assert result["missing"] == ["green"]
    (announced,) = result["announced"]
    assert (announced["cluster"], announced["threshold"], announced["supportType"]) == ("blue", 7, "STANDARD")
    assert "EKS will upgrade the control plane automatically" in announced["why"]
    assert [e["detail"]["thresholdDays"] for e in bus.delivered()] == [7]
    json.dumps(result)  # what the Lambda returns is plain JSON
