"""The AWS Health translator with moto's DynamoDB ledger and EventBridge bus, and a stubbed EKS.

The sample event (tests/events/health_eks_planned_lifecycle.json) names three clusters by ARN:
prod (PENDING, in the fleet), dev (RESOLVED) and legacy-batch (not in the fleet).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from autopatch.clients.eks import Eks
from autopatch.clients.ledger import Ledger
from autopatch.handlers import health_translator
from autopatch.logic.end_of_support import watch_end_of_support
from autopatch.logic.health import (
    HealthResult,
    cluster_of,
    parse_health_time,
    translate_health_event,
)
from autopatch.models import END_OF_SUPPORT_APPROACHING, EVENT_SOURCE, TriggerEvent
from autopatch.observability import metrics
from autopatch.policy import FleetPolicy
from autopatch.services import Services
from autopatch.settings import Settings
from botocore.stub import Stubber

from tests.conftest import ACCOUNT, LEDGER_TABLE, REGION, FakeClock, LambdaContext

ROOT = Path(__file__).resolve().parents[2]
BUS = "autopatch"
SENT_AT = datetime(2025, 8, 27, 17, 0, tzinfo=UTC)  # the sample's `time`
END_OF_STANDARD_131 = datetime(2025, 11, 26, tzinfo=UTC)
END_OF_EXTENDED_131 = datetime(2026, 11, 26, tzinfo=UTC)
# 1.31 as in the EKS User Guide's describe-cluster-versions example (awsdocs/amazon-eks-user-guide
# @01385604); 1.32 is made up for the tests (four months later).
CATALOGUE = [
    {
        "clusterVersion": "1.31",
        "clusterType": "eks",
        "endOfStandardSupportDate": END_OF_STANDARD_131,
        "endOfExtendedSupportDate": END_OF_EXTENDED_131,
        "versionStatus": "STANDARD_SUPPORT",
    },
    {
        "clusterVersion": "1.32",
        "clusterType": "eks",
        "endOfStandardSupportDate": datetime(2026, 3, 26, tzinfo=UTC),
        "endOfExtendedSupportDate": datetime(2027, 3, 26, tzinfo=UTC),
        "versionStatus": "STANDARD_SUPPORT",
    },
]
POLICY = FleetPolicy.model_validate(
    {
        "clusters": [
            {"name": name, "accountId": ACCOUNT, "region": REGION} for name in ("dev", "staging", "prod")
        ]
    }
)
PROD = f"{ACCOUNT}#{REGION}#prod"


class Bus:
    def __init__(self) -> None:
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=BUS)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.queue_url = self.sqs.create_queue(QueueName="eos")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        pattern = {"source": [EVENT_SOURCE], "detail-type": [END_OF_SUPPORT_APPROACHING]}
        events.put_rule(Name="eos", EventBusName=BUS, EventPattern=json.dumps(pattern))
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
    def __init__(self) -> None:
        self.client = boto3.client("eks", region_name=REGION)
        self.stubber = Stubber(self.client)
        self.stubber.activate()
        self.eks = Eks(self.client)

    def expect_clusters(self, clusters: dict[str, str], support_type: str = "EXTENDED") -> None:
        for name, version in clusters.items():
            cluster = {"name": name, "version": version, "upgradePolicy": {"supportType": support_type}}
            self.stubber.add_response("describe_cluster", {"cluster": cluster}, {"name": name})
        self.stubber.add_response(
            "describe_cluster_versions", {"clusterVersions": CATALOGUE}, {"includeAll": True}
        )


@pytest.fixture
def bus(aws: Ledger) -> Bus:
    return Bus()


@pytest.fixture
def eks() -> Iterator[StubbedEks]:
    stubbed = StubbedEks()
    yield stubbed
    stubbed.stubber.assert_no_pending_responses()


@pytest.fixture
def sample(load_event: Callable[[str], Any]) -> dict[str, Any]:
    return dict(load_event("health_eks_planned_lifecycle"))


class Recorder:
    """PutEvents that only records (for events that must put nothing)."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    def put_events(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"Entries": []}


