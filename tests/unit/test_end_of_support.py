"""The end-of-support watcher's rules, with in-memory EKS, ledger and bus.

Thresholds are days before the deadline; a pass sends, per cluster, only the tightest threshold
reached and not yet sent, and marks the looser ones sent with it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from autopatch import clock
from autopatch.logic.end_of_support import (
    SupportWindow,
    crossed,
    days_left,
    deadline_of,
    watch_end_of_support,
)
from autopatch.models import END_OF_SUPPORT_APPROACHING, EVENT_SOURCE, TriggerDetail
from autopatch.policy import FleetPolicy

ACCOUNT = "111122223333"
REGION = "eu-west-1"
# 1.31 as in the EKS User Guide's describe-cluster-versions example (awsdocs/amazon-eks-user-guide
# @01385604, kubernetes-versions.adoc): 2025-11-25T16:00:00-08:00 is midnight UTC on the 26th.
END_OF_STANDARD_131 = datetime(2025, 11, 26, tzinfo=UTC)
END_OF_EXTENDED_131 = datetime(2026, 11, 26, tzinfo=UTC)
CATALOGUE: dict[str, dict[str, Any]] = {
    "1.31": {
        "clusterVersion": "1.31",
        "clusterType": "eks",
        "endOfStandardSupportDate": END_OF_STANDARD_131,
        "endOfExtendedSupportDate": END_OF_EXTENDED_131,
        "versionStatus": "STANDARD_SUPPORT",
    },
    # Made up for the tests: a version whose standard support ends a year after 1.31's.
    "1.33": {
        "clusterVersion": "1.33",
        "clusterType": "eks",
        "endOfStandardSupportDate": END_OF_STANDARD_131 + timedelta(days=365),
        "endOfExtendedSupportDate": END_OF_EXTENDED_131 + timedelta(days=365),
        "versionStatus": "STANDARD_SUPPORT",
    },
}


class FakeEks:
    """DescribeCluster, ListClusters and the version catalogue of one region; calls counted."""

    def __init__(self, clusters: dict[str, dict[str, Any]]) -> None:
        self.clusters = clusters
        self.calls: Counter[str] = Counter()

    def list_clusters(self) -> tuple[list[str], int]:
        self.calls["ListClusters"] += 1
        return list(self.clusters), 1

    def describe_cluster(self, name: str) -> dict[str, Any]:
        self.calls["DescribeCluster"] += 1
        return {"name": name, "status": "ACTIVE", **self.clusters[name]}

    def cluster_versions(self, versions: list[str]) -> dict[str, dict[str, Any]]:
        self.calls["DescribeClusterVersions"] += 1
        return {v: CATALOGUE[v] for v in versions if v in CATALOGUE}


class FakeLedger:
    def __init__(self) -> None:
        self.announced: dict[tuple[str, str], str] = {}
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        self.announced_at: dict[tuple[str, str], str] = {}

    def get_target(self, cluster_key: str, target_key: str) -> dict[str, Any] | None:
        return self.claims.get((cluster_key, target_key))

    def get_announced(self, cluster_key: str, target_key: str) -> dict[str, Any] | None:
        event_id = self.announced.get((cluster_key, target_key))
        at = self.announced_at.get((cluster_key, target_key))
        return {"eventId": event_id, "announcedAt": at} if event_id else None

    def record_announced(self, cluster_key: str, target_key: str, event_id: str) -> None:
        self.announced[(cluster_key, target_key)] = event_id
        self.announced_at[(cluster_key, target_key)] = clock.iso(clock.now())

    def keys(self, cluster: str) -> set[str]:
        return {target for (key, target) in self.announced if key.endswith(f"#{cluster}")}


class FakeEvents:
    """PutEvents; `fail` names clusters whose entries come back without an EventId."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.fail: set[str] = set()

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.batches.append(Entries)
        out = []
        for n, entry in enumerate(Entries):
            if json.loads(entry["Detail"])["clusterName"] in self.fail:
                out.append({"ErrorCode": "InternalFailure", "ErrorMessage": "try again"})
            else:
                out.append({"EventId": f"event-{len(self.batches)}-{n}"})
        return {"FailedEntryCount": len(Entries) - sum("EventId" in e for e in out), "Entries": out}

    @property
    def details(self) -> list[dict[str, Any]]:
        return [json.loads(e["Detail"]) for batch in self.batches for e in batch]


def policy(*clusters: dict[str, Any]) -> FleetPolicy:
    return FleetPolicy.model_validate(
        {"clusters": [{"accountId": ACCOUNT, "region": REGION, **c} for c in clusters]}
    )


