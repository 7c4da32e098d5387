"""Control-plane upgrades in the EKS simulator (FIDELITY §3 and §4): UpdateClusterVersion's refusals,
its run on the simulated clock, failures, upgrade insights, DescribeClusterVersions and the served API
versions of the cluster's fake Kubernetes API before and after an upgrade."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rehearsal.eks.simulator import (
    NODEGROUPS_MUST_MATCH_MESSAGE,
    UPGRADE_READINESS_MESSAGE,
    ClusterSubnet,
    EksApiError,
    EksSimulator,
)
from rehearsal.kube.store import LAST_APPLIED_ANNOTATION, KubeStore

START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)  # 1.33 is out (2025-05-29), 1.34 is not
RELEASES = {"1.30": "1.30.11-20250519", "1.31": "1.31.7-20250519", "1.24": "1.24.17-20250123"}
TWO_AZS = [("subnet-0a1", "eu-west-1a"), ("subnet-0b2", "eu-west-1b")]
CRONJOB_V1BETA1 = {
    "apiVersion": "batch/v1beta1",
    "kind": "CronJob",
    "metadata": {"name": "nightly", "namespace": "shop"},
    "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
}


class FakeClock:
    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _simulator(
    clock: FakeClock,
    version: str = "1.31",
    *,
    nodegroup_release: str | None = None,
    node_kubelet: str | None = None,
    subnets: list[ClusterSubnet] | None = None,
    addons: dict[str, str] | None = None,
) -> EksSimulator:
    sim = EksSimulator(clock)
    store = KubeStore("dev", version)
    store.clock_now = lambda: clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    sim.add_cluster(
        "dev",
        account_id="111122223333",
        region="eu-west-1",
        version=version,
        store=store,
        endpoint="http://127.0.0.1:8443/dev",
        subnets=subnets,
    )
    if node_kubelet is not None:
        store.put(
            {
                "kind": "Node",
                "metadata": {"name": "ip-10-0-0-10.eu-west-1.compute.internal"},
                "status": {"nodeInfo": {"kubeletVersion": f"v{node_kubelet}.0-eks"}},
            },
            "kubelet",
        )
    for addon, addon_version in (addons or {}).items():
        sim.install_addon("dev", addon, addon_version)
    if nodegroup_release is not None:
        sim.add_nodegroup("dev", "workers", release_version=nodegroup_release, subnets=TWO_AZS, desired=1)
    return sim


def _upgrade(sim: EksSimulator, version: str, **params: Any) -> dict[str, Any]:
    return dict(sim.call("UpdateClusterVersion", {"name": "dev", "version": version, **params})["update"])


def _error(sim: EksSimulator, operation: str, params: dict[str, Any]) -> EksApiError:
    with pytest.raises(EksApiError) as caught:
        sim.call(operation, params)
    return caught.value


def _cluster(sim: EksSimulator) -> dict[str, Any]:
    return dict(sim.call("DescribeCluster", {"name": "dev"})["cluster"])


def _insights(sim: EksSimulator, **filters: Any) -> list[dict[str, Any]]:
    params: dict[str, Any] = {"clusterName": "dev"}
    if filters:
        params["filter"] = filters
    return list(sim.call("ListInsights", params)["insights"])


def _insight(sim: EksSimulator, name: str) -> dict[str, Any]:
    summary = next(i for i in _insights(sim) if i["name"] == name)
    return dict(sim.call("DescribeInsight", {"clusterName": "dev", "id": summary["id"]})["insight"])


# ---- refusals ----------------------------------------------------------------------------------
def test_an_unknown_cluster_is_not_found(clock: FakeClock) -> None:
    error = _error(_simulator(clock), "UpdateClusterVersion", {"name": "nope", "version": "1.32"})

    assert (error.code, error.status, error.message) == (
        "ResourceNotFoundException",
        404,
        "No cluster found for name: nope.",
    )


@pytest.mark.parametrize("target", ["1.31", "1.30", "1.33", "2.0", "latest"])
def test_only_the_next_minor_version_is_accepted(clock: FakeClock, target: str) -> None:
    error = _error(_simulator(clock), "UpdateClusterVersion", {"name": "dev", "version": target})

    assert error.code == "InvalidParameterException"
    assert error.message == f"Unsupported Kubernetes minor version update from 1.31 to {target}"


def test_a_version_eks_does_not_offer_yet_is_refused(clock: FakeClock) -> None:
    sim = _simulator(clock, "1.33")  # 1.34 comes out on 2025-10-02

    error = _error(sim, "UpdateClusterVersion", {"name": "dev", "version": "1.34"})

    assert error.message == "Unsupported Kubernetes minor version update from 1.33 to 1.34"


def test_a_lagging_node_group_blocks_the_upgrade(clock: FakeClock) -> None:
    sim = _simulator(clock, nodegroup_release=RELEASES["1.30"])
    sim.add_nodegroup("dev", "apps", release_version=RELEASES["1.30"], subnets=TWO_AZS, desired=1)
    sim.add_nodegroup("dev", "system", release_version=RELEASES["1.31"], subnets=TWO_AZS, desired=1)

    error = _error(sim, "UpdateClusterVersion", {"name": "dev", "version": "1.32"})

    assert error.code == "InvalidParameterException"
    assert error.message == (
        "Nodegroups apps, workers must be updated to match cluster version 1.31 "
        "before updating cluster version"
    )
    assert error.message == NODEGROUPS_MUST_MATCH_MESSAGE.format(names="apps, workers", version="1.31")
    assert _cluster(sim)["status"] == "ACTIVE"


def test_a_node_group_newer_than_the_control_plane_blocks_it_too(clock: FakeClock) -> None:
    sim = _simulator(clock, "1.30", nodegroup_release=RELEASES["1.30"])
    # FIDELITY 3.18: seen after a control plane upgrade that EKS reverted.
    sim._nodegroups.nodegroups[("dev", "workers")].release_version = RELEASES["1.31"]

    error = _error(sim, "UpdateClusterVersion", {"name": "dev", "version": "1.31"})

    assert error.message == (
        "Nodegroups workers must be updated to match cluster version 1.30 before updating cluster version"
    )


def test_one_update_at_a_time(clock: FakeClock) -> None:
    sim = _simulator(clock, nodegroup_release=RELEASES["1.31"], addons={"coredns": "v1.11.4-eksbuild.22"})
    addon_update = sim.call("UpdateAddon", {"clusterName": "dev", "addonName": "coredns"})["update"]

    busy = _error(sim, "UpdateClusterVersion", {"name": "dev", "version": "1.32"})
    assert (busy.code, busy.status) == ("ResourceInUseException", 409)
    assert (
        busy.message
        == f"Cannot VersionUpdate because cluster dev currently has update {addon_update['id']} in progress"
    )

    clock.advance(600)  # the add-on update is done
    update = _upgrade(sim, "1.32")
    again = _error(sim, "UpdateClusterVersion", {"name": "dev", "version": "1.32"})
    assert (
        again.message
        == f"Cannot VersionUpdate because cluster dev currently has update {update['id']} in progress"
    )
    addon_refused = _error(sim, "UpdateAddon", {"clusterName": "dev", "addonName": "coredns"})
    assert addon_refused.message == (
        f"Cannot AddonUpdate because cluster dev currently has update {update['id']} in progress"
    )
    nodegroup_refused = _error(
        sim, "UpdateNodegroupVersion", {"clusterName": "dev", "nodegroupName": "workers", "version": "1.31"}
    )
    assert nodegroup_refused.code == "ResourceInUseException"


def test_a_node_group_update_in_progress_blocks_the_control_plane(clock: FakeClock) -> None:
    sim = _simulator(clock, nodegroup_release="1.31.7-20250514")
    roll = sim.call("UpdateNodegroupVersion", {"clusterName": "dev", "nodegroupName": "workers"})["update"]

    error = _error(sim, "UpdateClusterVersion", {"name": "dev", "version": "1.32"})

    assert (
        error.message
        == f"Cannot VersionUpdate because cluster dev currently has update {roll['id']} in progress"
    )


# ---- the update on the simulated clock ---------------------------------------------------------
def test_a_successful_upgrade_takes_ten_simulated_minutes(clock: FakeClock) -> None:
    sim = _simulator(clock)
    store = sim.store_of("dev")

    update = _upgrade(sim, "1.32")

    assert update["status"] == "InProgress"
    assert update["type"] == "VersionUpdate"
    assert update["params"] == [
        {"type": "Version", "value": "1.32"},
        {"type": "PlatformVersion", "value": "eks.1"},
    ]
    assert update["createdAt"] == START and update["errors"] == []
    assert _cluster(sim)["status"] == "UPDATING"
    described = sim.call("DescribeUpdate", {"name": "dev", "updateId": update["id"]})["update"]
    assert described == update
    assert sim.call("ListUpdates", {"name": "dev"})["updateIds"] == [update["id"]]

    clock.advance(599)
    assert _cluster(sim)["version"] == "1.31"
    clock.advance(1)
    cluster = _cluster(sim)
    assert (cluster["status"], cluster["version"], cluster["platformVersion"]) == ("ACTIVE", "1.32", "eks.1")
    finished = sim.call("DescribeUpdate", {"name": "dev", "updateId": update["id"]})["update"]
    assert finished["status"] == "Successful"
    assert store.kubernetes_version == "1.32"


def test_a_cluster_update_is_not_an_add_on_or_node_group_update(clock: FakeClock) -> None:
    sim = _simulator(clock, addons={"coredns": "v1.11.4-eksbuild.22"})
    update = _upgrade(sim, "1.32")

    error = _error(sim, "DescribeUpdate", {"name": "dev", "updateId": update["id"], "addonName": "coredns"})

    assert error.code == "ResourceNotFoundException"
    assert sim.call("ListUpdates", {"name": "dev", "addonName": "coredns"})["updateIds"] == []


def test_a_repeated_token_returns_the_same_update_and_other_parameters_are_refused(clock: FakeClock) -> None:
    sim = _simulator(clock)
    first = _upgrade(sim, "1.32", clientRequestToken="tok-1")

    assert _upgrade(sim, "1.32", clientRequestToken="tok-1") == first
    error = _error(
        sim,
        "UpdateClusterVersion",
        {"name": "dev", "version": "1.32", "force": True, "clientRequestToken": "tok-1"},
    )
    assert error.code == "InvalidParameterException"
    assert error.message == "Client request token tok-1 was already used with different parameters"
    assert sim.call("ListUpdates", {"name": "dev"})["updateIds"] == [first["id"]]


def test_an_injected_failure_leaves_the_cluster_on_its_version(clock: FakeClock) -> None:
    sim = _simulator(clock)
    sim.inject_control_plane_fault(
        "dev", {"type": "update_fails", "errorCode": "SubnetNotFound", "message": "subnet-0a1 was deleted"}
    )
    sim.inject_control_plane_fault("dev", {"type": "update_duration", "seconds": 1800})

    update = _upgrade(sim, "1.32")
    clock.advance(1799)
    assert _cluster(sim)["status"] == "UPDATING"
    clock.advance(1)

    failed = sim.call("DescribeUpdate", {"name": "dev", "updateId": update["id"]})["update"]
    assert failed["status"] == "Failed"
    assert failed["errors"] == [
        {"errorCode": "SubnetNotFound", "errorMessage": "subnet-0a1 was deleted", "resourceIds": []}
    ]
    cluster = _cluster(sim)
    assert (cluster["status"], cluster["version"]) == ("ACTIVE", "1.31")
    assert sim.store_of("dev").kubernetes_version == "1.31"
    # The fault is spent: the next attempt succeeds.
    retry = _upgrade(sim, "1.32")
    clock.advance(1800)
    assert (
        sim.call("DescribeUpdate", {"name": "dev", "updateId": retry["id"]})["update"]["status"]
        == "Successful"
    )


def test_too_few_free_addresses_in_the_cluster_subnets_fail_the_update(clock: FakeClock) -> None:
    subnets = [ClusterSubnet("subnet-1", "eu-west-1a", 2), ClusterSubnet("subnet-2", "eu-west-1b", 2)]
    sim = _simulator(clock, subnets=subnets)

    update = _upgrade(sim, "1.32")
    clock.advance(600)

    failed = sim.call("DescribeUpdate", {"name": "dev", "updateId": update["id"]})["update"]
    assert failed["status"] == "Failed"
    assert failed["errors"] == [
        {
            "errorCode": "IpNotAvailable",
            "errorMessage": "The cluster's subnets subnet-1, subnet-2 have 4 free IP addresses; "
            "updating the control plane needs up to 5.",
            "resourceIds": ["subnet-1", "subnet-2"],
        }
    ]
    assert _cluster(sim)["version"] == "1.31"


def test_describe_cluster_shows_the_vpc_config_and_upgrade_policy(clock: FakeClock) -> None:
    cluster = _cluster(_simulator(clock))

    vpc = cluster["resourcesVpcConfig"]
    assert len(vpc["subnetIds"]) == 2 and all(s.startswith("subnet-") for s in vpc["subnetIds"])
    assert vpc["vpcId"].startswith("vpc-") and vpc["clusterSecurityGroupId"].startswith("sg-")
    assert (vpc["endpointPublicAccess"], vpc["endpointPrivateAccess"]) == (True, False)
    assert cluster["upgradePolicy"] == {"supportType": "EXTENDED"}


# ---- upgrade insights --------------------------------------------------------------------------
def test_insights_pass_for_a_clean_cluster_with_the_reasons_of_the_aws_examples(clock: FakeClock) -> None:
    sim = _simulator(clock, node_kubelet="1.31", addons={"kube-proxy": "v1.31.10-eksbuild.8"})

    insights = _insights(sim)

    by_name = {(i["name"], i["kubernetesVersion"]): i for i in insights}
    assert set(by_name) == {
        ("Deprecated APIs removed in Kubernetes v1.32", "1.32"),
        ("Kubelet version skew", "1.32"),
        ("EKS add-on version compatibility", "1.32"),
        ("Cluster health issues", "1.32"),
        ("kube-proxy version skew", "1.32"),
        ("Deprecated APIs removed in Kubernetes v1.33", "1.33"),
    }
    assert all(i["insightStatus"]["status"] == "PASSING" for i in insights)
    assert by_name[("Kubelet version skew", "1.32")]["insightStatus"]["reason"] == (
        "Node kubelet versions match the cluster control plane version."
    )
    assert set(insights[0]) == {
        "id",
        "name",
        "category",
        "kubernetesVersion",
        "lastRefreshTime",
        "lastTransitionTime",
        "description",
        "insightStatus",
    }
    assert [i["id"] for i in _insights(sim)] == [i["id"] for i in insights]  # stable ids
    flowschemas = _insight(sim, "Deprecated APIs removed in Kubernetes v1.32")["categorySpecificSummary"]
    assert {d["usage"] for d in flowschemas["deprecationDetails"]} == {
        "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas",
        "/apis/flowcontrol.apiserver.k8s.io/v1beta3/prioritylevelconfigurations",
    }


def test_objects_applied_with_an_api_removed_in_the_next_version_are_an_error(clock: FakeClock) -> None:
    sim = _simulator(clock, "1.24")
    store = sim.store_of("dev")
    store.apply_manifest(CRONJOB_V1BETA1)
    store.record_api_usage("argocd/v2.4.0", "/apis/batch/v1beta1/cronjobs", requests=120)

    insight = _insight(sim, "Deprecated APIs removed in Kubernetes v1.25")

    assert insight["insightStatus"] == {
        "status": "ERROR",
        "reason": "Deprecated API usage detected within the last 30 days.",
    }
    assert insight["resources"] == [
        {
            "insightStatus": insight["insightStatus"],
            "kubernetesResourceUri": "/apis/batch/v1beta1/namespaces/shop/cronjobs/nightly",
        }
    ]
    cronjobs = next(
        d
        for d in insight["categorySpecificSummary"]["deprecationDetails"]
        if d["usage"] == "/apis/batch/v1beta1/cronjobs"
    )
    assert cronjobs == {
        "usage": "/apis/batch/v1beta1/cronjobs",
        "replacedWith": "/apis/batch/v1/cronjobs",
        "stopServingVersion": "1.25",
        "startServingReplacementVersion": "1.21",
        "clientStats": [
            {"userAgent": "argocd/v2.4.0", "numberOfRequestsLast30Days": 120, "lastRequestTime": START}
        ],
    }
    assert [i["name"] for i in _insights(sim, statuses=["ERROR"])] == [
        "Deprecated APIs removed in Kubernetes v1.25"
    ]


def test_usage_of_an_api_removed_two_versions_ahead_is_a_warning(clock: FakeClock) -> None:
    sim = _simulator(clock, "1.30")
    sim.store_of("dev").record_api_usage(
        "kubectl/v1.30.2", "/apis/flowcontrol.apiserver.k8s.io/v1beta3/flowschemas"
    )

    statuses = {
        i["kubernetesVersion"]: i["insightStatus"]["status"]
        for i in _insights(sim)
        if "Deprecated" in i["name"]
    }

    assert statuses == {"1.31": "PASSING", "1.32": "WARNING"}


def test_usage_older_than_thirty_days_no_longer_counts(clock: FakeClock) -> None:
    sim = _simulator(clock, "1.24")
    sim.store_of("dev").record_api_usage("old-tool", "/apis/policy/v1beta1/poddisruptionbudgets")
    first = _insight(sim, "Deprecated APIs removed in Kubernetes v1.25")
    assert first["insightStatus"]["status"] == "ERROR"

    clock.advance(31 * 86400)
    later = _insight(sim, "Deprecated APIs removed in Kubernetes v1.25")

    assert later["insightStatus"]["status"] == "PASSING"
    assert later["lastTransitionTime"] == clock.now() and first["lastTransitionTime"] == START


def test_kubelet_skew_after_the_upgrade(clock: FakeClock) -> None:
    outside = _insight(_simulator(clock, node_kubelet="1.28"), "Kubelet version skew")
    within = _insight(_simulator(clock, node_kubelet="1.30"), "Kubelet version skew")

    assert outside["insightStatus"]["status"] == "ERROR"
    assert (
        outside["resources"][0]["kubernetesResourceUri"]
        == "/api/v1/nodes/ip-10-0-0-10.eu-west-1.compute.internal"
    )
    assert within["insightStatus"]["status"] == "WARNING"


def test_an_add_on_with_no_version_for_the_next_kubernetes_is_an_error(clock: FakeClock) -> None:
    sim = _simulator(clock, "1.33", addons={"vpc-cni": "v1.20.1-eksbuild.3", "coredns": "v1.12.4-eksbuild.1"})

    insight = _insight(sim, "EKS add-on version compatibility")

    assert insight["kubernetesVersion"] == "1.34"
    assert insight["insightStatus"]["status"] == "ERROR"
    details = insight["categorySpecificSummary"]["addonCompatibilityDetails"]
    assert {"name": "vpc-cni", "compatibleVersions": []} in details
    assert next(d for d in details if d["name"] == "coredns")["compatibleVersions"]
    assert [r["arn"].split(":addon/")[1].split("/")[1] for r in insight["resources"]] == ["vpc-cni"]


def test_enforced_insights_refuse_the_upgrade_unless_forced(clock: FakeClock) -> None:
    sim = _simulator(clock, "1.24")
    sim.store_of("dev").apply_manifest(CRONJOB_V1BETA1)
    _upgrade_allowed_while_not_enforced = sim.call(
        "ListInsights", {"clusterName": "dev", "filter": {"statuses": ["ERROR"]}}
    )["insights"]
    assert _upgrade_allowed_while_not_enforced
    sim.enforce_upgrade_insights = True

    error = _error(sim, "UpdateClusterVersion", {"name": "dev", "version": "1.25"})

    assert (error.code, error.status) == ("InvalidStateException", 400)
    assert error.message == (
        "Upgrade readiness issues detected. Call the EKS ListInsights API to view upgrade blocking issues "
        "detected by EKS. Pass the force flag to override upgrade readiness errors and proceed with upgrade."
    )
    assert error.message == UPGRADE_READINESS_MESSAGE
    assert _upgrade(sim, "1.25", force=True)["status"] == "InProgress"


def test_insights_do_not_block_by_default(clock: FakeClock) -> None:
    sim = _simulator(clock, "1.24")
    sim.store_of("dev").apply_manifest(CRONJOB_V1BETA1)

    assert _upgrade(sim, "1.25")["status"] == "InProgress"


def test_an_unknown_insight_is_not_found(clock: FakeClock) -> None:
    error = _error(_simulator(clock), "DescribeInsight", {"clusterName": "dev", "id": "nope"})

    assert (error.code, error.message) == ("ResourceNotFoundException", "No insight found for ID: nope")


# ---- served API versions across an upgrade -----------------------------------------------------
def test_the_upgrade_changes_what_the_cluster_serves(clock: FakeClock) -> None:
    sim = _simulator(clock, "1.24")
    store = sim.store_of("dev")
    store.apply_manifest(CRONJOB_V1BETA1)
    assert store.served_api_versions("CronJob") == ["batch/v1", "batch/v1beta1"]
    assert store.served_api_versions("PodSecurityPolicy") == ["policy/v1beta1"]

    _upgrade(sim, "1.25")
    clock.advance(600)
    sim.finish_due_updates()

    assert store.served_api_versions("CronJob") == ["batch/v1"]
    assert store.served_api_versions("PodSecurityPolicy") == []
    stored = store.get("CronJob", "shop", "nightly")
    assert stored is not None and stored["apiVersion"] == "batch/v1"
    assert KubeStore.last_applied_api_version(stored) == "batch/v1beta1"
    assert LAST_APPLIED_ANNOTATION in stored["metadata"]["annotations"]


# ---- DescribeClusterVersions -------------------------------------------------------------------
def test_cluster_versions_at_a_given_now(clock: FakeClock) -> None:
    sim = _simulator(clock)

    versions = {v["clusterVersion"]: v for v in sim.call("DescribeClusterVersions", {})["clusterVersions"]}

    assert "1.34" not in versions  # released on 2025-10-02
    assert "1.25" not in versions  # end of extended support 2025-05-01: left out without includeAll
    assert (versions["1.33"]["versionStatus"], versions["1.33"]["status"]) == (
        "STANDARD_SUPPORT",
        "standard-support",
    )
    assert versions["1.30"]["versionStatus"] == "STANDARD_SUPPORT"  # until 2025-07-23
    assert (versions["1.29"]["versionStatus"], versions["1.29"]["status"]) == (
        "EXTENDED_SUPPORT",
        "extended-support",
    )
    assert [v for v, entry in versions.items() if entry["defaultVersion"]] == ["1.33"]
    assert versions["1.33"]["releaseDate"] == datetime(2025, 5, 29, tzinfo=UTC)
    assert versions["1.29"]["endOfStandardSupportDate"] == datetime(2025, 3, 23, tzinfo=UTC)
    assert versions["1.29"]["endOfExtendedSupportDate"] == datetime(2026, 3, 23, tzinfo=UTC)
    assert versions["1.31"]["kubernetesPatchVersion"] == "1.31.7"
    assert versions["1.31"]["clusterType"] == "eks" and versions["1.31"]["defaultPlatformVersion"] == "eks.1"

    everything = sim.call("DescribeClusterVersions", {"includeAll": True})["clusterVersions"]
    unsupported = [v["clusterVersion"] for v in everything if v["versionStatus"] == "UNSUPPORTED"]
    assert unsupported == ["1.25", "1.24", "1.23"] and everything[0]["clusterVersion"] == "1.33"
    only = sim.call("DescribeClusterVersions", {"versionStatus": "EXTENDED_SUPPORT"})["clusterVersions"]
    assert [v["clusterVersion"] for v in only] == ["1.29", "1.28", "1.27", "1.26"]
    default = sim.call("DescribeClusterVersions", {"defaultOnly": True})["clusterVersions"]
    assert [v["clusterVersion"] for v in default] == ["1.33"]
    page = sim.call("DescribeClusterVersions", {"maxResults": 2})
    assert len(page["clusterVersions"]) == 2 and page["nextToken"]
    rest = sim.call("DescribeClusterVersions", {"maxResults": 100, "nextToken": page["nextToken"]})
    assert rest["clusterVersions"][0]["clusterVersion"] == "1.31"


def test_the_status_moves_with_the_clock() -> None:
    clock = FakeClock(datetime(2025, 11, 26, 0, 0, tzinfo=UTC))  # 1.28 leaves extended support, 1.31 standard
    sim = _simulator(clock)

    statuses = {
        v["clusterVersion"]: v["versionStatus"]
        for v in sim.call("DescribeClusterVersions", {"includeAll": True})["clusterVersions"]
    }

    assert (statuses["1.28"], statuses["1.31"], statuses["1.34"]) == (
        "UNSUPPORTED",
        "EXTENDED_SUPPORT",
        "STANDARD_SUPPORT",
    )
    bad = _error(sim, "DescribeClusterVersions", {"versionStatus": "standard"})
    assert bad.code == "InvalidParameterException"