def translate(event: Any, ledger: Ledger, eks: StubbedEks, events: Any = None) -> HealthResult:
    return translate_health_event(
        event,
        policy=POLICY,
        ledger=ledger,
        eks_for=lambda region: eks.eks,
        events=events or boto3.client("events", region_name=REGION),
        bus=BUS,
    )


def keys(ledger: Ledger) -> set[str]:
    return {
        str(i["sk"]).removeprefix("ANNOUNCED#") for i in ledger.announced_under(PROD, "control-plane#eos#")
    }


# ---- reading the event ----------------------------------------------------------------------------


def test_health_times_and_entity_values_are_read() -> None:
    assert parse_health_time("Wed, 26 Nov 2025 00:00:00 GMT") == END_OF_STANDARD_131
    assert parse_health_time("2025-11-26T00:00:00Z") == END_OF_STANDARD_131
    assert parse_health_time("") is None and parse_health_time("soon") is None
    assert cluster_of("arn:aws:eks:us-east-2:444455556666:cluster/blue", region=REGION, account=ACCOUNT) == (
        "444455556666",
        "us-east-2",
        "blue",
    )
    assert cluster_of("prod", region=REGION, account=ACCOUNT) == (ACCOUNT, REGION, "prod")
    assert (
        cluster_of("arn:aws:eks:eu-west-1:111122223333:nodegroup/prod/ng/x", region=REGION, account=ACCOUNT)
        is None
    )


# ---- translating ----------------------------------------------------------------------------------


def test_the_sample_gives_one_event_for_prod_and_reports_the_others(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock, sample: dict[str, Any]
) -> None:
    fake_clock.set(SENT_AT)
    eks.expect_clusters({"prod": "1.31"})

    result = translate(sample, aws, eks)

    (event,) = bus.delivered()
    TriggerEvent.model_validate(event)
    assert event["detail"] == {
        "clusterName": "prod",
        "accountId": ACCOUNT,
        "region": REGION,
        "component": {"kind": "control-plane", "name": "control-plane"},
        "currentVersion": "1.31",
        "targetVersion": "1.32",
        "detectedAt": "2025-08-27T17:00:00Z",
        "deadline": "2025-11-26T00:00:00Z",
        "supportPhase": "standard",
        "supportType": "EXTENDED",
        "thresholdDays": 90,
    }
    assert result.status == "translated" and result.region == REGION and result.account == ACCOUNT
    assert result.resolved == ["arn:aws:eks:eu-west-1:111122223333:cluster/dev"]
    assert result.unmatched == [
        {"entityValue": "arn:aws:eks:eu-west-1:111122223333:cluster/legacy-batch", "status": "PENDING"}
    ]
    (announced,) = result.announced
    assert announced.why.startswith(
        "AWS Health planned lifecycle event: Kubernetes 1.31 leaves standard support"
    )
    assert "startTime is the end of standard support" in announced.why
    # the notice covers the watcher's 90-day threshold too (90.3 days were left)
    assert keys(aws) == {"control-plane#eos#1.31#standard#health", "control-plane#eos#1.31#standard#90"}


def test_a_second_delivery_of_the_same_event_puts_nothing(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock, sample: dict[str, Any]
) -> None:
    fake_clock.set(SENT_AT)
    eks.expect_clusters({"prod": "1.31"})
    translate(sample, aws, eks)
    bus.delivered()
    fake_clock.advance(hours=2)
    eks.expect_clusters({"prod": "1.31"})

    again = translate(copy.deepcopy(sample), aws, eks)

    assert bus.delivered() == [] and again.announced == []
    assert again.quiet == [
        {
            "cluster": "prod",
            "region": REGION,
            "version": "1.31",
            "phase": "standard",
            "why": "already announced (90, health)",
        }
    ]