class World:
    def __init__(self, fleet: FleetPolicy, clusters: dict[str, dict[str, Any]]) -> None:
        self.policy = fleet
        self.eks = FakeEks(clusters)
        self.ledger = FakeLedger()
        self.events = FakeEvents()
        self.now = END_OF_STANDARD_131 - timedelta(days=100)

    def watch(self, at: datetime) -> dict[str, Any]:
        self.now = at
        before = len(self.events.batches)
        result = watch_end_of_support(
            policy=self.policy,
            ledger=self.ledger,  # type: ignore[arg-type]
            eks_for=lambda region: self.eks,  # type: ignore[arg-type,return-value]
            events=self.events,
            bus="autopatch",
        ).as_dict()
        result["_events"] = [json.loads(e["Detail"]) for b in self.events.batches[before:] for e in b]
        return result


@pytest.fixture(autouse=True)
def _clock() -> Iterator[None]:
    yield
    clock.set_clock(lambda: datetime.now(UTC))


def world(clusters: dict[str, dict[str, Any]], **settings: Any) -> World:
    fleet = policy(*({"name": name, **settings} for name in clusters))
    w = World(fleet, clusters)
    clock.set_clock(lambda: w.now)
    return w


def on(version: str, support_type: str | None = "EXTENDED") -> dict[str, Any]:
    cluster: dict[str, Any] = {"version": version}
    if support_type:
        cluster["upgradePolicy"] = {"supportType": support_type}
    return cluster


# ---- dates and thresholds -----------------------------------------------------------------------


def test_the_deadline_is_the_end_of_standard_support_then_of_extended_support() -> None:
    window = SupportWindow.from_entry(CATALOGUE["1.31"])
    before = deadline_of(window, END_OF_STANDARD_131 - timedelta(seconds=1))
    after = deadline_of(window, END_OF_STANDARD_131)
    gone = deadline_of(window, END_OF_EXTENDED_131 + timedelta(days=1))
    assert before is not None and (before.phase, before.at, before.past) == (
        "standard",
        END_OF_STANDARD_131,
        False,
    )
    assert after is not None and (after.phase, after.at, after.past) == (
        "extended",
        END_OF_EXTENDED_131,
        False,
    )
    assert gone is not None and (gone.phase, gone.past) == ("extended", True)


def test_catalogue_text_dates_and_the_deprecated_lowercase_status_are_read() -> None:
    window = SupportWindow.from_entry(
        {
            "clusterVersion": "1.31",
            "endOfStandardSupportDate": "2025-11-25T16:00:00-08:00",
            "endOfExtendedSupportDate": "2026-11-25T16:00:00-08:00",
            "status": "extended-support",
        }
    )
    assert window.end_of_standard == END_OF_STANDARD_131
    assert window.status == "EXTENDED_SUPPORT"


def test_a_version_with_no_end_date_has_no_deadline() -> None:
    window = SupportWindow("1.34", None, None, "STANDARD_SUPPORT")
    assert deadline_of(window, END_OF_STANDARD_131) is None


def test_a_threshold_is_reached_when_no_more_than_that_many_days_are_left() -> None:
    thresholds = [90, 60, 30, 14, 7]
    at_30 = END_OF_STANDARD_131 - timedelta(days=30)
    assert crossed(thresholds, END_OF_STANDARD_131, at_30) == [30, 60, 90]
    assert crossed(thresholds, END_OF_STANDARD_131, at_30 - timedelta(hours=1)) == [60, 90]
    assert crossed(thresholds, END_OF_STANDARD_131, END_OF_STANDARD_131 - timedelta(days=91)) == []
    assert days_left(END_OF_STANDARD_131, at_30 - timedelta(hours=1)) == 30
    assert days_left(END_OF_STANDARD_131, END_OF_STANDARD_131 + timedelta(hours=1)) == -1


# ---- a pass ---------------------------------------------------------------------------------------


