"""Managed node groups in the EKS simulator behave as FIDELITY.md §1 and §4 say: validation of
UpdateNodegroupVersion, the four phases of the roll on the simulated clock, PDB-honouring drains,
PodEvictionFailure and force, UpdateNodegroupConfig, and the SSM parameters that recommend a release."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rehearsal.eks.catalog import default_ami_releases
from rehearsal.eks.simulator import EksApiError, EksSimulator
from rehearsal.kube.server import ApiError, evict_pod
from rehearsal.kube.store import KubeStore

START = datetime(2025, 1, 20, 9, 0, tzinfo=UTC)  # v20250116 is the newest release; v20250123 is ahead
OLD_RELEASE = "1.31.2-20241121"
LATEST_RELEASE = "1.31.4-20250116"  # the newest 1.31 release published by START
TWO_AZS = [("subnet-0a1", "eu-west-1a"), ("subnet-0b2", "eu-west-1b")]
ADDONS = {
    "vpc-cni": "v1.19.2-eksbuild.5",
    "kube-proxy": "v1.31.10-eksbuild.8",
    "coredns": "v1.11.4-eksbuild.22",
}
SSM_PREFIX = "/aws/service/eks/optimized-ami"
# Top-level keys of the AWS CLI describe-nodegroup example (api_samples/describe_nodegroup.json).
DESCRIBE_NODEGROUP_SAMPLE_KEYS = {
    "nodegroupName",
    "nodegroupArn",
    "clusterName",
    "version",
    "releaseVersion",
    "createdAt",
    "modifiedAt",
    "status",
    "capacityType",
    "scalingConfig",
    "instanceTypes",
    "subnets",
    "amiType",
    "nodeRole",
    "labels",
    "resources",
    "diskSize",
    "health",
    "updateConfig",
    "tags",
}


class FakeClock:
    def __init__(self) -> None:
        self.current = START

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _simulator(clock: FakeClock, *, addons: bool = True, cluster_version: str = "1.31") -> EksSimulator:
    sim = EksSimulator(clock)
    store = KubeStore("dev", cluster_version)
    store.clock_now = lambda: clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    sim.add_cluster(
        "dev",
        account_id="111122223333",
        region="eu-west-1",
        version=cluster_version,
        store=store,
        endpoint="http://127.0.0.1:8443/dev",
    )
    if addons:
        for addon, version in ADDONS.items():
            sim.install_addon("dev", addon, version)
    return sim


@pytest.fixture
def sim(clock: FakeClock) -> EksSimulator:
    simulator = _simulator(clock)
    simulator.add_nodegroup("dev", "workers", release_version=OLD_RELEASE, subnets=TWO_AZS)
    return simulator


def _with_web(sim: EksSimulator, pdb: dict[str, Any] | None) -> None:
    sim.add_workload("dev", namespace="shop", name="web", replicas=3, nodegroup="workers", pdb=pdb)


def _update_version(sim: EksSimulator, nodegroup: str = "workers", **params: Any) -> dict[str, Any]:
    response = sim.call(
        "UpdateNodegroupVersion", {"clusterName": "dev", "nodegroupName": nodegroup, **params}
    )
    return dict(response["update"])


def _describe_update(sim: EksSimulator, update_id: str, nodegroup: str = "workers") -> dict[str, Any]:
    params = {"name": "dev", "updateId": update_id, "nodegroupName": nodegroup}
    return dict(sim.call("DescribeUpdate", params)["update"])


def _run(
    sim: EksSimulator,
    clock: FakeClock,
    update_id: str,
    *,
    nodegroup: str = "workers",
    step: float = 5,
    limit: float = 3 * 3600,
) -> dict[str, Any]:
    """Advance the clock until the update is no longer InProgress (polling like the product does)."""
    waited = 0.0
    while waited <= limit:
        update = _describe_update(sim, update_id, nodegroup)
        if update["status"] != "InProgress":
            return update
        clock.advance(step)
        waited += step
    raise AssertionError(f"update {update_id} still InProgress after {limit} simulated seconds")


def _nodes(sim: EksSimulator) -> list[dict[str, Any]]:
    return sim.store_of("dev").list("Node")


def _web_pods(sim: EksSimulator) -> list[dict[str, Any]]:
    return sim.store_of("dev").list("Pod", "shop")


def _is_ready(obj: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in obj["status"].get("conditions", []))


def _error(excinfo: pytest.ExceptionInfo[EksApiError]) -> tuple[str, str]:
    return excinfo.value.code, excinfo.value.message


# ==== setup: nodes and workloads ====================================================================


def test_add_nodegroup_creates_ready_labelled_nodes_spread_over_the_zones(sim: EksSimulator) -> None:
    nodes = _nodes(sim)
    assert len(nodes) == 3
    zones = sorted(n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes)
    assert zones == ["eu-west-1a", "eu-west-1a", "eu-west-1b"]
    ami_type = sim.ami_releases.ami_types["AL2023_x86_64_STANDARD"]
    expected_image = sim.ami_releases.ami_id(ami_type, OLD_RELEASE)
    assert re.fullmatch(r"ami-[0-9a-f]{17}", expected_image)
    for node in nodes:
        labels = node["metadata"]["labels"]
        assert labels["eks.amazonaws.com/nodegroup"] == "workers"
        assert labels["eks.amazonaws.com/nodegroup-image"] == expected_image
        assert labels["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
        assert labels["node.kubernetes.io/instance-type"] == "m6i.large"
        assert labels["kubernetes.io/os"] == "linux"
        assert re.fullmatch(r"aws:///eu-west-1[ab]/i-[0-9a-f]{17}", node["spec"]["providerID"])
        assert labels["topology.kubernetes.io/zone"] in node["spec"]["providerID"]
        assert _is_ready(node)
        assert re.fullmatch(r"v1\.31\.2-eks-[0-9a-f]{7}", node["status"]["nodeInfo"]["kubeletVersion"])
        assert node["status"]["allocatable"]["pods"] == "29"
        assert node["metadata"]["name"].endswith(".eu-west-1.compute.internal")
    # The add-ons' DaemonSets now run one Pod per node, and CoreDNS is bound to nodes.
    store = sim.store_of("dev")
    node_names = {n["metadata"]["name"] for n in nodes}
    aws_node = store.list("Pod", "kube-system", labels={"k8s-app": "aws-node"})
    assert {p["spec"]["nodeName"] for p in aws_node} == node_names
    assert len(aws_node) == 3
    coredns = store.list("Pod", "kube-system", labels={"k8s-app": "kube-dns"})
    assert coredns and all(p["spec"].get("nodeName") in node_names for p in coredns)


def test_describe_and_list_nodegroups(sim: EksSimulator) -> None:
    sim.add_nodegroup(
        "dev", "batch", release_version=OLD_RELEASE, subnets=TWO_AZS, desired=1, labels={"team": "data"}
    )
    body = sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "workers"})["nodegroup"]
    assert set(body) == DESCRIBE_NODEGROUP_SAMPLE_KEYS
    assert body["version"] == "1.31"
    assert body["releaseVersion"] == OLD_RELEASE
    assert body["status"] == "ACTIVE"
    assert body["scalingConfig"] == {"minSize": 1, "maxSize": 6, "desiredSize": 3}
    assert body["subnets"] == ["subnet-0a1", "subnet-0b2"]
    assert body["updateConfig"] == {"maxUnavailable": 1}
    assert body["health"] == {"issues": []}
    assert re.fullmatch(
        r"arn:aws:eks:eu-west-1:111122223333:nodegroup/dev/workers/[0-9a-f-]{36}", body["nodegroupArn"]
    )
    assert body["resources"]["autoScalingGroups"][0]["name"] == "eks-workers-" + body["nodegroupArn"][-36:]
    batch = sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "batch"})["nodegroup"]
    assert batch["labels"] == {"team": "data"}

    first = sim.call("ListNodegroups", {"clusterName": "dev", "maxResults": 1})
    assert first["nodegroups"] == ["batch"]
    second = sim.call("ListNodegroups", {"clusterName": "dev", "nextToken": first["nextToken"]})
    assert second == {"nodegroups": ["workers"]}
    with pytest.raises(EksApiError) as missing:
        sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "nope"})
    assert missing.value.code == "ResourceNotFoundException"


def test_add_workload_runs_ready_pods_round_robin_with_a_pdb_status(sim: EksSimulator) -> None:
    _with_web(sim, {"maxUnavailable": 1})
    store = sim.store_of("dev")
    deployment = store.get("Deployment", "shop", "web")
    assert deployment is not None
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {
        "eks.amazonaws.com/nodegroup": "workers"
    }
    assert deployment["status"]["readyReplicas"] == 3
    (replica_set,) = store.list("ReplicaSet", "shop")
    assert replica_set["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"]
    pods = _web_pods(sim)
    assert len(pods) == 3
    assert len({p["spec"]["nodeName"] for p in pods}) == 3  # one per node
    for pod in pods:
        assert pod["metadata"]["ownerReferences"][0]["uid"] == replica_set["metadata"]["uid"]
        assert pod["status"]["phase"] == "Running"
        assert _is_ready(pod)
    budget = store.get("PodDisruptionBudget", "shop", "web")
    assert budget is not None
    assert budget["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    status = budget["status"]
    assert (status["expectedPods"], status["currentHealthy"], status["desiredHealthy"]) == (3, 3, 2)
    assert status["disruptionsAllowed"] == 1

    sim.add_workload(
        "dev", namespace="shop", name="db", replicas=2, pdb={"minAvailable": 2, "name": "db-pdb"}
    )
    db_budget = store.get("PodDisruptionBudget", "shop", "db-pdb")
    assert db_budget is not None
    assert db_budget["status"]["disruptionsAllowed"] == 0
    # The eviction API spends from the same status the simulator keeps.
    db_pod = store.list("Pod", "shop", labels={"app": "db"})[0]["metadata"]["name"]
    with pytest.raises(ApiError) as refused:
        evict_pod(store, "shop", db_pod)
    assert refused.value.code == 429


def test_pdb_status_follows_pod_readiness(sim: EksSimulator) -> None:
    _with_web(sim, {"minAvailable": 2})
    pod = _web_pods(sim)[0]["metadata"]["name"]
    sim.set_pod_ready("dev", "shop", pod, False)
    status = sim.store_of("dev").value("PodDisruptionBudget", "shop", "web", ("status",))
    assert (status["currentHealthy"], status["desiredHealthy"], status["disruptionsAllowed"]) == (2, 2, 0)
    sim.set_pod_ready("dev", "shop", pod, True)
    status = sim.store_of("dev").value("PodDisruptionBudget", "shop", "web", ("status",))
    assert status["disruptionsAllowed"] == 1


def test_setup_refuses_what_eks_would_not_have(clock: FakeClock) -> None:
    sim = _simulator(clock, addons=False)
    with pytest.raises(ValueError, match="not a published"):
        sim.add_nodegroup("dev", "a", release_version="1.31.9-20991231", subnets=TWO_AZS)
    with pytest.raises(ValueError, match="newer than the cluster"):
        sim.add_nodegroup("dev", "b", release_version="1.32.0-20250116", subnets=TWO_AZS)
    with pytest.raises(ValueError, match="no releases for amiType"):
        sim.add_nodegroup(
            "dev", "c", ami_type="BOTTLEROCKET_x86_64", release_version=OLD_RELEASE, subnets=TWO_AZS
        )
    with pytest.raises(ValueError, match="exactly one"):
        sim.add_workload("dev", namespace="x", name="y", pdb={"minAvailable": 1, "maxUnavailable": 1})


# ==== UpdateNodegroupVersion: request validation =====================================================


def test_update_response_names_version_and_the_newest_release(sim: EksSimulator) -> None:
    update = _update_version(sim, version="1.31")
    assert update["status"] == "InProgress"
    assert update["type"] == "VersionUpdate"
    assert update["params"] == [
        {"type": "Version", "value": "1.31"},
        {"type": "ReleaseVersion", "value": LATEST_RELEASE},
    ]
    assert update["errors"] == []
    assert update["createdAt"] == START
    body = sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "workers"})["nodegroup"]
    assert body["status"] == "UPDATING"
    assert body["releaseVersion"] == OLD_RELEASE  # until the update succeeds


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"nodegroupName": "nope"}, "ResourceNotFoundException", "No node group found for name: nope."),
        (
            {"version": "1.32"},
            "InvalidParameterException",
            "greater than the cluster's Kubernetes version 1.31",
        ),
        ({"version": "1.30"}, "InvalidParameterException", "cannot roll back"),
        (
            {"version": "1.31", "releaseVersion": "1.31.2-20241115"},
            "InvalidParameterException",
            "cannot roll back",
        ),
        (
            {"version": "1.31", "releaseVersion": "1.31.9-20241130"},
            "InvalidParameterException",
            "Requested release version 1.31.9-20241130 is not valid for kubernetes version 1.31.",
        ),
        (
            # v20250123 is dated after the simulated now: not published yet.
            {"version": "1.31", "releaseVersion": "1.31.4-20250123"},
            "InvalidParameterException",
            "Requested release version 1.31.4-20250123 is not valid for kubernetes version 1.31.",
        ),
        ({"version": "1.31", "releaseVersion": "banana"}, "InvalidParameterException", "not valid"),
    ],
)
def test_update_version_validation(
    sim: EksSimulator, params: dict[str, Any], code: str, message: str
) -> None:
    request = {"clusterName": "dev", "nodegroupName": "workers", **params}
    with pytest.raises(EksApiError) as refused:
        sim.call("UpdateNodegroupVersion", request)
    assert refused.value.code == code
    assert message in refused.value.message
    assert sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "workers"})["nodegroup"][
        "status"
    ] == ("ACTIVE")


def test_release_of_another_kubernetes_version_is_refused_with_the_observed_message(clock: FakeClock) -> None:
    sim = _simulator(clock, addons=False)
    sim.add_nodegroup("dev", "old", release_version="1.30.6-20241121", subnets=TWO_AZS, desired=1)
    with pytest.raises(EksApiError) as refused:
        _update_version(sim, "old", version="1.30", releaseVersion="1.31.3-20250103")
    assert _error(refused) == (
        "InvalidParameterException",
        "Requested release version 1.31.3-20250103 is not valid for kubernetes version 1.30.",
    )
    # A minor version up to the cluster's is fine, and the release follows it.
    update = _update_version(sim, "old", version="1.31")
    assert update["params"][1] == {"type": "ReleaseVersion", "value": LATEST_RELEASE}


def test_an_explicit_release_that_is_published_is_accepted(sim: EksSimulator, clock: FakeClock) -> None:
    update = _update_version(sim, version="1.31", releaseVersion="1.31.3-20250103")
    assert update["params"][1]["value"] == "1.31.3-20250103"
    assert _run(sim, clock, update["id"])["status"] == "Successful"
    clock.current = datetime(2025, 1, 23, 0, 0, tzinfo=UTC)  # v20250123 is out now
    later = _update_version(sim, version="1.31", releaseVersion="1.31.4-20250123")
    assert later["params"][1]["value"] == "1.31.4-20250123"


def test_only_the_newest_release_when_configured_so(sim: EksSimulator) -> None:
    sim.nodegroup_only_latest_release = True
    with pytest.raises(EksApiError) as refused:
        _update_version(sim, version="1.31", releaseVersion="1.31.3-20250103")
    assert refused.value.message == (
        "Requested Nodegroup release version 1.31.3-20250103 is invalid. "
        f"Allowed release version is {LATEST_RELEASE}"
    )


def test_without_version_the_cluster_version_is_used_unless_configured(clock: FakeClock) -> None:
    sim = _simulator(clock, addons=False)
    sim.add_nodegroup("dev", "old", release_version="1.30.6-20241121", subnets=TWO_AZS, desired=1)
    sim.add_nodegroup("dev", "other", release_version="1.30.6-20241121", subnets=TWO_AZS, desired=1)
    assert _update_version(sim, "old")["params"][0] == {"type": "Version", "value": "1.31"}
    sim.nodegroup_default_version = "nodegroup"
    assert _update_version(sim, "other")["params"] == [
        {"type": "Version", "value": "1.30"},
        {"type": "ReleaseVersion", "value": "1.30.8-20250116"},
    ]


def test_a_second_update_while_one_runs_is_resource_in_use(sim: EksSimulator) -> None:
    _update_version(sim, version="1.31")
    for operation, extra in (
        ("UpdateNodegroupVersion", {"version": "1.31"}),
        ("UpdateNodegroupConfig", {"updateConfig": {"maxUnavailable": 2}}),
    ):
        with pytest.raises(EksApiError) as busy:
            sim.call(operation, {"clusterName": "dev", "nodegroupName": "workers", **extra})
        assert _error(busy) == (
            "ResourceInUseException",
            "Nodegroup cannot be updated as it is currently not in Active State",
        )
        assert busy.value.status == 409


def test_client_request_token_makes_the_request_idempotent(sim: EksSimulator) -> None:
    first = _update_version(sim, version="1.31", clientRequestToken="tok-1")
    again = _update_version(sim, version="1.31", clientRequestToken="tok-1")
    assert again["id"] == first["id"]
    with pytest.raises(EksApiError) as reused:
        _update_version(sim, version="1.31", releaseVersion=LATEST_RELEASE, clientRequestToken="tok-1")
    assert reused.value.code == "InvalidParameterException"


def test_custom_ami_node_groups_take_only_a_launch_template(clock: FakeClock) -> None:
    sim = _simulator(clock, addons=False)
    sim.add_nodegroup(
        "dev",
        "custom",
        release_version=OLD_RELEASE,
        custom_ami_id="ami-0123456789abcdef0",
        launch_template={"id": "lt-0abc", "name": "custom-lt", "version": "3"},
        subnets=TWO_AZS,
        desired=2,
    )
    body = sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "custom"})["nodegroup"]
    assert body["amiType"] == "CUSTOM"
    assert body["releaseVersion"] == "ami-0123456789abcdef0"
    assert body["launchTemplate"] == {"id": "lt-0abc", "name": "custom-lt", "version": "3"}
    node = _nodes(sim)[0]
    assert node["metadata"]["labels"]["eks.amazonaws.com/nodegroup-image"] == "ami-0123456789abcdef0"
    assert node["metadata"]["labels"]["eks.amazonaws.com/sourceLaunchTemplateId"] == "lt-0abc"
    assert node["metadata"]["labels"]["eks.amazonaws.com/sourceLaunchTemplateVersion"] == "3"

    with pytest.raises(EksApiError) as with_version:
        _update_version(sim, "custom", version="1.31", launchTemplate={"id": "lt-0abc", "version": "4"})
    assert _error(with_version) == (
        "InvalidParameterException",
        "You cannot specify the field kubernetesVersion when using custom AMIs.",
    )
    with pytest.raises(EksApiError) as without_template:
        _update_version(sim, "custom")
    assert _error(without_template) == (
        "InvalidParameterException",
        "Launch template details can't be null for Custom ami type node group",
    )
    with pytest.raises(EksApiError) as other_template:
        _update_version(sim, "custom", launchTemplate={"id": "lt-0other", "version": "4"})
    assert other_template.value.code == "InvalidParameterException"
    update = _update_version(sim, "custom", launchTemplate={"id": "lt-0abc", "version": "4"})
    assert update["params"] == [
        {"type": "LaunchTemplateName", "value": "custom-lt"},
        {"type": "LaunchTemplateVersion", "value": "4"},
    ]
    assert _run(sim, clock, update["id"], nodegroup="custom")["status"] == "Successful"
    body = sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "custom"})["nodegroup"]
    assert body["launchTemplate"]["version"] == "4"
    assert body["releaseVersion"].startswith("ami-") and body["releaseVersion"] != "ami-0123456789abcdef0"
    for node in _nodes(sim):
        assert node["metadata"]["labels"]["eks.amazonaws.com/sourceLaunchTemplateVersion"] == "4"
        assert node["metadata"]["labels"]["eks.amazonaws.com/nodegroup-image"] == body["releaseVersion"]


# ==== the roll ========================================================================================


def test_a_roll_replaces_every_node_and_keeps_the_workload_within_its_pdb(
    sim: EksSimulator, clock: FakeClock
) -> None:
    _with_web(sim, {"maxUnavailable": 1})
    old_nodes = {n["metadata"]["name"] for n in _nodes(sim)}
    update = _update_version(sim, version="1.31")
    status = "InProgress"
    saw_cordoned = False
    while status == "InProgress":
        clock.advance(5)
        status = _describe_update(sim, update["id"])["status"]
        budget = sim.store_of("dev").value("PodDisruptionBudget", "shop", "web", ("status",))
        assert budget["currentHealthy"] >= 2, "the PDB allows one web Pod down at a time"
        for node in _nodes(sim):
            if node["metadata"]["name"] in old_nodes and node["spec"].get("unschedulable"):
                saw_cordoned = True
                assert (
                    node["metadata"]["labels"]["node.kubernetes.io/exclude-from-external-load-balancers"]
                    == "true"
                )
                assert {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}.items() <= (
                    next(
                        t for t in node["spec"]["taints"] if t["key"] == "node.kubernetes.io/unschedulable"
                    ).items()
                )
    assert status == "Successful"
    assert saw_cordoned
    assert clock.now() - START < timedelta(minutes=20)

    body = sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "workers"})["nodegroup"]
    assert (body["status"], body["version"], body["releaseVersion"]) == ("ACTIVE", "1.31", LATEST_RELEASE)
    new_image = sim.ssm_parameter(f"{SSM_PREFIX}/1.31/amazon-linux-2023/x86_64/standard/recommended/image_id")
    nodes = _nodes(sim)
    assert len(nodes) == 3
    new_nodes = {n["metadata"]["name"] for n in nodes}
    assert not new_nodes & old_nodes
    assert sorted(n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in nodes) == [
        "eu-west-1a",
        "eu-west-1a",
        "eu-west-1b",
    ]
    for node in nodes:
        assert node["metadata"]["labels"]["eks.amazonaws.com/nodegroup-image"] == new_image
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.31.4-eks-")
        assert _is_ready(node)
        assert not node["spec"].get("unschedulable")
        assert "node.kubernetes.io/exclude-from-external-load-balancers" not in node["metadata"]["labels"]
    pods = _web_pods(sim)
    assert len(pods) == 3
    assert all(_is_ready(p) and p["spec"]["nodeName"] in new_nodes for p in pods)
    store = sim.store_of("dev")
    assert all(p["spec"].get("nodeName") in new_nodes for p in store.list("Pod", "kube-system"))
    assert len(store.list("Pod", "kube-system", labels={"k8s-app": "aws-node"})) == 3

    timeline = sim.nodegroup_timeline("dev", "workers")
    times = [e["at"] for e in timeline]
    assert times == sorted(times)

    def first(node: str, event: str) -> int:
        return next(i for i, e in enumerate(timeline) if e["node"] == node and e["event"] == event)

    launched = [e["node"] for e in timeline if e["event"] == "launched"]
    assert sorted(launched) == sorted(new_nodes)  # the surge covers all three old nodes: min(2 x 2 AZs, 3)
    first_cordon = min(first(n, "cordoned") for n in old_nodes)
    assert all(first(n, "launched") < first(n, "ready") < first_cordon for n in new_nodes)
    for node in old_nodes:
        assert first(node, "cordoned") < first(node, "drain started") < first(node, "drained")
        assert first(node, "drained") < first(node, "terminated")
        assert timeline[first(node, "terminated")]["at"] - timeline[first(node, "drained")][
            "at"
        ] == timedelta(seconds=60)
    evicted = [e for e in timeline if e["event"].startswith("evicted pod shop/web-")]
    assert len(evicted) == 3
    assert not any(e["event"].startswith("force-evicted") for e in timeline)
    assert not any("aws-node" in e["event"] for e in timeline), "DaemonSet Pods are not evicted"
    # Drains ran one node at a time (maxUnavailable 1).
    starts = [e["at"] for e in timeline if e["event"] == "drain started"]
    assert len(set(starts)) == 3


def test_a_pdb_that_allows_no_disruption_fails_the_update_after_15_minutes(
    sim: EksSimulator, clock: FakeClock
) -> None:
    _with_web(sim, {"minAvailable": 3})
    old_nodes = {n["metadata"]["name"] for n in _nodes(sim)}
    update = _update_version(sim, version="1.31")
    result = _run(sim, clock, update["id"])
    assert result["status"] == "Failed"
    (error,) = result["errors"]
    assert error["errorCode"] == "PodEvictionFailure"
    assert (
        error["errorMessage"]
        == "Reached max retries while trying to evict pods from nodes in node group workers"
    )
    assert error["resourceIds"] and set(error["resourceIds"]) <= old_nodes  # node names, never Pods
    timeline = sim.nodegroup_timeline("dev", "workers")
    drain_started = next(e["at"] for e in timeline if e["event"] == "drain started")
    assert clock.now() - drain_started >= timedelta(minutes=15)
    assert clock.now() - drain_started < timedelta(minutes=15, seconds=10)
    assert any(e["event"] == "eviction refused by pdb web" for e in timeline)

    body = sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "workers"})["nodegroup"]
    assert (body["status"], body["releaseVersion"], body["version"]) == ("ACTIVE", OLD_RELEASE, "1.31")
    nodes = {n["metadata"]["name"]: n for n in _nodes(sim)}
    assert old_nodes <= set(nodes)  # nothing was terminated
    assert len(nodes) == 6  # [INF] the new nodes stay
    for name in old_nodes:
        assert not nodes[name]["spec"].get("unschedulable"), "old nodes are un-cordoned after the failure"
    assert all(_is_ready(p) for p in _web_pods(sim))
    assert len(_web_pods(sim)) == 3
    # A new update is accepted after the failure.
    assert _update_version(sim, version="1.31", force=True)["status"] == "InProgress"


def test_force_deletes_the_pods_a_pdb_protects_and_succeeds(sim: EksSimulator, clock: FakeClock) -> None:
    _with_web(sim, {"minAvailable": 3})
    original = {p["metadata"]["name"] for p in _web_pods(sim)}
    update = _update_version(sim, version="1.31", force=True)
    assert _run(sim, clock, update["id"])["status"] == "Successful"
    state = sim.nodegroup_state("dev", "workers")
    forced = state["updates"][-1]["forceEvicted"]
    assert {name.split("/")[1] for name in forced} == original
    timeline = sim.nodegroup_timeline("dev", "workers")
    assert sorted(e["pod"] for e in timeline if e["event"].startswith("force-evicted pod ")) == sorted(forced)
    assert state["releaseVersion"] == LATEST_RELEASE
    assert len(state["nodes"]) == 3
    assert all(_is_ready(p) for p in _web_pods(sim))


def test_force_can_wait_for_the_15_minute_limit_before_deleting(sim: EksSimulator, clock: FakeClock) -> None:
    sim.force_delete_after_seconds = 900  # the other reading of FIDELITY 1.42.4 (UNKNOWN)
    _with_web(sim, {"minAvailable": 3})
    update = _update_version(sim, version="1.31", force=True)
    assert _run(sim, clock, update["id"])["status"] == "Successful"
    timeline = sim.nodegroup_timeline("dev", "workers")
    first_drain = next(e["at"] for e in timeline if e["event"] == "drain started")
    first_forced = next(e["at"] for e in timeline if e["event"].startswith("force-evicted pod "))
    assert first_forced - first_drain == timedelta(minutes=15)


def test_a_pod_turning_unready_mid_roll_blocks_a_pdb_that_was_fine(
    sim: EksSimulator, clock: FakeClock
) -> None:
    _with_web(sim, {"maxUnavailable": 1})
    update = _update_version(sim, version="1.31")
    # Run until the first old node is gone and its web Pod is running Ready on a new node.
    while not any(e["event"] == "terminated" for e in sim.nodegroup_timeline("dev", "workers")):
        clock.advance(5)
    state = sim.nodegroup_state("dev", "workers")
    new_nodes = {n["name"] for n in state["nodes"] if n["kubeletVersion"].startswith("v1.31.4")}
    moved = next(p for p in _web_pods(sim) if p["spec"]["nodeName"] in new_nodes and _is_ready(p))
    sim.set_pod_ready("dev", "shop", moved["metadata"]["name"], False)
    budget = sim.store_of("dev").value("PodDisruptionBudget", "shop", "web", ("status",))
    assert budget["disruptionsAllowed"] == 0
    result = _run(sim, clock, update["id"])
    assert result["status"] == "Failed"
    assert result["errors"][0]["errorCode"] == "PodEvictionFailure"
    refused = [
        e for e in sim.nodegroup_timeline("dev", "workers") if e["event"] == "eviction refused by pdb web"
    ]
    assert refused and refused[0]["at"] > START


def test_max_unavailable_two_drains_two_nodes_at_once(clock: FakeClock) -> None:
    sim = _simulator(clock, addons=False)
    sim.add_nodegroup(
        "dev",
        "workers",
        release_version=OLD_RELEASE,
        subnets=TWO_AZS,
        desired=4,
        update_config={"maxUnavailable": 2},
    )
    update = _update_version(sim, version="1.31")
    assert _run(sim, clock, update["id"])["status"] == "Successful"
    timeline = sim.nodegroup_timeline("dev", "workers")
    starts = [e["at"] for e in timeline if e["event"] == "drain started"]
    assert len(starts) == 4
    assert starts[0] == starts[1]
    assert len(_nodes(sim)) == 4


def test_minimal_strategy_terminates_before_it_launches(clock: FakeClock) -> None:
    sim = _simulator(clock, addons=False)
    sim.add_nodegroup(
        "dev",
        "workers",
        release_version=OLD_RELEASE,
        subnets=TWO_AZS,
        update_config={"maxUnavailable": 1, "updateStrategy": "MINIMAL"},
    )
    _with_web(sim, {"maxUnavailable": 1})
    update = _update_version(sim, version="1.31")
    assert _run(sim, clock, update["id"])["status"] == "Successful"
    timeline = sim.nodegroup_timeline("dev", "workers")
    first_terminated = next(i for i, e in enumerate(timeline) if e["event"] == "terminated")
    first_launched = next(i for i, e in enumerate(timeline) if e["event"] == "launched")
    assert first_terminated < first_launched
    assert len(_nodes(sim)) == 3
    assert all(_is_ready(p) for p in _web_pods(sim))


def test_nodes_that_never_turn_ready_fail_with_node_creation_failure(
    sim: EksSimulator, clock: FakeClock
) -> None:
    sim.inject_fault("dev", "workers", {"type": "nodes_never_ready"})
    update = _update_version(sim, version="1.31")
    result = _run(sim, clock, update["id"], step=30)
    assert result["status"] == "Failed"
    (error,) = result["errors"]
    assert error["errorCode"] == "NodeCreationFailure"
    assert (
        error["errorMessage"]
        == "Couldn't proceed with upgrade process as new nodes are not joining node group workers"
    )
    assert clock.now() - START >= timedelta(minutes=16)
    body = sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "workers"})["nodegroup"]
    assert (body["status"], body["releaseVersion"]) == ("ACTIVE", OLD_RELEASE)
    assert body["health"]["issues"][0]["code"] == "NodeCreationFailure"
    assert len(_nodes(sim)) == 3 and all(_is_ready(n) for n in _nodes(sim))
    # The fault is spent: the next update goes through.
    assert _run(sim, clock, _update_version(sim, version="1.31")["id"])["status"] == "Successful"
    assert sim.call("DescribeNodegroup", {"clusterName": "dev", "nodegroupName": "workers"})["nodegroup"][
        "health"
    ] == {"issues": []}


def _drain_order(update_id: str) -> list[str]:
    clock = FakeClock()
    sim = _simulator(clock, addons=False)
    sim.add_nodegroup("dev", "workers", release_version=OLD_RELEASE, subnets=TWO_AZS, desired=5)
    sim.new_update_id = lambda: update_id
    update = _update_version(sim, version="1.31")
    assert update["id"] == update_id
    assert _run(sim, clock, update_id)["status"] == "Successful"
    return [e["node"] for e in sim.nodegroup_timeline("dev", "workers") if e["event"] == "drain started"]


def test_the_random_drain_order_is_repeatable_for_the_same_update_id() -> None:
    first = _drain_order("3f1c2a9e-0000-4000-8000-000000000001")
    assert len(first) == 5
    assert _drain_order("3f1c2a9e-0000-4000-8000-000000000001") == first
    others = {tuple(_drain_order(f"3f1c2a9e-0000-4000-8000-00000000000{i}")) for i in range(2, 7)}
    assert len(others | {tuple(first)}) > 1, "the order is random, not the node names' order"


def test_a_statefulset_pod_keeps_its_name_when_it_moves(sim: EksSimulator, clock: FakeClock) -> None:
    sim.add_workload(
        "dev",
        namespace="data",
        name="db",
        kind="StatefulSet",
        replicas=2,
        nodegroup="workers",
        pdb={"maxUnavailable": 1},
    )
    update = _update_version(sim, version="1.31")
    assert _run(sim, clock, update["id"])["status"] == "Successful"
    pods = sim.store_of("dev").list("Pod", "data")
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1"]
    new_nodes = {n["metadata"]["name"] for n in _nodes(sim)}
    assert all(_is_ready(p) and p["spec"]["nodeName"] in new_nodes for p in pods)


# ==== DescribeUpdate, ListUpdates, UpdateNodegroupConfig =============================================


def test_describe_update_of_a_node_group_update_needs_the_nodegroup_name(sim: EksSimulator) -> None:
    sim.add_nodegroup("dev", "other", release_version=OLD_RELEASE, subnets=TWO_AZS, desired=1)
    update = _update_version(sim, version="1.31")
    for qualifiers in ({}, {"nodegroupName": "other"}, {"addonName": "vpc-cni"}):
        with pytest.raises(EksApiError) as missing:
            sim.call("DescribeUpdate", {"name": "dev", "updateId": update["id"], **qualifiers})
        assert missing.value.code == "ResourceNotFoundException"
    assert _describe_update(sim, update["id"])["id"] == update["id"]
    listed = sim.call("ListUpdates", {"name": "dev", "nodegroupName": "workers"})
    assert listed == {"updateIds": [update["id"]]}
    assert sim.call("ListUpdates", {"name": "dev", "nodegroupName": "other"}) == {"updateIds": []}
    assert sim.call("ListUpdates", {"name": "dev"}) == {"updateIds": []}
    with pytest.raises(EksApiError) as unknown:
        sim.call("ListUpdates", {"name": "dev", "nodegroupName": "nope"})
    assert unknown.value.code == "ResourceNotFoundException"


def test_update_nodegroup_config_changes_the_update_config(sim: EksSimulator, clock: FakeClock) -> None:
    response = sim.call(
        "UpdateNodegroupConfig",
        {"clusterName": "dev", "nodegroupName": "workers", "updateConfig": {"maxUnavailable": 2}},
    )
    update = response["update"]
    assert (update["type"], update["status"]) == ("ConfigUpdate", "InProgress")
    assert update["params"] == [{"type": "MaxUnavailable", "value": "2"}]
    describe = {"clusterName": "dev", "nodegroupName": "workers"}
    assert sim.call("DescribeNodegroup", describe)["nodegroup"]["status"] == "UPDATING"
    clock.advance(59)
    assert _describe_update(sim, update["id"])["status"] == "InProgress"
    clock.advance(1)
    assert _describe_update(sim, update["id"])["status"] == "Successful"
    body = sim.call("DescribeNodegroup", describe)["nodegroup"]
    assert (body["status"], body["updateConfig"]) == ("ACTIVE", {"maxUnavailable": 2})

    second = sim.call(
        "UpdateNodegroupConfig",
        {**describe, "updateConfig": {"maxUnavailablePercentage": 50, "updateStrategy": "MINIMAL"}},
    )["update"]
    assert second["params"] == [
        {"type": "MaxUnavailablePercentage", "value": "50"},
        {"type": "UpdateStrategy", "value": "MINIMAL"},
    ]
    clock.advance(60)
    body = sim.call("DescribeNodegroup", describe)["nodegroup"]
    assert body["updateConfig"] == {"maxUnavailablePercentage": 50, "updateStrategy": "MINIMAL"}
    assert sim.call("ListUpdates", {"name": "dev", "nodegroupName": "workers"})["updateIds"] == [
        update["id"],
        second["id"],
    ]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (
            {"updateConfig": {"maxUnavailable": 1, "maxUnavailablePercentage": 10}},
            "InvalidParameterException",
        ),
        ({"updateConfig": {"maxUnavailable": 0}}, "InvalidParameterException"),
        ({"updateConfig": {"maxUnavailable": 101}}, "InvalidParameterException"),
        ({"updateConfig": {"updateStrategy": "FAST"}}, "InvalidParameterException"),
        ({}, "InvalidParameterException"),
        ({"scalingConfig": {"desiredSize": 4}}, "UnsupportedOperation"),
    ],
)
def test_update_nodegroup_config_validation(sim: EksSimulator, params: dict[str, Any], code: str) -> None:
    with pytest.raises(EksApiError) as refused:
        sim.call("UpdateNodegroupConfig", {"clusterName": "dev", "nodegroupName": "workers", **params})
    assert refused.value.code == code


# ==== SSM public parameters ===========================================================================


def test_ssm_recommends_the_newest_release_published_by_the_simulated_now(clock: FakeClock) -> None:
    sim = _simulator(clock, addons=False)
    name = f"{SSM_PREFIX}/1.31/amazon-linux-2023/x86_64/standard/recommended/release_version"
    assert sim.ssm_parameter(name) == LATEST_RELEASE
    clock.current = datetime(2025, 1, 22, 23, 59, tzinfo=UTC)
    assert sim.ssm_parameter(name) == LATEST_RELEASE  # v20250123 is still a day ahead
    clock.current = datetime(2025, 1, 23, 0, 0, tzinfo=UTC)
    assert sim.ssm_parameter(name) == "1.31.4-20250123"
    image = sim.ssm_parameter(name.replace("release_version", "image_id"))
    assert image == sim.ami_releases.ami_id(
        sim.ami_releases.ami_types["AL2023_x86_64_STANDARD"], "1.31.4-20250123"
    )
    assert sim.calls["ssm:GetParameter"] == 4


def test_ssm_knows_the_ami_families_and_their_end(clock: FakeClock) -> None:
    sim = _simulator(clock, addons=False)
    clock.current = datetime(2026, 3, 1, tzinfo=UTC)
    assert (
        sim.ssm_parameter(f"{SSM_PREFIX}/1.32/amazon-linux-2/recommended/release_version")
        == "1.32.9-20251209"
    )
    assert sim.ssm_parameter(f"{SSM_PREFIX}/1.33/amazon-linux-2/recommended/release_version") is None
    assert sim.ssm_parameter(f"{SSM_PREFIX}/1.32/amazon-linux-2-arm64/recommended/release_version") == (
        "1.32.9-20251209"
    )
    al2023 = sim.ssm_parameter(
        f"{SSM_PREFIX}/1.35/amazon-linux-2023/arm64/standard/recommended/release_version"
    )
    assert al2023 is not None and al2023.startswith("1.35.") and al2023.endswith("-20260224")
    assert (
        sim.ssm_parameter(f"{SSM_PREFIX}/1.31/amazon-linux-2023/x86_64/nvidia/recommended/image_id")
        is not None
    )
    assert sim.ssm_parameter(f"{SSM_PREFIX}/1.31/bottlerocket/recommended/release_version") is None
    assert (
        sim.ssm_parameter("/aws/service/eks/optimized-ami/1.31/amazon-linux-2023/x86_64/standard/recommended")
        is None
    )
    assert sim.ssm_parameter("/my/own/parameter") is None


def test_a_release_published_during_the_run_is_recommended_from_its_date(clock: FakeClock) -> None:
    sim = _simulator(clock, addons=False)
    sim.add_nodegroup("dev", "workers", release_version=OLD_RELEASE, subnets=TWO_AZS, desired=1)
    sim.publish_ami_release("v20250125", "2025-01-25", {"1.31": "1.31.5-20250125"}, ["AL2023"])
    name = f"{SSM_PREFIX}/1.31/amazon-linux-2023/x86_64/standard/recommended/release_version"
    assert sim.ssm_parameter(name) == LATEST_RELEASE
    with pytest.raises(EksApiError):
        _update_version(sim, version="1.31", releaseVersion="1.31.5-20250125")
    clock.current = datetime(2025, 1, 25, 6, 0, tzinfo=UTC)
    assert sim.ssm_parameter(name) == "1.31.5-20250125"
    assert sim.ssm_parameter(name.replace("amazon-linux-2023/x86_64/standard", "amazon-linux-2")) == (
        "1.31.4-20250123"  # the new release has no AL2 AMIs
    )
    update = _update_version(sim, version="1.31")
    assert update["params"][1] == {"type": "ReleaseVersion", "value": "1.31.5-20250125"}
    with pytest.raises(ValueError, match="already known"):
        sim.publish_ami_release("v20250125", "2025-01-25", {"1.31": "1.31.5-20250125"}, ["AL2023"])


def test_the_release_data_is_sourced_and_starts_in_2024() -> None:
    releases = default_ami_releases()
    assert releases.sources and releases.retrieved
    assert releases.releases[0].date.year == 2024
    assert all(r.release_versions for r in releases.releases)
    assert {t.family for t in releases.ami_types.values()} == {"AL2", "AL2023"}