def test_after_a_health_notice_the_watcher_goes_on_with_the_next_threshold(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock, sample: dict[str, Any]
) -> None:
    fake_clock.set(SENT_AT)
    eks.expect_clusters({"prod": "1.31"})
    translate(sample, aws, eks)
    bus.delivered()

    def watcher_pass() -> list[int]:
        eks.stubber.add_response("list_clusters", {"clusters": ["prod"]}, {})
        eks.stubber.add_response(
            "describe_cluster", {"cluster": {"name": "prod", "version": "1.31"}}, {"name": "prod"}
        )
        eks.stubber.add_response(
            "describe_cluster_versions", {"clusterVersions": CATALOGUE}, {"includeAll": True}
        )
        policy = FleetPolicy.model_validate(
            {"clusters": [{"name": "prod", "accountId": ACCOUNT, "region": REGION}]}
        )
        watch_end_of_support(
            policy=policy,
            ledger=aws,
            eks_for=lambda region: eks.eks,
            events=boto3.client("events", region_name=REGION),
            bus=BUS,
        )
        return [e["detail"]["thresholdDays"] for e in bus.delivered()]

    fake_clock.set(END_OF_STANDARD_131 - timedelta(days=89))
    assert watcher_pass() == []
    fake_clock.set(END_OF_STANDARD_131 - timedelta(days=60))
    assert watcher_pass() == [60]


def test_an_earlier_watcher_announcement_stops_the_health_event(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock, sample: dict[str, Any]
) -> None:
    fake_clock.set(END_OF_STANDARD_131 - timedelta(days=60))
    aws.record_announced(PROD, "control-plane#eos#1.31#standard#60", "watcher-event")
    eks.expect_clusters({"prod": "1.31"})

    result = translate(sample, aws, eks)

    assert bus.delivered() == []
    assert [q["why"] for q in result.quiet] == ["already announced (60)"]


def test_a_bare_cluster_name_is_matched_in_the_events_region_and_account(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock, sample: dict[str, Any]
) -> None:
    fake_clock.set(SENT_AT)
    sample["detail"]["affectedEntities"] = [
        {"entityValue": "staging", "status": "PENDING"},
        {"entityValue": "prod"},
        {"entityValue": "arn:aws:eks:eu-west-1:111122223333:cluster/prod", "status": "PENDING"},
    ]
    eks.expect_clusters({"staging": "1.31", "prod": "1.31"}, support_type="STANDARD")

    result = translate(sample, aws, eks)

    assert sorted(e["detail"]["clusterName"] for e in bus.delivered()) == ["prod", "staging"]
    assert result.unmatched == []
    assert all("EKS will upgrade the control plane automatically" in a.why for a in result.announced)


def test_the_end_of_extended_support_is_the_extended_phase(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock, sample: dict[str, Any]
) -> None:
    fake_clock.set(END_OF_EXTENDED_131 - timedelta(days=120))
    sample["detail"]["startTime"] = "Thu, 26 Nov 2026 00:00:00 GMT"
    eks.expect_clusters({"prod": "1.31"})

    result = translate(sample, aws, eks)

    (event,) = bus.delivered()
    assert (event["detail"]["supportPhase"], event["detail"]["thresholdDays"]) == ("extended", 120)
    (announced,) = result.announced
    assert announced.inExtendedSupport is True
    assert keys(aws) == {"control-plane#eos#1.31#extended#health"}


def test_a_cluster_that_already_left_the_version_is_reported_stale(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock, sample: dict[str, Any]
) -> None:
    fake_clock.set(SENT_AT + timedelta(days=20))
    eks.expect_clusters({"prod": "1.32"})

    result = translate(sample, aws, eks)

    assert bus.delivered() == [] and result.announced == []
    (stale,) = result.stale
    assert (stale["cluster"], stale["version"]) == ("prod", "1.32")