def test_thirty_days_before_one_event_per_cluster_on_that_version_and_none_again() -> None:
    w = world({"blue": on("1.31"), "green": on("1.31"), "teal": on("1.33")})
    at = END_OF_STANDARD_131 - timedelta(days=30)

    first = w.watch(at)

    assert sorted(e["clusterName"] for e in first["_events"]) == ["blue", "green"]
    for detail in first["_events"]:
        TriggerDetail.model_validate(detail)  # the contract the workflow's first step checks
        assert detail["component"] == {"kind": "control-plane", "name": "control-plane"}
        assert (detail["currentVersion"], detail["targetVersion"]) == ("1.31", "1.32")
        assert (detail["supportPhase"], detail["supportType"], detail["thresholdDays"]) == (
            "standard",
            "EXTENDED",
            30,
        )
        assert detail["deadline"] == "2025-11-26T00:00:00Z"
        assert detail["detectedAt"] == "2025-10-27T00:00:00Z"
    assert [b[0]["Source"] for b in w.events.batches] == [EVENT_SOURCE]
    assert {e["DetailType"] for b in w.events.batches for e in b} == {END_OF_SUPPORT_APPROACHING}
    teal = next(q for q in first["quiet"] if q["cluster"] == "teal")
    assert "no threshold reached" in teal["why"]
    # the looser thresholds are marked with the tightest; the tighter ones are still to come
    assert w.ledger.keys("blue") == {f"control-plane#eos#1.31#standard#{t}" for t in (30, 60, 90)}

    second = w.watch(at + timedelta(hours=6))

    assert second["_events"] == [] and second["announced"] == []
    assert {q["cluster"] for q in second["quiet"] if "notice was sent already" in q["why"]} == {
        "blue",
        "green",
    }


def test_each_threshold_is_sent_once_as_the_deadline_comes_near() -> None:
    w = world({"blue": on("1.31")})
    sent = []
    for days in range(100, 0, -1):
        result = w.watch(END_OF_STANDARD_131 - timedelta(days=days))
        sent += [(days, e["thresholdDays"]) for e in result["_events"]]
    assert sent == [(90, 90), (60, 60), (30, 30), (14, 14), (7, 7)]


def test_a_watcher_that_was_down_sends_only_the_tightest_threshold() -> None:
    w = world({"blue": on("1.31")})

    result = w.watch(END_OF_STANDARD_131 - timedelta(days=5))

    assert [e["thresholdDays"] for e in result["_events"]] == [7]
    (announced,) = result["announced"]
    assert (announced["threshold"], announced["daysLeft"]) == (7, 5)
    assert w.ledger.keys("blue") == {f"control-plane#eos#1.31#standard#{t}" for t in (7, 14, 30, 60, 90)}
    assert w.watch(END_OF_STANDARD_131 - timedelta(days=1))["_events"] == []


def test_the_clusters_own_thresholds_apply() -> None:
    w = world({"blue": on("1.31")}, endOfSupportThresholds=[45])
    assert w.watch(END_OF_STANDARD_131 - timedelta(days=50))["_events"] == []
    assert [e["thresholdDays"] for e in w.watch(END_OF_STANDARD_131 - timedelta(days=45))["_events"]] == [45]
    assert w.watch(END_OF_STANDARD_131 - timedelta(days=7))["_events"] == []


def test_a_version_in_extended_support_counts_down_to_the_end_of_extended_support() -> None:
    w = world({"blue": on("1.31")})
    quiet = w.watch(END_OF_STANDARD_131 + timedelta(days=10))
    assert quiet["_events"] == []
    (entry,) = quiet["quiet"]
    assert (entry["phase"], entry["inExtendedSupport"]) == ("extended", True)

    result = w.watch(END_OF_EXTENDED_131 - timedelta(days=60))

    (detail,) = result["_events"]
    assert (detail["supportPhase"], detail["thresholdDays"], detail["deadline"]) == (
        "extended",
        60,
        "2026-11-26T00:00:00Z",
    )
    (announced,) = result["announced"]
    assert announced["inExtendedSupport"] is True
    assert "is in extended support (it costs more)" in announced["why"]
    assert ("control-plane#eos#1.31#extended#60" in w.ledger.keys("blue")) is True


def test_standard_support_type_says_eks_upgrades_the_cluster_itself() -> None:
    w = world({"blue": on("1.31", "STANDARD"), "green": on("1.31", support_type=None)})

    result = w.watch(END_OF_STANDARD_131 - timedelta(days=14))

    why = {a["cluster"]: a for a in result["announced"]}
    assert why["blue"]["supportType"] == "STANDARD"
    assert (
        "supportType is STANDARD, so EKS will upgrade the control plane automatically" in why["blue"]["why"]
    )
    # without an upgrade policy in the answer, EKS's default (EXTENDED) applies
    assert why["green"]["supportType"] == "EXTENDED"
    assert "extended support, which costs more" in why["green"]["why"]
    assert {e["clusterName"]: e["supportType"] for e in result["_events"]} == {
        "blue": "STANDARD",
        "green": "EXTENDED",
    }


