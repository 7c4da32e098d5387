"""The EKS simulator behaves like EKS does for add-ons (FIDELITY.md §2 and §4)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from autopatch import addons as product_addons

from rehearsal.eks.catalog import (
    ADDON_CATALOG_FILE,
    KUBERNETES_VERSIONS_FILE,
    AddonCatalog,
    AddonVersion,
    Compatibility,
    default_addon_catalog,
    load_kubernetes_versions,
    parse_addon_version,
)
from rehearsal.eks.manifests import ADDON_NAME_LABEL, ADDON_OBJECTS, DEFAULT_COREFILE
from rehearsal.eks.simulator import EksApiError, EksSimulator
from rehearsal.kube.store import KubeStore

COREFILE = ("data", "Corefile")
DEV_VERSIONS = {
    "vpc-cni": "v1.19.2-eksbuild.5",
    "coredns": "v1.11.4-eksbuild.22",
    "kube-proxy": "v1.31.10-eksbuild.8",
    "aws-ebs-csi-driver": "v1.35.0-eksbuild.1",
    "eks-pod-identity-agent": "v1.2.0-eksbuild.1",
}
ALL_ADDONS = ["aws-ebs-csi-driver", "coredns", "eks-pod-identity-agent", "kube-proxy", "vpc-cni"]
# Their compatibility is inferred, not published (the catalogue's compatibilityNote).
INFERRED_COMPATIBILITY = ("aws-ebs-csi-driver", "eks-pod-identity-agent")
ECR = "602401143452.dkr.ecr.eu-west-1.amazonaws.com"


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _add_cluster(sim: EksSimulator, clock: FakeClock, name: str, version: str) -> KubeStore:
    store = KubeStore(name, version)
    store.clock_now = lambda: clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    sim.add_cluster(
        name,
        account_id="111122223333",
        region="eu-west-1",
        version=version,
        store=store,
        endpoint=f"http://127.0.0.1:8443/{name}",
        tags={"env": name},
    )
    return store


@pytest.fixture
def sim(clock: FakeClock) -> EksSimulator:
    simulator = EksSimulator(clock)
    _add_cluster(simulator, clock, "dev", "1.31")
    for addon, version in DEV_VERSIONS.items():
        simulator.install_addon("dev", addon, version)
    return simulator


def _update(sim: EksSimulator, addon: str, **params: Any) -> dict[str, Any]:
    response = sim.call("UpdateAddon", {"clusterName": "dev", "addonName": addon, **params})
    return response["update"]


def _describe_update(sim: EksSimulator, addon: str, update_id: str) -> dict[str, Any]:
    return sim.call("DescribeUpdate", {"name": "dev", "updateId": update_id, "addonName": addon})["update"]


def _describe_addon(sim: EksSimulator, addon: str) -> dict[str, Any]:
    return sim.call("DescribeAddon", {"clusterName": "dev", "addonName": addon})["addon"]


def _api_error(sim: EksSimulator, operation: str, params: dict[str, Any]) -> EksApiError:
    with pytest.raises(EksApiError) as caught:
        sim.call(operation, params)
    return caught.value


def _edit_corefile(sim: EksSimulator) -> None:
    sim.customer_edit(
        "dev",
        "ConfigMap",
        "kube-system",
        "coredns",
        COREFILE,
        DEFAULT_COREFILE.replace("cache 30", "cache 15"),
    )


# ---- catalogue ------------------------------------------------------------------------------------


def test_catalogue_versions_are_real_eks_version_strings_newest_first() -> None:
    catalog = default_addon_catalog()
    assert sorted(catalog.addons) == ALL_ADDONS
    for addon in catalog.addons.values():
        names = [v.addon_version for v in addon.versions]
        assert all(re.fullmatch(r"v\d+\.\d+\.\d+-eksbuild\.\d+", name) for name in names)
        assert names == sorted(names, key=parse_addon_version, reverse=True)


def test_catalogue_has_exactly_one_default_per_cluster_version() -> None:
    for addon in default_addon_catalog().addons.values():
        defaults: Counter[str] = Counter()
        cluster_versions = set()
        for version in addon.versions:
            for compatibility in version.compatibilities:
                cluster_versions.add(compatibility.cluster_version)
                defaults[compatibility.cluster_version] += compatibility.default_version
        assert all(defaults[v] == 1 for v in cluster_versions), addon.name


def test_data_files_name_their_sources() -> None:
    for path in (ADDON_CATALOG_FILE, KUBERNETES_VERSIONS_FILE):
        raw = json.loads(path.read_text())
        assert raw["source"] and raw["retrieved"]
    catalog = json.loads(ADDON_CATALOG_FILE.read_text())
    assert all(addon["source"] for addon in catalog["addons"].values())
    assert catalog["notes"]
    for name in INFERRED_COMPATIBILITY:
        assert "inferred, not published" in catalog["addons"][name]["compatibilityNote"].lower()


def test_kubernetes_calendar_covers_1_23_to_1_36_in_date_order() -> None:
    versions = load_kubernetes_versions()
    assert [v.version for v in versions] == [f"1.{minor}" for minor in range(23, 37)]
    for version in versions:
        assert version.eks_release < version.end_of_standard_support < version.end_of_extended_support


# ---- DescribeAddonVersions ------------------------------------------------------------------------


def test_describe_addon_versions_filters_by_kubernetes_version_and_addon(sim: EksSimulator) -> None:
    response = sim.call("DescribeAddonVersions", {"addonName": "kube-proxy", "kubernetesVersion": "1.31"})

    (addon,) = response["addons"]
    assert addon["addonName"] == "kube-proxy"
    assert addon["type"] == "networking" and addon["owner"] == "aws" and addon["publisher"] == "eks"
    versions = addon["addonVersions"]
    assert versions[0]["addonVersion"] == "v1.31.13-eksbuild.2"
    assert all(v["addonVersion"].startswith("v1.31.") for v in versions)
    assert all([c["clusterVersion"] for c in v["compatibilities"]] == ["1.31"] for v in versions)
    assert sum(v["compatibilities"][0]["defaultVersion"] for v in versions) == 1
    assert versions[0]["architecture"] == ["amd64", "arm64"]


def test_describe_addon_versions_leaves_out_addons_without_a_compatible_version(sim: EksSimulator) -> None:
    names = [
        a["addonName"] for a in sim.call("DescribeAddonVersions", {"kubernetesVersion": "1.34"})["addons"]
    ]

    assert names == ["coredns", "kube-proxy"]  # no documented vpc-cni version lists 1.34


@pytest.mark.parametrize("kubernetes", ["1.28", "1.29", "1.30", "1.31", "1.32", "1.33"])
def test_ebs_csi_and_pod_identity_are_offered_per_kubernetes_version(
    sim: EksSimulator, kubernetes: str
) -> None:
    offered = {}
    for name in INFERRED_COMPATIBILITY:
        response = sim.call("DescribeAddonVersions", {"addonName": name, "kubernetesVersion": kubernetes})
        (addon,) = response["addons"]
        offered[name] = addon
        versions = addon["addonVersions"]
        assert all([c["clusterVersion"] for c in v["compatibilities"]] == [kubernetes] for v in versions)
        assert sum(v["compatibilities"][0]["defaultVersion"] for v in versions) == 1

    ebs, agent = offered["aws-ebs-csi-driver"], offered["eks-pod-identity-agent"]
    assert (ebs["type"], agent["type"]) == ("storage", "security")
    assert [v["addonVersion"] for v in ebs["addonVersions"]] == [
        "v1.41.0-eksbuild.1",
        "v1.35.0-eksbuild.1",
        "v1.29.1-eksbuild.1",
        "v1.24.1-eksbuild.1",
    ]
    assert [v["addonVersion"] for v in agent["addonVersions"]] == [
        "v1.3.9-eksbuild.3",
        "v1.3.8-eksbuild.2",
        "v1.2.0-eksbuild.1",
    ]
    assert all(v["requiresIamPermissions"] for v in ebs["addonVersions"])
    assert not any(v["requiresIamPermissions"] for v in agent["addonVersions"])


@pytest.mark.parametrize("kubernetes", ["1.27", "1.34"])
def test_ebs_csi_and_pod_identity_are_not_offered_outside_the_inferred_range(
    sim: EksSimulator, kubernetes: str
) -> None:
    response = sim.call("DescribeAddonVersions", {"kubernetesVersion": kubernetes})

    assert not {a["addonName"] for a in response["addons"]} & set(INFERRED_COMPATIBILITY)


def test_describe_addon_versions_paginates(sim: EksSimulator) -> None:
    names, token, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"kubernetesVersion": "1.31", "maxResults": 1}
        if token:
            params["nextToken"] = token
        response = sim.call("DescribeAddonVersions", params)
        names += [a["addonName"] for a in response["addons"]]
        pages += 1
        token = response.get("nextToken")
        if not token:
            break

    assert pages == 5
    assert names == ALL_ADDONS
    assert _api_error(sim, "DescribeAddonVersions", {"maxResults": 101}).code == "InvalidParameterException"


def test_describe_addon_configuration_returns_a_draft06_schema_string(sim: EksSimulator) -> None:
    response = sim.call(
        "DescribeAddonConfiguration", {"addonName": "vpc-cni", "addonVersion": "v1.19.2-eksbuild.5"}
    )

    schema = json.loads(response["configurationSchema"])
    assert schema["$schema"] == "http://json-schema.org/draft-06/schema#"
    assert "nodeSelector" not in schema["definitions"]["VpcCni"]["properties"]
    assert response["podIdentityConfiguration"][0]["serviceAccount"] == "aws-node"


# ---- clusters and add-ons -------------------------------------------------------------------------


def test_describe_cluster_and_pagination_of_list_clusters(sim: EksSimulator, clock: FakeClock) -> None:
    _add_cluster(sim, clock, "staging", "1.31")
    _add_cluster(sim, clock, "prod", "1.30")

    cluster = sim.call("DescribeCluster", {"name": "prod"})["cluster"]
    first = sim.call("ListClusters", {"maxResults": 2})
    second = sim.call("ListClusters", {"maxResults": 2, "nextToken": first["nextToken"]})

    assert cluster["arn"] == "arn:aws:eks:eu-west-1:111122223333:cluster/prod"
    assert cluster["version"] == "1.30" and cluster["status"] == "ACTIVE"
    assert cluster["endpoint"] == "http://127.0.0.1:8443/prod"
    assert cluster["accessConfig"]["authenticationMode"] == "API_AND_CONFIG_MAP"
    assert cluster["certificateAuthority"]["data"]
    assert cluster["createdAt"].tzinfo is not None
    assert first["clusters"] + second["clusters"] == ["dev", "prod", "staging"]
    assert "nextToken" not in second
    assert _api_error(sim, "DescribeCluster", {"name": "nope"}).status == 404


def test_installed_addons_are_described_and_their_objects_are_in_kubernetes(sim: EksSimulator) -> None:
    addon = _describe_addon(sim, "coredns")
    store = sim.store_of("dev")

    assert sim.call("ListAddons", {"clusterName": "dev"})["addons"] == ALL_ADDONS
    assert addon["status"] == "ACTIVE" and addon["addonVersion"] == "v1.11.4-eksbuild.22"
    assert addon["addonArn"].startswith("arn:aws:eks:eu-west-1:111122223333:addon/dev/coredns/")
    assert addon["health"] == {"issues": []}
    for addon_name, keys in ADDON_OBJECTS.items():
        for kind, namespace, name in keys:
            obj = store.get(kind, namespace, name)
            assert obj is not None and obj["metadata"]["labels"][ADDON_NAME_LABEL] == addon_name
            assert set(store.owners(kind, namespace, name)) == {"eks"}
    deployment = store.get("Deployment", "kube-system", "coredns")
    assert deployment is not None
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "602401143452.dkr.ecr.eu-west-1.amazonaws.com/eks/coredns:v1.11.4-eksbuild.22"
    assert deployment["status"]["readyReplicas"] == 2
    assert deployment["status"]["observedGeneration"] == deployment["metadata"]["generation"]
    assert len(store.list("Pod", "kube-system", labels={"k8s-app": "kube-dns"})) == 2


def test_daemonsets_run_one_pod_per_node(clock: FakeClock) -> None:
    sim = EksSimulator(clock)
    store = _add_cluster(sim, clock, "dev", "1.31")
    for i in range(4):
        store.put({"kind": "Node", "metadata": {"name": f"ip-10-0-0-{i}.eu-west-1.compute.internal"}})

    sim.install_addon("dev", "vpc-cni", "v1.19.2-eksbuild.5")

    aws_node = store.get("DaemonSet", "kube-system", "aws-node")
    pods = store.list("Pod", "kube-system", labels={"k8s-app": "aws-node"})
    assert aws_node is not None and aws_node["status"]["desiredNumberScheduled"] == 4
    assert aws_node["status"]["numberReady"] == 4
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(
        n["metadata"]["name"] for n in store.list("Node")
    )
    containers = {c["name"]: c for c in aws_node["spec"]["template"]["spec"]["containers"]}
    assert set(containers) == {"aws-node", "aws-eks-nodeagent"}
    assert {"name": "WARM_ENI_TARGET", "value": "1"} in containers["aws-node"]["env"]


def test_ebs_csi_driver_runs_a_controller_deployment_and_a_node_daemonset(clock: FakeClock) -> None:
    sim = EksSimulator(clock)
    store = _add_cluster(sim, clock, "dev", "1.31")
    for i in range(4):
        store.put({"kind": "Node", "metadata": {"name": f"ip-10-0-0-{i}.eu-west-1.compute.internal"}})

    sim.install_addon("dev", "aws-ebs-csi-driver", "v1.35.0-eksbuild.1")

    controller = store.get("Deployment", "kube-system", "ebs-csi-controller")
    node = store.get("DaemonSet", "kube-system", "ebs-csi-node")
    assert controller is not None and node is not None
    for workload in (controller, node):
        selector = workload["spec"]["selector"]["matchLabels"]
        template_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= template_labels.items()
        (plugin,) = workload["spec"]["template"]["spec"]["containers"]
        assert plugin["image"] == f"{ECR}/eks/aws-ebs-csi-driver:v1.35.0-eksbuild.1"
    assert controller["spec"]["replicas"] == 2
    assert controller["spec"]["template"]["spec"]["serviceAccountName"] == "ebs-csi-controller-sa"
    assert controller["status"]["readyReplicas"] == 2
    assert node["status"]["desiredNumberScheduled"] == node["status"]["numberReady"] == 4
    assert len(store.list("Pod", "kube-system", labels={"app": "ebs-csi-controller"})) == 2
    node_pods = store.list("Pod", "kube-system", labels={"app": "ebs-csi-node"})
    assert sorted(p["spec"]["nodeName"] for p in node_pods) == sorted(
        n["metadata"]["name"] for n in store.list("Node")
    )


def test_pod_identity_agent_runs_a_host_network_daemonset(sim: EksSimulator) -> None:
    store = sim.store_of("dev")

    agent = store.get("DaemonSet", "kube-system", "eks-pod-identity-agent")

    assert agent is not None
    pod_spec = agent["spec"]["template"]["spec"]
    assert pod_spec["hostNetwork"] is True
    assert (
        agent["spec"]["selector"]["matchLabels"].items()
        <= agent["spec"]["template"]["metadata"]["labels"].items()
    )
    (container,) = pod_spec["containers"]
    assert container["image"] == f"{ECR}/eks/eks-pod-identity-agent:v1.2.0-eksbuild.1"
    assert container["args"][container["args"].index("--cluster-name") + 1] == "dev"
    assert agent["status"]["numberReady"] == agent["status"]["desiredNumberScheduled"] == 3
    pods = store.list("Pod", "kube-system", labels={ADDON_NAME_LABEL: "eks-pod-identity-agent"})
    assert len(pods) == 3


def test_simulated_addon_objects_are_the_ones_the_product_reads() -> None:
    product = {
        name: tuple((o.kind, o.namespace, o.name) for o in objects)
        for name, objects in product_addons.ADDON_OBJECTS.items()
    }

    assert product == ADDON_OBJECTS


# ---- UpdateAddon validation -----------------------------------------------------------------------


def test_incompatible_or_unknown_version_is_refused_synchronously(sim: EksSimulator) -> None:
    for version in ("v1.32.9-eksbuild.2", "v1.31.99-eksbuild.1"):
        error = _api_error(
            sim, "UpdateAddon", {"clusterName": "dev", "addonName": "kube-proxy", "addonVersion": version}
        )
        assert (error.code, error.message, error.status) == (
            "InvalidParameterException",
            "Addon version specified is not supported",
            400,
        )
    assert _describe_addon(sim, "kube-proxy")["status"] == "ACTIVE"


def test_addon_not_installed_is_not_found(sim: EksSimulator) -> None:
    error = _api_error(sim, "UpdateAddon", {"clusterName": "dev", "addonName": "snapshot-controller"})

    assert (error.code, error.status) == ("ResourceNotFoundException", 404)


def test_vpc_cni_moves_one_minor_at_a_time(clock: FakeClock) -> None:
    sim = EksSimulator(clock)
    _add_cluster(sim, clock, "dev", "1.29")
    sim.install_addon("dev", "vpc-cni", "v1.17.1-eksbuild.1")

    two_minors_up = _api_error(
        sim,
        "UpdateAddon",
        {"clusterName": "dev", "addonName": "vpc-cni", "addonVersion": "v1.19.2-eksbuild.5"},
    )
    one_minor_up = _update(sim, "vpc-cni", addonVersion="v1.18.3-eksbuild.1")
    clock.advance(150)
    one_minor_down = _update(sim, "vpc-cni", addonVersion="v1.17.1-eksbuild.1")

    assert two_minors_up.code == "InvalidParameterException"
    assert two_minors_up.message == "Updating VPC-CNI can only go up or down 1 minor version at a time"
    assert one_minor_up["status"] == "InProgress"
    assert one_minor_down["status"] == "InProgress"


def _catalog_with_extra_version(addon_name: str, addon_version: str, kubernetes: str) -> AddonCatalog:
    catalog = default_addon_catalog()
    entry = catalog.addons[addon_name]
    extra = AddonVersion(addon_version, (Compatibility(kubernetes, ("*",), False),), False)
    versions = sorted(
        (*entry.versions, extra), key=lambda v: parse_addon_version(v.addon_version), reverse=True
    )
    addons = {**catalog.addons, addon_name: dataclasses.replace(entry, versions=tuple(versions))}
    return AddonCatalog(addons=addons, sources=catalog.sources, retrieved=catalog.retrieved)


def test_pod_identity_agent_moves_one_minor_at_a_time(clock: FakeClock) -> None:
    # No two observed agent versions are two minors apart, so this test adds a hypothetical v1.4.0
    # build to its own copy of the catalogue; the repository's catalogue does not contain it.
    sim = EksSimulator(
        clock, _catalog_with_extra_version("eks-pod-identity-agent", "v1.4.0-eksbuild.1", "1.31")
    )
    _add_cluster(sim, clock, "dev", "1.31")
    sim.install_addon("dev", "eks-pod-identity-agent", "v1.2.0-eksbuild.1")

    two_minors_up = _api_error(
        sim,
        "UpdateAddon",
        {"clusterName": "dev", "addonName": "eks-pod-identity-agent", "addonVersion": "v1.4.0-eksbuild.1"},
    )
    one_minor_up = _update(sim, "eks-pod-identity-agent", addonVersion="v1.3.9-eksbuild.3")

    assert (two_minors_up.code, two_minors_up.status) == ("InvalidParameterException", 400)
    assert two_minors_up.message == (
        "Updating eks-pod-identity-agent can only go up or down 1 minor version at a time"
    )
    assert one_minor_up["status"] == "InProgress"


def test_second_update_while_one_is_in_progress_is_refused(sim: EksSimulator, clock: FakeClock) -> None:
    _update(sim, "coredns", addonVersion="v1.11.4-eksbuild.24")

    error = _api_error(sim, "UpdateAddon", {"clusterName": "dev", "addonName": "coredns"})
    clock.advance(90)
    accepted = _update(sim, "coredns", addonVersion="v1.11.4-eksbuild.22")

    assert (error.code, error.status) == ("ResourceInUseException", 409)
    assert "currently has update" in error.message
    assert accepted["status"] == "InProgress"


def test_client_request_token_makes_update_addon_idempotent(sim: EksSimulator) -> None:
    params = {
        "addonVersion": "v1.11.4-eksbuild.24",
        "resolveConflicts": "PRESERVE",
        "clientRequestToken": "exec-1",
    }

    first = _update(sim, "coredns", **params)
    retried = _update(sim, "coredns", **params)
    reused_for_other_params = _api_error(
        sim,
        "UpdateAddon",
        {
            "clusterName": "dev",
            "addonName": "coredns",
            "addonVersion": "v1.11.4-eksbuild.2",
            "clientRequestToken": "exec-1",
        },
    )

    assert retried["id"] == first["id"]
    assert sim.call("ListUpdates", {"name": "dev", "addonName": "coredns"})["updateIds"] == [first["id"]]
    assert reused_for_other_params.code == "InvalidParameterException"


def test_update_response_lists_the_requested_params(sim: EksSimulator) -> None:
    update = _update(
        sim,
        "coredns",
        addonVersion="v1.11.4-eksbuild.24",
        resolveConflicts="OVERWRITE",
        configurationValues="{}",
    )

    assert update["type"] == "AddonUpdate" and update["errors"] == []
    assert update["params"] == [
        {"type": "AddonVersion", "value": "v1.11.4-eksbuild.24"},
        {"type": "ResolveConflicts", "value": "OVERWRITE"},
        {"type": "ConfigurationValues", "value": "{}"},
    ]
    assert re.fullmatch(r"[0-9a-f-]{36}", update["id"])


# ---- time ---------------------------------------------------------------------------------------


def test_update_takes_simulated_time_and_finishes_when_read(sim: EksSimulator, clock: FakeClock) -> None:
    update = _update(sim, "coredns", addonVersion="v1.11.4-eksbuild.24")

    clock.advance(89)
    during = (_describe_update(sim, "coredns", update["id"]), _describe_addon(sim, "coredns"))
    clock.advance(1)
    after = (_describe_update(sim, "coredns", update["id"]), _describe_addon(sim, "coredns"))

    assert during[0]["status"] == "InProgress"
    assert (during[1]["status"], during[1]["addonVersion"]) == ("UPDATING", "v1.11.4-eksbuild.22")
    assert after[0]["status"] == "Successful"
    assert (after[1]["status"], after[1]["addonVersion"]) == ("ACTIVE", "v1.11.4-eksbuild.24")
    deployment = sim.store_of("dev").get("Deployment", "kube-system", "coredns")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.11.4-eksbuild.24")
    assert deployment["metadata"]["generation"] == 2
    assert deployment["status"]["updatedReplicas"] == deployment["status"]["readyReplicas"] == 2
    pods = sim.store_of("dev").list("Pod", "kube-system", labels={"k8s-app": "kube-dns"})
    assert [p["spec"]["containers"][0]["image"].rsplit(":", 1)[1] for p in pods] == [
        "v1.11.4-eksbuild.24"
    ] * 2


def test_ebs_csi_update_rolls_the_controller_and_the_node_plugin(sim: EksSimulator, clock: FakeClock) -> None:
    store = sim.store_of("dev")
    pods_before = {
        p["metadata"]["name"]
        for p in store.list("Pod", "kube-system", labels={ADDON_NAME_LABEL: "aws-ebs-csi-driver"})
    }

    update = _update(sim, "aws-ebs-csi-driver", addonVersion="v1.41.0-eksbuild.1")
    clock.advance(179)
    during = _describe_update(sim, "aws-ebs-csi-driver", update["id"])["status"]
    clock.advance(1)
    after = _describe_update(sim, "aws-ebs-csi-driver", update["id"])["status"]

    assert (during, after) == ("InProgress", "Successful")
    assert _describe_addon(sim, "aws-ebs-csi-driver")["addonVersion"] == "v1.41.0-eksbuild.1"
    store = sim.store_of("dev")
    controller = store.get("Deployment", "kube-system", "ebs-csi-controller")
    node = store.get("DaemonSet", "kube-system", "ebs-csi-node")
    assert controller is not None and node is not None
    assert controller["metadata"]["generation"] == node["metadata"]["generation"] == 2
    assert controller["status"]["updatedReplicas"] == controller["status"]["readyReplicas"] == 2
    assert node["status"]["updatedNumberScheduled"] == node["status"]["numberReady"] == 3
    pods = store.list("Pod", "kube-system", labels={ADDON_NAME_LABEL: "aws-ebs-csi-driver"})
    assert len(pods) == 5 and not pods_before & {p["metadata"]["name"] for p in pods}
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {
        f"{ECR}/eks/aws-ebs-csi-driver:v1.41.0-eksbuild.1"
    }


def test_pod_identity_agent_update_rolls_its_daemonset(sim: EksSimulator, clock: FakeClock) -> None:
    update = _update(sim, "eks-pod-identity-agent", addonVersion="v1.3.9-eksbuild.3")
    clock.advance(120)

    assert _describe_update(sim, "eks-pod-identity-agent", update["id"])["status"] == "Successful"
    store = sim.store_of("dev")
    agent = store.get("DaemonSet", "kube-system", "eks-pod-identity-agent")
    assert agent is not None
    assert agent["status"]["updatedNumberScheduled"] == agent["status"]["numberReady"] == 3
    pods = store.list("Pod", "kube-system", labels={ADDON_NAME_LABEL: "eks-pod-identity-agent"})
    assert [p["spec"]["containers"][0]["image"].rsplit(":", 1)[1] for p in pods] == ["v1.3.9-eksbuild.3"] * 3


def test_update_duration_fault_slows_updates(sim: EksSimulator, clock: FakeClock) -> None:
    sim.inject_fault("dev", "kube-proxy", {"type": "update_duration", "seconds": 600})
    update = _update(sim, "kube-proxy", addonVersion="v1.31.13-eksbuild.2")

    clock.advance(599)
    assert _describe_update(sim, "kube-proxy", update["id"])["status"] == "InProgress"
    clock.advance(1)
    assert _describe_update(sim, "kube-proxy", update["id"])["status"] == "Successful"


def test_describe_update_needs_the_addon_name(sim: EksSimulator) -> None:
    update = _update(sim, "coredns", addonVersion="v1.11.4-eksbuild.24")

    error = _api_error(sim, "DescribeUpdate", {"name": "dev", "updateId": update["id"]})

    assert (error.code, error.status) == ("ResourceNotFoundException", 404)


# ---- resolveConflicts -----------------------------------------------------------------------------


def test_preserve_keeps_the_customer_corefile_and_its_owner(sim: EksSimulator, clock: FakeClock) -> None:
    _edit_corefile(sim)

    update = _update(sim, "coredns", addonVersion="v1.11.4-eksbuild.24", resolveConflicts="PRESERVE")
    clock.advance(90)

    assert _describe_update(sim, "coredns", update["id"])["status"] == "Successful"
    store = sim.store_of("dev")
    assert "cache 15" in store.value("ConfigMap", "kube-system", "coredns", COREFILE)
    assert COREFILE in store.owners("ConfigMap", "kube-system", "coredns")["kubectl-edit"]
    assert _describe_addon(sim, "coredns")["addonVersion"] == "v1.11.4-eksbuild.24"


def test_overwrite_resets_the_corefile_to_the_eks_default(sim: EksSimulator, clock: FakeClock) -> None:
    _edit_corefile(sim)

    update = _update(sim, "coredns", addonVersion="v1.11.4-eksbuild.24", resolveConflicts="OVERWRITE")
    clock.advance(90)

    assert _describe_update(sim, "coredns", update["id"])["status"] == "Successful"
    store = sim.store_of("dev")
    assert store.value("ConfigMap", "kube-system", "coredns", COREFILE) == DEFAULT_COREFILE
    assert "kubectl-edit" not in store.owners("ConfigMap", "kube-system", "coredns")


@pytest.mark.parametrize("resolve_conflicts", ["NONE", None])
def test_none_fails_on_the_conflict_and_changes_nothing(
    sim: EksSimulator, clock: FakeClock, resolve_conflicts: str | None
) -> None:
    _edit_corefile(sim)
    params: dict[str, Any] = {"addonVersion": "v1.11.4-eksbuild.24"}
    if resolve_conflicts:
        params["resolveConflicts"] = resolve_conflicts

    update = _update(sim, "coredns", **params)
    clock.advance(90)

    described = _describe_update(sim, "coredns", update["id"])
    assert described["status"] == "Failed"
    (error,) = described["errors"]
    assert error["errorCode"] == "ConfigurationConflict"
    assert error["errorMessage"] == (
        "Conflicts found when trying to apply. Will not continue due to resolve conflicts mode. "
        "Conflicts: ConfigMap coredns - .data.Corefile"
    )
    addon = _describe_addon(sim, "coredns")
    assert (addon["status"], addon["addonVersion"]) == ("ACTIVE", "v1.11.4-eksbuild.22")
    store = sim.store_of("dev")
    assert "cache 15" in store.value("ConfigMap", "kube-system", "coredns", COREFILE)
    deployment = store.get("Deployment", "kube-system", "coredns")
    assert deployment is not None
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v1.11.4-eksbuild.22")
    assert sim.customer_edits[0].path == COREFILE


def test_none_without_customer_edits_succeeds(sim: EksSimulator, clock: FakeClock) -> None:
    update = _update(sim, "vpc-cni", addonVersion="v1.20.1-eksbuild.3", resolveConflicts="NONE")
    clock.advance(150)

    assert _describe_update(sim, "vpc-cni", update["id"])["status"] == "Successful"
    aws_node = sim.store_of("dev").get("DaemonSet", "kube-system", "aws-node")
    assert aws_node is not None
    images = [c["image"] for c in aws_node["spec"]["template"]["spec"]["containers"]]
    assert images[0].endswith("/amazon-k8s-cni:v1.20.1-eksbuild.3")


# ---- configurationValues --------------------------------------------------------------------------


def test_configuration_values_outside_the_schema_are_refused(sim: EksSimulator) -> None:
    error = _api_error(
        sim,
        "UpdateAddon",
        {"clusterName": "dev", "addonName": "vpc-cni", "configurationValues": '{"nodeSelector": {"a": "b"}}'},
    )
    wrong_type = _api_error(
        sim,
        "UpdateAddon",
        {"clusterName": "dev", "addonName": "coredns", "configurationValues": "replicaCount: two"},
    )

    assert error.code == "InvalidParameterException"
    assert error.message == (
        "ConfigurationValue provided in request is not supported: Json schema validation failed with error: "
        "[$.nodeSelector: is not defined in the schema and the schema does not allow additional properties]"
    )
    assert wrong_type.message.endswith("[$.replicaCount: string found, integer expected]")
    assert sim.call("ListUpdates", {"name": "dev", "addonName": "vpc-cni"})["updateIds"] == []


def test_configuration_values_are_applied_kept_and_reset(sim: EksSimulator, clock: FakeClock) -> None:
    _update(sim, "coredns", configurationValues="replicaCount: 3\n", resolveConflicts="OVERWRITE")
    clock.advance(90)
    store = sim.store_of("dev")  # finalises the due update
    replicas_configured = store.value("Deployment", "kube-system", "coredns", ("spec", "replicas"))
    pods_configured = len(store.list("Pod", "kube-system", labels={"k8s-app": "kube-dns"}))

    _update(sim, "coredns", addonVersion="v1.11.4-eksbuild.24")
    clock.advance(90)
    replicas_after_version_update = sim.store_of("dev").value(
        "Deployment", "kube-system", "coredns", ("spec", "replicas")
    )

    _update(sim, "coredns", configurationValues="{}")
    clock.advance(90)
    replicas_reset = sim.store_of("dev").value("Deployment", "kube-system", "coredns", ("spec", "replicas"))

    assert (replicas_configured, pods_configured) == (3, 3)
    assert replicas_after_version_update == 3
    assert replicas_reset == 2
    assert _describe_addon(sim, "coredns")["configurationValues"] == "{}"


def test_ebs_csi_and_pod_identity_configuration_values_are_applied(
    sim: EksSimulator, clock: FakeClock
) -> None:
    ebs_values = json.dumps(
        {
            "controller": {"replicaCount": 3, "tolerations": [{"key": "storage", "operator": "Exists"}]},
            "node": {"resources": {"requests": {"cpu": "20m"}}},
            "defaultStorageClass": {"enabled": True},
        }
    )
    agent_values = "agent:\n  additionalArgs:\n    '-b': 169.254.170.23\n"

    _update(sim, "aws-ebs-csi-driver", configurationValues=ebs_values)
    _update(sim, "eks-pod-identity-agent", configurationValues=agent_values)
    clock.advance(180)
    store = sim.store_of("dev")

    controller = store.get("Deployment", "kube-system", "ebs-csi-controller")
    node = store.get("DaemonSet", "kube-system", "ebs-csi-node")
    agent = store.get("DaemonSet", "kube-system", "eks-pod-identity-agent")
    assert controller is not None and node is not None and agent is not None
    assert controller["spec"]["replicas"] == 3
    assert controller["spec"]["template"]["spec"]["tolerations"] == [{"key": "storage", "operator": "Exists"}]
    assert len(store.list("Pod", "kube-system", labels={"app": "ebs-csi-controller"})) == 3
    assert node["spec"]["template"]["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "20m"}}
    assert agent["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == ["-b", "169.254.170.23"]


def test_default_storage_class_is_in_the_schema_from_ebs_csi_v1_31(sim: EksSimulator) -> None:
    def properties(version: str) -> dict[str, Any]:
        response = sim.call(
            "DescribeAddonConfiguration", {"addonName": "aws-ebs-csi-driver", "addonVersion": version}
        )
        return dict(
            json.loads(response["configurationSchema"])["definitions"]["AwsEbsCsiDriver"]["properties"]
        )

    error = _api_error(
        sim,
        "UpdateAddon",
        {
            "clusterName": "dev",
            "addonName": "aws-ebs-csi-driver",
            "addonVersion": "v1.29.1-eksbuild.1",
            "configurationValues": '{"defaultStorageClass": {"enabled": true}}',
        },
    )

    assert "defaultStorageClass" in properties("v1.35.0-eksbuild.1")
    assert set(properties("v1.29.1-eksbuild.1")) == {"controller", "node"}
    assert error.message.endswith(
        "[$.defaultStorageClass: is not defined in the schema and the schema does not allow additional "
        "properties]"
    )


# ---- faults ---------------------------------------------------------------------------------------


def test_injected_update_failure_keeps_the_old_version(sim: EksSimulator, clock: FakeClock) -> None:
    sim.inject_fault(
        "dev",
        "coredns",
        {
            "type": "update_fails",
            "toVersion": "v1.11.4-eksbuild.24",
            "errorCode": "InsufficientNumberOfReplicas",
            "message": "The add-on is unhealthy because it doesn't have the desired number of replicas.",
        },
    )

    update = _update(sim, "coredns", addonVersion="v1.11.4-eksbuild.24", resolveConflicts="OVERWRITE")
    clock.advance(90)
    described = _describe_update(sim, "coredns", update["id"])
    after_failure = _describe_addon(sim, "coredns")
    retry = _update(sim, "coredns", addonVersion="v1.11.4-eksbuild.24", resolveConflicts="OVERWRITE")
    clock.advance(90)

    assert described["status"] == "Failed"
    assert described["errors"][0]["errorCode"] == "InsufficientNumberOfReplicas"
    assert (after_failure["status"], after_failure["addonVersion"]) == ("ACTIVE", "v1.11.4-eksbuild.22")
    assert sim.addon_state("dev", "coredns")["version"] == "v1.11.4-eksbuild.24"
    assert _describe_update(sim, "coredns", retry["id"])["status"] == "Successful"


def test_pods_never_ready_leaves_the_workload_unready_until_another_version(
    sim: EksSimulator, clock: FakeClock
) -> None:
    sim.inject_fault("dev", "kube-proxy", {"type": "pods_never_ready", "toVersion": "v1.31.13-eksbuild.2"})
    store = sim.store_of("dev")

    update = _update(sim, "kube-proxy", addonVersion="v1.31.13-eksbuild.2", resolveConflicts="OVERWRITE")
    clock.advance(120)
    described = _describe_update(sim, "kube-proxy", update["id"])
    stuck = store.get("DaemonSet", "kube-system", "kube-proxy")
    stuck_pods = store.list("Pod", "kube-system", labels={"k8s-app": "kube-proxy"})

    _update(sim, "kube-proxy", addonVersion="v1.31.10-eksbuild.8", resolveConflicts="OVERWRITE")
    clock.advance(120)
    # Updates finish lazily: store_of finalises the due update before handing out the store.
    recovered = sim.store_of("dev").get("DaemonSet", "kube-system", "kube-proxy")

    assert described["status"] == "Successful"
    assert stuck is not None and recovered is not None
    assert stuck["status"]["desiredNumberScheduled"] == 3
    assert stuck["status"]["numberReady"] < stuck["status"]["desiredNumberScheduled"]
    assert all(
        c["status"] == "False"
        for pod in stuck_pods
        for c in pod["status"]["conditions"]
        if c["type"] == "Ready"
    )
    assert recovered["status"]["numberReady"] == recovered["status"]["desiredNumberScheduled"] == 3
    assert sim.addon_state("dev", "kube-proxy")["pods_ready"] is True


def test_every_call_is_counted_and_logged(sim: EksSimulator) -> None:
    sim.call("ListAddons", {"clusterName": "dev"})
    sim.call("DescribeAddon", {"clusterName": "dev", "addonName": "coredns"})
    sim.call("DescribeAddon", {"clusterName": "dev", "addonName": "vpc-cni"})

    assert sim.calls == Counter({"DescribeAddon": 2, "ListAddons": 1})
    assert sim.call_log[-1] == ("DescribeAddon", {"clusterName": "dev", "addonName": "vpc-cni"})


def test_an_operation_the_simulator_does_not_offer_is_an_error_not_an_answer(sim: EksSimulator) -> None:
    with pytest.raises(EksApiError) as raised:
        sim.call("DeleteCluster", {"name": "dev"})

    assert raised.value.code == "UnsupportedOperation"
    assert "DeleteCluster" in raised.value.message