def test_a_pinned_cluster_is_reported(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock, sample: dict[str, Any]
) -> None:
    fake_clock.set(SENT_AT)
    pinned = FleetPolicy.model_validate(
        {"clusters": [{"name": "prod", "accountId": ACCOUNT, "region": REGION, "upgradeTarget": "1.31"}]}
    )
    eks.expect_clusters({"prod": "1.31"})

    result = translate_health_event(
        sample,
        policy=pinned,
        ledger=aws,
        eks_for=lambda region: eks.eks,
        events=boto3.client("events", region_name=REGION),
        bus=BUS,
    )

    assert bus.delivered() == []
    assert [p["why"] for p in result.pinned] == [
        "pinned at 1.31, which reaches the end of standard support on 2025-11-26; raise the pin"
    ]


def test_a_cluster_gone_from_eks_is_reported(
    aws: Ledger, bus: Bus, eks: StubbedEks, fake_clock: FakeClock, sample: dict[str, Any]
) -> None:
    fake_clock.set(SENT_AT)
    eks.stubber.add_client_error(
        "describe_cluster",
        "ResourceNotFoundException",
        "No cluster found for name: prod.",
        404,
        {"name": "prod"},
    )

    result = translate(sample, aws, eks)

    assert result.notFound == ["prod"] and result.announced == []
    assert bus.delivered() == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda e: e.update(source="aws.eks"), "source is 'aws.eks'"),
        (lambda e: e.pop("detail"), "no detail object"),
        (lambda e: e["detail"].update(eventTypeCode="AWS_EC2_PLANNED_LIFECYCLE_EVENT"), "not 'EKS'"),
        (lambda e: e["detail"].update(startTime="next year"), "startTime 'next year' is not a date"),
        (lambda e: e["detail"].update(affectedEntities="prod"), "affectedEntities is not a list"),
    ],
)
def test_a_malformed_event_is_reported_and_puts_nothing(
    aws: Ledger,
    eks: StubbedEks,
    fake_clock: FakeClock,
    sample: dict[str, Any],
    change: Callable[[dict[str, Any]], Any],
    problem: str,
) -> None:
    change(sample)
    recorder = Recorder()

    result = translate(sample, aws, eks, events=recorder)

    assert result.status == "invalid"
    assert problem in str(result.reason)
    assert recorder.calls == []


def test_the_lambda_reports_unmatched_entities_and_bad_events_with_metrics(
    aws: Ledger,
    bus: Bus,
    eks: StubbedEks,
    fake_clock: FakeClock,
    sample: dict[str, Any],
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics.clear_metrics()  # left by the tests that call the logic outside a handler
    fake_clock.set(SENT_AT)
    settings = Settings(LEDGER_TABLE, BUS, "arn:aws:sns:eu-west-1:1:t", "arn:secret", "fleet")
    monkeypatch.setattr(
        health_translator,
        "services",
        lambda: Services(settings=settings, ledger=aws, policy=POLICY, eks_for=lambda region: eks.eks),
    )
    eks.expect_clusters({"prod": "1.31"})

    result = health_translator.handler(sample, lambda_context)
    out = capsys.readouterr().out

    assert [a["cluster"] for a in result["announced"]] == ["prod"]
    assert result["unmatched"][0]["entityValue"].endswith("cluster/legacy-batch")
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage() == "AWS Health names EKS resources that are not fleet clusters"
    assert '"HealthEntitiesUnmatched":[1.0]' in out.replace(" ", "")
    assert [e["detail"]["clusterName"] for e in bus.delivered()] == ["prod"]
    json.dumps(result)

    bad = health_translator.handler(
        {"source": "aws.health", "detail-type": "AWS Health Event"}, lambda_context
    )
    out = capsys.readouterr().out

    assert bad["status"] == "invalid" and bad["reason"] == "the event has no detail object"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors == ["not an EKS planned lifecycle event; nothing translated"]
    assert '"HealthEventsInvalid":[1.0]' in out.replace(" ", "")
    assert bus.delivered() == []