def test_a_pin_already_reached_is_reported_not_announced() -> None:
    w = world({"blue": on("1.31")}, upgradeTarget="1.31")

    result = w.watch(END_OF_STANDARD_131 - timedelta(days=30))

    assert result["_events"] == [] and result["announced"] == []
    (pinned,) = result["pinned"]
    assert pinned["cluster"] == "blue"
    assert (
        pinned["why"]
        == "pinned at 1.31, which reaches the end of standard support on 2025-11-26; raise the pin"
    )
    assert w.ledger.announced == {}


def test_a_higher_pin_is_the_target() -> None:
    w = world({"blue": on("1.31")}, upgradeTarget="1.33")
    (detail,) = w.watch(END_OF_STANDARD_131 - timedelta(days=30))["_events"]
    assert detail["targetVersion"] == "1.33"


def test_a_cluster_past_the_end_of_extended_support_is_reported_every_pass_and_announced_once() -> None:
    w = world({"blue": on("1.31")})
    at = END_OF_EXTENDED_131 + timedelta(days=3)

    first = w.watch(at)

    (past,) = first["pastEndOfSupport"]
    assert (past["cluster"], past["daysLeft"], past["target"]) == ("blue", -3, "1.32")
    assert "EKS may upgrade the control plane at any time" in past["why"]
    (detail,) = first["_events"]
    assert (detail["supportPhase"], detail["thresholdDays"]) == ("extended", 0)
    second = w.watch(at + timedelta(days=1))
    assert second["_events"] == []
    assert [p["cluster"] for p in second["pastEndOfSupport"]] == ["blue"]


def test_an_entry_put_events_refused_is_not_recorded_and_is_sent_next_pass() -> None:
    w = world({"blue": on("1.31"), "green": on("1.31")})
    w.events.fail = {"green"}
    at = END_OF_STANDARD_131 - timedelta(days=30)

    first = w.watch(at)

    assert [a["cluster"] for a in first["announced"]] == ["blue"]
    assert w.ledger.keys("green") == set()
    w.events.fail = set()
    assert [e["clusterName"] for e in w.watch(at + timedelta(hours=1))["_events"]] == ["green"]


def test_events_go_in_batches_of_ten_and_the_catalogue_is_read_once_per_pass() -> None:
    clusters = {f"c{n:02d}": on("1.31" if n % 2 else "1.33") for n in range(24)}
    w = world(clusters)

    result = w.watch(END_OF_STANDARD_131 + timedelta(days=300))  # 1.31: extended, 1.33: standard

    assert [len(b) for b in w.events.batches] == [10, 10, 4]
    assert len(result["announced"]) == 24
    assert w.eks.calls == Counter({"ListClusters": 1, "DescribeCluster": 24, "DescribeClusterVersions": 1})


def test_a_policy_cluster_missing_from_eks_and_an_unknown_version_are_reported() -> None:
    fleet = policy({"name": "blue"}, {"name": "gone"})
    w = World(fleet, {"blue": on("1.99")})
    clock.set_clock(lambda: w.now)

    result = w.watch(END_OF_STANDARD_131 - timedelta(days=30))

    assert result["missing"] == ["gone"]
    assert result["quiet"] == [
        {
            "cluster": "blue",
            "region": REGION,
            "version": "1.99",
            "why": "DescribeClusterVersions does not list Kubernetes 1.99",
        }
    ]
    assert result["_events"] == []


def test_an_upgrade_that_ended_blocked_is_announced_again_after_retry_after() -> None:
    w = world({"blue": on("1.31")}, retryAfter="1d")
    at = END_OF_STANDARD_131 - timedelta(days=30)
    assert len(w.watch(at)["_events"]) == 1
    finished = at + timedelta(minutes=5)
    key = next(k for (k, _) in w.ledger.announced)
    w.ledger.claims[(key, "control-plane#control-plane#1.32")] = {
        "status": "blocked",
        "reason": "nodegroup_version_lag",
        "finishedAt": finished.isoformat(),
    }

    assert w.watch(at + timedelta(hours=12))["_events"] == []  # within retryAfter: quiet
    again = w.watch(finished + timedelta(days=1, minutes=1))
    assert [(e["clusterName"], e["targetVersion"]) for e in again["_events"]] == [("blue", "1.32")]
    assert "retry after blocked (nodegroup_version_lag)" in again["announced"][0]["why"]
    # announced again once: the next pass waits for that announcement's workflow
    assert w.watch(finished + timedelta(days=1, hours=2))["_events"] == []
