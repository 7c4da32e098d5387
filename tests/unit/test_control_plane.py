"""Control-plane upgrades one minor version (a hop) at a time: preflight checks, apply, verify, the
add-on and node group steps of a hop, and what people read about it (FIDELITY §3).

Driven through in-memory fakes of EKS (`FakeEks`) and of the Kubernetes reader (`FakeKube`) that
answer the calls the logic makes, with real version strings.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from autopatch import clock
from autopatch.logic.addon_update import request_token
from autopatch.logic.control_plane import apply_hop, preflight_hop, recheck_hop, verify_hop
from autopatch.logic.upgrade import close_hop, finish_hop, fold_child, next_child, plan_addons
from autopatch.messages import SECTION_LIMIT, hop_lines, operation_blocks, plain_text, support_line
from autopatch.models import (
    Approval,
    Check,
    ClusterRef,
    Component,
    NodegroupPlan,
    Operation,
)
from autopatch.policy import ClusterPolicy, parse_policy

from tests.conftest import FakeClock

ACCOUNT = "111122223333"
REGION = "eu-west-1"
CLUSTER = "prod"
CONSOLE = "https://console.aws.amazon.com/states/home"
LONG_ID = "prod-control-plane-1-31-eos-2026-03-02T09-00-00Z-4f1c2a9e-77b0-4d51-a3c2-9b8e11d0c6f5"
ONE_ZONE_DATE = date(2024, 3, 1)  # when 1.24 was in extended support and 1.25/1.26 in standard
TODAY = date(2026, 3, 2)  # the fake clock's day

# EKS release calendar (scenarios/data/kubernetes_versions.json): release, end of standard support,
# end of extended support.
CALENDAR: dict[str, tuple[str, str, str]] = {
    "1.23": ("2022-08-11", "2023-10-11", "2024-10-11"),
    "1.24": ("2022-11-15", "2024-01-31", "2025-01-31"),
    "1.25": ("2023-02-22", "2024-05-01", "2025-05-01"),
    "1.26": ("2023-04-11", "2024-06-11", "2025-06-11"),
    "1.27": ("2023-05-24", "2024-07-24", "2025-07-24"),
    "1.28": ("2023-09-26", "2024-11-26", "2025-11-26"),
    "1.29": ("2024-01-23", "2025-03-23", "2026-03-23"),
    "1.30": ("2024-05-23", "2025-07-23", "2026-07-23"),
    "1.31": ("2024-09-26", "2025-11-26", "2026-11-26"),
    "1.32": ("2025-01-23", "2026-03-23", "2027-03-23"),
    "1.33": ("2025-05-29", "2026-07-29", "2027-07-29"),
}


def _span(first: str, last: str) -> list[str]:
    a, b = int(first.split(".")[1]), int(last.split(".")[1])
    return [f"1.{n}" for n in range(a, b + 1)]


# DescribeAddonVersions: add-on -> [(version, Kubernetes versions it is compatible with)].
ADDON_CATALOGUE: dict[str, list[tuple[str, list[str]]]] = {
    "vpc-cni": [
        ("v1.17.1-eksbuild.1", _span("1.23", "1.29")),
        ("v1.18.3-eksbuild.1", _span("1.23", "1.30")),
        ("v1.19.0-eksbuild.1", _span("1.24", "1.31")),
    ],
    "kube-proxy": [
        ("v1.29.15-eksbuild.16", ["1.29"]),
        ("v1.30.6-eksbuild.3", ["1.30"]),
        ("v1.30.14-eksbuild.8", ["1.30"]),
        ("v1.31.10-eksbuild.12", ["1.31"]),
    ],
    "coredns": [
        ("v1.11.1-eksbuild.9", ["1.29", "1.30"]),
        ("v1.11.4-eksbuild.24", _span("1.29", "1.32")),
    ],
}

# What the API server serves: (group/version, plural, kind, first served, removed in).
API_RESOURCES: list[tuple[str, str, str, str, str | None]] = [
    ("v1", "secrets", "Secret", "1.0", None),
    ("v1", "configmaps", "ConfigMap", "1.0", None),
    ("apps/v1", "deployments", "Deployment", "1.9", None),
    ("batch/v1", "jobs", "Job", "1.2", None),
    ("batch/v1", "cronjobs", "CronJob", "1.21", None),
    ("batch/v1", "cronjobs/status", "CronJob", "1.21", None),
    ("batch/v1beta1", "cronjobs", "CronJob", "1.8", "1.25"),
    ("batch/v1beta1", "cronjobs/status", "CronJob", "1.8", "1.25"),
    ("policy/v1", "poddisruptionbudgets", "PodDisruptionBudget", "1.21", None),
    ("policy/v1beta1", "poddisruptionbudgets", "PodDisruptionBudget", "1.5", "1.25"),
    ("policy/v1beta1", "podsecuritypolicies", "PodSecurityPolicy", "1.10", "1.25"),
    ("autoscaling/v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", "1.23", None),
    ("autoscaling/v2beta1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", "1.8", "1.25"),
    ("autoscaling/v2beta2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", "1.12", "1.26"),
    ("discovery.k8s.io/v1", "endpointslices", "EndpointSlice", "1.21", None),
    ("discovery.k8s.io/v1beta1", "endpointslices", "EndpointSlice", "1.17", "1.25"),
    ("events.k8s.io/v1", "events", "Event", "1.19", None),
    ("events.k8s.io/v1beta1", "events", "Event", "1.8", "1.25"),
    ("node.k8s.io/v1", "runtimeclasses", "RuntimeClass", "1.20", None),
    ("node.k8s.io/v1beta1", "runtimeclasses", "RuntimeClass", "1.14", "1.25"),
    ("flowcontrol.apiserver.k8s.io/v1", "flowschemas", "FlowSchema", "1.29", None),
    ("flowcontrol.apiserver.k8s.io/v1beta3", "flowschemas", "FlowSchema", "1.26", "1.32"),
    ("flowcontrol.apiserver.k8s.io/v1beta2", "flowschemas", "FlowSchema", "1.23", "1.29"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "flowschemas", "FlowSchema", "1.20", "1.26"),
    ("storage.k8s.io/v1", "csistoragecapacities", "CSIStorageCapacity", "1.24", None),
    ("storage.k8s.io/v1beta1", "csistoragecapacities", "CSIStorageCapacity", "1.21", "1.27"),
    ("admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration",
     "1.16", None),
    ("admissionregistration.k8s.io/v1", "validatingadmissionpolicies", "ValidatingAdmissionPolicy", "1.30",
     None),
]  # fmt: skip


def _minor(version: str) -> tuple[int, int]:
    major, minor = re.match(r"v?(\d+)\.(\d+)", version).groups()  # type: ignore[union-attr]
    return int(major), int(minor)


def _version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes discovery order: GA before beta before alpha, newer first."""
    major, stage, number = re.match(r"v(\d+)(alpha|beta)?(\d*)", version).groups()  # type: ignore[union-attr]
    rank = {None: 2, "beta": 1, "alpha": 0}[stage]
    return (-rank, -int(major), -int(number or 0))


# ---- fakes -------------------------------------------------------------------------------------
class FakeEks:
    """The EKS calls the control-plane logic makes, answered from memory and recorded."""

    def __init__(
        self,
        *,
        version: str,
        as_of: date = TODAY,
        status: str = "ACTIVE",
        support_type: str = "EXTENDED",
        nodegroups: list[dict[str, Any]] | None = None,
        addons: dict[str, str] | None = None,
        insights: list[dict[str, Any]] | None = None,
        subnet_ids: tuple[str, ...] = ("subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"),
    ) -> None:
        self.cluster: dict[str, Any] = {
            "name": CLUSTER,
            "arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}",
            "version": version,
            "status": status,
            "platformVersion": "eks.12",
            "upgradePolicy": {"supportType": support_type},
            "resourcesVpcConfig": {"subnetIds": list(subnet_ids), "vpcId": "vpc-0f1e2d3c4b5a69788"},
        }
        self.as_of = as_of
        self.nodegroups = {ng["nodegroupName"]: ng for ng in nodegroups or []}
        self.addons = {
            name: {"addonName": name, "addonVersion": v, "status": "ACTIVE", "health": {"issues": []}}
            for name, v in (addons or {}).items()
        }
        self.insights = list(insights or [])
        self.calls: list[tuple[Any, ...]] = []
        self.updates: dict[str, dict[str, Any]] = {}

    # cluster
    def describe_cluster(self, name: str) -> dict[str, Any]:
        assert name == CLUSTER
        self.calls.append(("describe_cluster", name))
        return json.loads(json.dumps(self.cluster))

    def cluster_versions(self, versions: list[str] | None = None) -> dict[str, dict[str, Any]]:
        self.calls.append(("cluster_versions", tuple(versions or ())))
        found = {}
        for version, (released, standard, extended) in CALENDAR.items():
            if date.fromisoformat(released) > self.as_of or (
                versions is not None and version not in versions
            ):
                continue
            if self.as_of < date.fromisoformat(standard):
                status = "STANDARD_SUPPORT"
            elif self.as_of < date.fromisoformat(extended):
                status = "EXTENDED_SUPPORT"
            else:
                status = "UNSUPPORTED"
            found[version] = {
                "clusterVersion": version,
                "clusterType": "eks",
                "releaseDate": datetime.fromisoformat(released).replace(tzinfo=UTC),
                "endOfStandardSupportDate": datetime.fromisoformat(standard).replace(tzinfo=UTC),
                "endOfExtendedSupportDate": datetime.fromisoformat(extended).replace(tzinfo=UTC),
                "versionStatus": status,
            }
        return found

    def update_cluster_version(self, cluster: str, version: str, *, token: str) -> dict[str, Any]:
        self.calls.append(("update_cluster_version", cluster, version, token))
        update = {
            "id": f"9f1b3c4d-{len(self.updates):04d}-4e5f-8a9b-0c1d2e3f4a5b",
            "type": "VersionUpdate",
            "status": "InProgress",
            "params": [{"type": "Version", "value": version}],
            "errors": [],
        }
        self.updates[update["id"]] = update
        self.cluster["status"] = "UPDATING"
        return dict(update)

    def complete_update(self, update_id: str) -> None:
        """What EKS does a few minutes later."""
        update = self.updates[update_id]
        update["status"] = "Successful"
        self.cluster["version"] = update["params"][0]["value"]
        self.cluster["status"] = "ACTIVE"

    def describe_update(self, cluster: str, update_id: str, **_: Any) -> dict[str, Any]:
        return dict(self.updates[update_id])

    # insights
    def list_insights(self, cluster: str, *, category: str, kubernetes_version: str) -> list[dict[str, Any]]:
        self.calls.append(("list_insights", category, kubernetes_version))
        summary_keys = ("id", "name", "category", "kubernetesVersion", "lastRefreshTime", "insightStatus")
        return [
            {k: i[k] for k in summary_keys if k in i}
            for i in self.insights
            if i["category"] == category and i["kubernetesVersion"] == kubernetes_version
        ]

    def describe_insight(self, cluster: str, insight_id: str) -> dict[str, Any] | None:
        self.calls.append(("describe_insight", insight_id))
        return next((dict(i) for i in self.insights if i["id"] == insight_id), None)

    # node groups
    def list_nodegroups(self, cluster: str) -> list[str]:
        return sorted(self.nodegroups)

    def describe_nodegroup(self, cluster: str, nodegroup: str) -> dict[str, Any] | None:
        found = self.nodegroups.get(nodegroup)
        return dict(found) if found else None

    # add-ons
    def list_addons(self, cluster: str) -> list[str]:
        return sorted(self.addons)

    def describe_addon(self, cluster: str, addon: str) -> dict[str, Any] | None:
        found = self.addons.get(addon)
        return json.loads(json.dumps(found)) if found else None

    def addon_versions(self, addon: str, kubernetes_version: str) -> list[dict[str, Any]]:
        self.calls.append(("addon_versions", addon, kubernetes_version))
        return [
            {
                "addonVersion": version,
                "architecture": ["amd64", "arm64"],
                "compatibilities": [
                    {"clusterVersion": k, "platformVersions": ["*"], "defaultVersion": False}
                    for k in compatible
                ],
            }
            for version, compatible in ADDON_CATALOGUE.get(addon, [])
            if kubernetes_version in compatible
        ]

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]


class FakeKube:
    """The Kubernetes reader: served APIs follow the control plane's version in `eks`."""

    def __init__(
        self,
        eks: FakeEks,
        *,
        nodes: list[dict[str, Any]] | None = None,
        objects: dict[tuple[str, str], list[dict[str, Any]]] | None = None,
        deployments: list[dict[str, Any]] | None = None,
    ) -> None:
        self.eks = eks
        self.nodes = list(nodes or [])
        self.objects = dict(objects or {})  # (group, plural) -> objects, whatever version serves them
        self.deployments = list(deployments or [])
        self.asked: list[tuple[str, ...]] = []

    @property
    def version(self) -> tuple[int, int]:
        return _minor(str(self.eks.cluster["version"]))

    def _served(self, group_version: str) -> list[tuple[str, str]]:
        return [
            (plural, kind)
            for gv, plural, kind, since, removed in API_RESOURCES
            if gv == group_version
            and _minor(since) <= self.version
            and (removed is None or self.version < _minor(removed))
        ]

    def served_group_versions(self) -> dict[str, list[str]]:
        self.asked.append(("served_group_versions",))
        groups: dict[str, set[str]] = {}
        for gv, *_ in API_RESOURCES:
            if self._served(gv):
                group, _, version = gv.rpartition("/")
                groups.setdefault(group, set()).add(version)
        return {g: sorted(v, key=_version_priority) for g, v in groups.items()}

    def resources_of(self, group_version: str) -> list[dict[str, Any]]:
        self.asked.append(("resources_of", group_version))
        return [
            {"name": plural, "kind": kind, "namespaced": True, "verbs": ["get", "list"]}
            for plural, kind in self._served(group_version)
        ]

    def iter_path(self, group_version: str, plural: str) -> Iterator[dict[str, Any]]:
        self.asked.append(("iter_path", group_version, plural))
        if not any(p == plural for p, _ in self._served(group_version)):
            raise AssertionError(f"{group_version}/{plural} is not served at {self.version}")
        group = group_version.rpartition("/")[0]
        for obj in self.objects.get((group, plural), []):
            yield {**json.loads(json.dumps(obj)), "apiVersion": group_version}

    def list(self, kind: str, namespace: str | None = None, **_: Any) -> list[dict[str, Any]]:
        self.asked.append(("list", kind))
        if kind == "Deployment":
            return [json.loads(json.dumps(d)) for d in self.deployments]
        return []

    def list_nodes(self, label_selector: str | None = None) -> list[dict[str, Any]]:
        self.asked.append(("list_nodes",))
        return [json.loads(json.dumps(n)) for n in self.nodes]

    def server_version(self) -> str:
        self.asked.append(("server_version",))
        return f"v{self.version[0]}.{self.version[1]}.9-eks-4f3a1b2"

    def touched_secrets(self) -> bool:
        return any("secret" in part.lower() for call in self.asked for part in call)


def subnet(subnet_id: str, zone: str, free: int) -> dict[str, Any]:
    return {"SubnetId": subnet_id, "AvailabilityZone": zone, "AvailableIpAddressCount": free}


class Subnets:
    """DescribeSubnets for the cluster's subnets."""

    def __init__(self, subnets: list[dict[str, Any]] | None = None) -> None:
        self.subnets = (
            subnets
            if subnets is not None
            else [
                subnet("subnet-0a1b2c3d4e5f60001", "eu-west-1a", 240),
                subnet("subnet-0a1b2c3d4e5f60002", "eu-west-1b", 233),
            ]
        )  # fmt: skip
        self.asked: list[tuple[str, list[str]]] = []

    def __call__(self, region: str, ids: list[str]) -> list[dict[str, Any]]:
        self.asked.append((region, list(ids)))
        return [dict(s) for s in self.subnets]


# ---- builders ----------------------------------------------------------------------------------
def nodegroup(
    name: str, version: str, *, ami: str = "AL2023_x86_64_STANDARD", release: str | None = None
) -> dict[str, Any]:
    return {
        "nodegroupName": name,
        "clusterName": CLUSTER,
        "version": version,
        "releaseVersion": release
        or {"1.29": "1.29.15-20251209", "1.30": "1.30.14-20251209"}.get(version, f"{version}.9-20251209"),
        "amiType": ami,
        "status": "ACTIVE",
        "capacityType": "ON_DEMAND",
        "scalingConfig": {"minSize": 2, "maxSize": 6, "desiredSize": 3},
        "updateConfig": {"maxUnavailable": 1},
    }


def node(name: str, kubelet: str, *, nodegroup_name: str | None = None, ready: bool = True) -> dict[str, Any]:
    labels = {"kubernetes.io/os": "linux", "topology.kubernetes.io/zone": "eu-west-1a"}
    if nodegroup_name:
        labels["eks.amazonaws.com/nodegroup"] = nodegroup_name
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {
            "nodeInfo": {"kubeletVersion": kubelet, "containerRuntimeVersion": "containerd://1.7.27"},
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def last_applied(api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    applied = {"apiVersion": api_version, "kind": kind, "metadata": meta}
    return {
        "kind": kind,
        "metadata": {
            **meta,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied) + "\n"},
        },
    }


def autoscaler(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "cluster-autoscaler", "namespace": "kube-system"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "cluster-autoscaler", "image": image},
                        {"name": "metrics", "image": "public.ecr.aws/eks-distro/kubernetes/pause:3.9"},
                    ]
                }
            }
        },
    }


def upgrade_operation(
    current: str,
    target: str,
    *,
    op_id: str = "prod-control-plane-1-31-eos-7d2c",
    approval: bool = False,
) -> Operation:
    """As `validate_event` builds it from an End Of Support Approaching event."""
    op = Operation(
        id=op_id,
        executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:autopatch-cluster-upgrade:{op_id}",
        eventId="c0a4e0b2-6f0e-4b7e-9a51-0d8e7b3f4c21",
        cluster=ClusterRef(name=CLUSTER, accountId=ACCOUNT, region=REGION),
        component=Component(kind="control-plane", name="control-plane"),
        fromVersion=current,
        toVersion=target,
        detectedAt=datetime(2026, 3, 2, 8, 55, tzinfo=UTC),
        startedAt=clock.now(),
        deadline=datetime(2026, 3, 23, tzinfo=UTC),
    )
    op.approval.required = approval
    op.approval.timeoutSeconds = 4 * 3600
    op.rollbackOnFailure = True
    op.lockWaitBudget = 6 * 3600
    op.resolveConflicts = "PRESERVE"
    return op


def preflight(
    op: Operation,
    eks: FakeEks,
    kube: FakeKube,
    *,
    subnets: Subnets | None = None,
    policy: ClusterPolicy | None = None,
) -> Operation:
    return preflight_hop(op, eks=eks, kube=kube, subnets=subnets or Subnets(), policy=policy)


def check(op: Operation, name: str) -> Check:
    hop = op.hop
    assert hop is not None
    found = [c for c in hop.checks if c.name == name]
    assert len(found) == 1, [c.name for c in hop.checks]
    return found[0]


def failed_checks(op: Operation) -> list[str]:
    return [c.name for c in op.checks if not c.passed]


@pytest.fixture(autouse=True)
def _clock(fake_clock: FakeClock) -> FakeClock:
    return fake_clock


# ---- 1. objects last applied with a removed API ------------------------------------------------
def cluster_124(**objects: list[dict[str, Any]]) -> tuple[FakeEks, FakeKube]:
    eks = FakeEks(
        version="1.24",
        as_of=ONE_ZONE_DATE,
        nodegroups=[nodegroup("general", "1.24", ami="AL2_x86_64", release="1.24.17-20240213")],
    )
    stored = {
        ("", "secrets"): [
            last_applied("v1", "Secret", "db-password", "reports"),
        ],
    }
    for key, found in objects.items():
        group, plural = key.split("__")
        stored[(group.replace("_", "."), plural)] = found
    kube = FakeKube(
        eks,
        nodes=[
            node("ip-10-0-1-17.eu-west-1.compute.internal", "v1.24.17-eks-5e0fdde", nodegroup_name="general")
        ],
        objects=stored,
    )
    return eks, kube


def test_cronjob_last_applied_as_batch_v1beta1_blocks_the_hop_to_1_25() -> None:
    eks, kube = cluster_124(
        batch__cronjobs=[last_applied("batch/v1beta1", "CronJob", "nightly-report", "reports")]
    )
    op = preflight(upgrade_operation("1.24", "1.25"), eks, kube)

    assert (op.status, op.reason) == ("blocked", "removed_api_in_use")
    removed = check(op, "removed_apis")
    assert (removed.passed, removed.severity, removed.reason) == (False, "required", "removed_api_in_use")
    assert removed.detail == (
        "CronJob reports/nightly-report was last applied as batch/v1beta1 (removed in 1.25); use batch/v1"
    )
    assert op.message == f"Hop 1.24 → 1.25: check removed_apis failed: {removed.detail}"
    assert failed_checks(op) == ["removed_apis"]
    hop = op.hops[0]
    assert (hop.fromVersion, hop.toVersion, hop.status, hop.reason) == (
        "1.24",
        "1.25",
        "blocked",
        "removed_api_in_use",
    )
    assert hop.endedAt == clock.now()
    # Found through the version 1.24 still serves and 1.25 keeps, by the object's own annotation.
    assert ("iter_path", "batch/v1", "cronjobs") in kube.asked
    assert ("iter_path", "batch/v1beta1", "cronjobs") not in kube.asked
    assert not kube.touched_secrets()
    assert not eks.called("update_cluster_version")


def test_the_same_cronjob_last_applied_as_batch_v1_passes() -> None:
    eks, kube = cluster_124(
        batch__cronjobs=[last_applied("batch/v1", "CronJob", "nightly-report", "reports")]
    )
    op = preflight(upgrade_operation("1.24", "1.25"), eks, kube)

    assert (op.status, op.reason) == ("running", None)
    assert op.stage == "preflight"
    removed = check(op, "removed_apis")
    assert removed.passed and removed.reason is None
    assert removed.detail.startswith("1 objects of 6 kinds with APIs removed in 1.25: none last applied")
    assert op.hops[0].status == "running"
    assert failed_checks(op) == []
    assert not kube.touched_secrets()


def test_pod_security_policy_served_only_through_policy_v1beta1_is_reported() -> None:
    eks, kube = cluster_124(
        policy__podsecuritypolicies=[{"kind": "PodSecurityPolicy", "metadata": {"name": "restricted"}}],
        policy__poddisruptionbudgets=[last_applied("policy/v1", "PodDisruptionBudget", "web", "shop")],
    )
    op = preflight(upgrade_operation("1.24", "1.25"), eks, kube)

    assert (op.status, op.reason) == ("blocked", "removed_api_in_use")
    detail = check(op, "removed_apis").detail
    assert detail == "PodSecurityPolicy restricted uses policy/v1beta1, removed in 1.25"
    assert "PodDisruptionBudget" not in detail  # last applied as policy/v1, which 1.25 serves
    assert ("iter_path", "policy/v1beta1", "podsecuritypolicies") in kube.asked
    assert ("iter_path", "policy/v1", "poddisruptionbudgets") in kube.asked
    assert not kube.touched_secrets()


def test_secrets_are_never_listed_even_with_removed_apis_to_look_for() -> None:
    eks, kube = cluster_124(
        batch__cronjobs=[last_applied("batch/v1beta1", "CronJob", "nightly-report", "reports")],
        autoscaling__horizontalpodautoscalers=[
            last_applied("autoscaling/v2beta1", "HorizontalPodAutoscaler", "web", "shop")
        ],
    )
    op = preflight(upgrade_operation("1.24", "1.25"), eks, kube)

    assert op.reason == "removed_api_in_use"
    detail = check(op, "removed_apis").detail
    assert "HorizontalPodAutoscaler shop/web was last applied as autoscaling/v2beta1" in detail
    assert "use autoscaling/v2" in detail
    assert kube.asked, "the reader was used"
    assert not kube.touched_secrets()
    # typed LISTs only for the drain rehearsal (nodes, pods, PDBs) and cluster-autoscaler (Deployments)
    listed = {call[1] for call in kube.asked if call[0] == "list"}
    assert listed <= {"Deployment", "Node", "Pod", "PodDisruptionBudget"}


# ---- 2. managed node groups on the control plane's version -------------------------------------
def test_managed_nodegroup_lagging_the_control_plane_blocks() -> None:
    eks = FakeEks(
        version="1.30",
        nodegroups=[nodegroup("general", "1.30"), nodegroup("batch-workers", "1.29")],
    )
    op = preflight(upgrade_operation("1.30", "1.31"), eks, FakeKube(eks))

    assert (op.status, op.reason) == ("blocked", "nodegroup_version_lag")
    lag = check(op, "nodegroups_match_control_plane")
    assert (lag.passed, lag.severity) == (False, "required")
    assert lag.detail == "batch-workers runs 1.29: the node group workflow must bring it to 1.30 first"
    assert "general" not in lag.detail
    assert op.message.startswith(
        "Hop 1.30 → 1.31: check nodegroups_match_control_plane failed: batch-workers"
    )
    assert op.hops[0].status == "blocked"


def test_custom_ami_nodegroup_lagging_is_left_to_its_owner() -> None:
    eks = FakeEks(version="1.30", nodegroups=[nodegroup("legacy-gpu", "1.29", ami="CUSTOM", release="")])
    op = preflight(upgrade_operation("1.30", "1.31"), eks, FakeKube(eks))

    assert (op.status, op.reason) == ("blocked", "nodegroup_version_lag")
    detail = check(op, "nodegroups_match_control_plane").detail
    assert detail.startswith("legacy-gpu runs 1.29 (custom AMI: its owner updates the launch template")
    assert detail.endswith("its owner must move it to 1.30")
    assert "node group workflow" not in detail


# ---- 3. Amazon Linux 2 ends with 1.32 ----------------------------------------------------------
def test_al2_nodegroup_blocks_the_hop_to_1_33() -> None:
    eks = FakeEks(
        version="1.32",
        nodegroups=[
            nodegroup("general", "1.32", ami="AL2_x86_64", release="1.32.9-20251209"),
            nodegroup("arm", "1.32", ami="AL2023_ARM_64_STANDARD"),
        ],
    )
    op = preflight(upgrade_operation("1.32", "1.33"), eks, FakeKube(eks))

    assert (op.status, op.reason) == ("blocked", "al2_not_published")
    al2 = check(op, "no_al2_nodegroups")
    assert al2.detail == (
        "general use Amazon Linux 2, for which no 1.33 AMI is published: "
        "move them to AL2023 or Bottlerocket first"
    )
    assert "arm" not in al2.detail.split(" use ")[0]
    assert failed_checks(op) == ["no_al2_nodegroups"]


def test_al2_nodegroup_may_go_to_1_32() -> None:
    eks = FakeEks(version="1.31", nodegroups=[nodegroup("general", "1.31", ami="AL2_x86_64")])
    op = preflight(upgrade_operation("1.31", "1.32"), eks, FakeKube(eks))

    assert op.status == "running"
    al2 = check(op, "no_al2_nodegroups")
    assert al2.passed and al2.detail == "AL2 AMIs are published for 1.32"
    assert failed_checks(op) == []


# ---- 4. self-managed kubelet skew --------------------------------------------------------------
@pytest.mark.parametrize(
    ("current", "target", "kubelet", "passes"),
    [
        ("1.30", "1.31", "v1.27.16-eks-2f46c53", False),  # 4 minors behind
        ("1.30", "1.31", "v1.28.15-eks-c39b1d0", True),  # 3 minors: allowed from kubelet 1.25 on
        ("1.25", "1.26", "v1.23.17-eks-a59e1f0", False),  # 3 minors, but a kubelet ≤ 1.24 allows 2
        ("1.25", "1.26", "v1.24.17-eks-5e0fdde", True),
    ],
)
def test_self_managed_node_kubelet_skew(current: str, target: str, kubelet: str, passes: bool) -> None:
    as_of = TODAY if current == "1.30" else ONE_ZONE_DATE
    eks = FakeEks(version=current, as_of=as_of, nodegroups=[nodegroup("general", current)])
    kube = FakeKube(
        eks,
        nodes=[
            node(
                "ip-10-0-1-17.eu-west-1.compute.internal",
                f"v{current}.9-eks-4f3a1b2",
                nodegroup_name="general",
            ),
            node("ip-10-0-7-42.eu-west-1.compute.internal", kubelet),  # no node group label: self-managed
        ],
    )
    op = preflight(upgrade_operation(current, target), eks, kube)

    skew = check(op, "self_managed_node_skew")
    if passes:
        assert op.status == "running"
        assert skew.passed
        assert skew.detail == f"1 self-managed nodes within the allowed skew of {target}"
    else:
        assert (op.status, op.reason) == ("blocked", "self_managed_skew")
        assert skew.severity == "required"
        assert (
            skew.detail
            == f"kubelet too old for {target}: ip-10-0-7-42.eu-west-1.compute.internal ({kubelet})"
        )


# ---- 5. EKS upgrade insights -------------------------------------------------------------------
def deprecated_apis_insight(status: str) -> dict[str, Any]:
    return {
        "id": "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        "name": "Deprecated APIs removed in Kubernetes v1.25",
        "category": "UPGRADE_READINESS",
        "kubernetesVersion": "1.25",
        "lastRefreshTime": datetime(2024, 2, 29, 6, 0, tzinfo=UTC),
        "lastTransitionTime": datetime(2024, 2, 20, 6, 0, tzinfo=UTC),
        "description": "Checks for usage of deprecated APIs that are scheduled for removal in v1.25.",
        "insightStatus": {"status": status, "reason": "Deprecated API usage detected within last 30 days."},
        "recommendation": "Update manifests and API clients to use newer Kubernetes APIs if applicable.",
        "categorySpecificSummary": {
            "deprecationDetails": [
                {
                    "usage": "/apis/batch/v1beta1/cronjobs",
                    "replacedWith": "/apis/batch/v1/cronjobs",
                    "stopServingVersion": "1.25",
                    "startServingReplacementVersion": "1.21",
                    "clientStats": [
                        {
                            "userAgent": "kubectl/v1.24",
                            "numberOfRequestsLast30Days": 24,
                            "lastRequestTime": datetime(2024, 2, 28, 23, 0, tzinfo=UTC),
                        }
                    ],
                }
            ]
        },
    }


def test_insight_in_error_blocks_naming_the_caller() -> None:
    eks = FakeEks(
        version="1.24",
        as_of=ONE_ZONE_DATE,
        nodegroups=[nodegroup("general", "1.24", release="1.24.17-20240213", ami="AL2_x86_64")],
        insights=[deprecated_apis_insight("ERROR")],
    )
    op = preflight(upgrade_operation("1.24", "1.25"), eks, FakeKube(eks))

    assert (op.status, op.reason) == ("blocked", "insights_error")
    insights = check(op, "upgrade_insights")
    assert (insights.passed, insights.severity, insights.reason) == (False, "required", "insights_error")
    assert insights.detail == (
        "Deprecated APIs removed in Kubernetes v1.25: Deprecated API usage detected within last 30 days.; "
        "/apis/batch/v1beta1/cronjobs → /apis/batch/v1/cronjobs, called by kubectl/v1.24 (24 calls)"
    )
    assert "kubectl/v1.24" in op.message
    assert ("list_insights", "UPGRADE_READINESS", "1.25") in eks.calls
    assert eks.called("describe_insight") == [("describe_insight", "a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d")]


def test_insight_warning_is_shown_but_does_not_block() -> None:
    rollback = {
        "id": "f0e1d2c3-b4a5-4968-8778-695a4b3c2d1e",
        "name": "Cluster health issues",
        "category": "ROLLBACK_READINESS",
        "kubernetesVersion": "1.25",
        "insightStatus": {"status": "PASSING", "reason": "No issues detected."},
    }
    eks = FakeEks(
        version="1.24",
        as_of=ONE_ZONE_DATE,
        nodegroups=[nodegroup("general", "1.24", release="1.24.17-20240213", ami="AL2_x86_64")],
        insights=[deprecated_apis_insight("WARNING"), rollback],
    )
    op = preflight(upgrade_operation("1.24", "1.25"), eks, FakeKube(eks))

    assert (op.status, op.reason) == ("running", None)
    assert check(op, "upgrade_insights").passed
    assert check(op, "upgrade_insights").detail == "1 insights for 1.25, none ERROR"
    warning = check(op, "upgrade_insights_warnings")
    assert (warning.passed, warning.severity) == (False, "recommended")
    assert warning.detail == "Deprecated APIs removed in Kubernetes v1.25"
    assert failed_checks(op) == ["upgrade_insights_warnings"]
    assert op.hops[0].insights == [
        {"name": "Cluster health issues", "status": "PASSING", "reason": "No issues detected."}
    ]


# ---- 6. cluster-autoscaler ---------------------------------------------------------------------
def fleet_policy(*, must_match: bool | None) -> ClusterPolicy:
    entry: dict[str, Any] = {"name": CLUSTER, "accountId": ACCOUNT, "region": REGION}
    if must_match is not None:
        entry["autoscalerMustMatch"] = must_match
    policy = parse_policy({"version": 1, "clusters": [entry]}).cluster(ACCOUNT, REGION, CLUSTER)
    assert policy is not None
    return policy


def autoscaler_cluster(image: str) -> tuple[FakeEks, FakeKube]:
    eks = FakeEks(version="1.29", nodegroups=[nodegroup("general", "1.29")])
    return eks, FakeKube(eks, deployments=[autoscaler(image)])


@pytest.mark.parametrize("policy", [None, fleet_policy(must_match=None)], ids=["no-policy", "policy-default"])
def test_autoscaler_on_the_old_minor_is_a_recommendation_by_default(policy: ClusterPolicy | None) -> None:
    eks, kube = autoscaler_cluster("registry.k8s.io/autoscaling/cluster-autoscaler:v1.29.0")
    op = preflight(upgrade_operation("1.29", "1.30"), eks, kube, policy=policy)

    assert (op.status, op.reason) == ("running", None)
    found = check(op, "cluster_autoscaler_version")
    assert (found.passed, found.severity) == (False, "recommended")
    assert found.detail == (
        "kube-system/cluster-autoscaler runs v1.29.0: "
        "update cluster-autoscaler to 1.30 together with this hop"
    )


def test_autoscaler_must_match_blocks() -> None:
    eks, kube = autoscaler_cluster("registry.k8s.io/autoscaling/cluster-autoscaler:v1.29.0")
    op = preflight(upgrade_operation("1.29", "1.30"), eks, kube, policy=fleet_policy(must_match=True))

    assert (op.status, op.reason) == ("blocked", "autoscaler_mismatch")
    found = check(op, "cluster_autoscaler_version")
    assert (found.passed, found.severity, found.reason) == (False, "required", "autoscaler_mismatch")
    assert "update cluster-autoscaler to 1.30 together with this hop" in found.detail
    assert "update cluster-autoscaler to 1.30 together with this hop" in op.message


def test_autoscaler_on_the_target_minor_passes_even_when_it_must_match() -> None:
    eks, kube = autoscaler_cluster("registry.k8s.io/autoscaling/cluster-autoscaler:v1.30.2")
    op = preflight(upgrade_operation("1.29", "1.30"), eks, kube, policy=fleet_policy(must_match=True))

    assert op.status == "running"
    found = check(op, "cluster_autoscaler_version")
    assert found.passed and found.detail == "cluster-autoscaler v1.30.2 matches 1.30"


def test_autoscaler_pinned_by_digest_is_read_by_its_tag() -> None:
    digest = "sha256:" + "3c1f0a9d" * 8
    eks, kube = autoscaler_cluster(f"registry.k8s.io/autoscaling/cluster-autoscaler:v1.30.2@{digest}")
    op = preflight(upgrade_operation("1.29", "1.30"), eks, kube, policy=fleet_policy(must_match=True))

    assert op.status == "running"
    assert check(op, "cluster_autoscaler_version").passed


# ---- 7. free IPs in the cluster's subnets ------------------------------------------------------
@pytest.mark.parametrize(
    ("subnets", "words"),
    [
        (
            [
                subnet("subnet-0a1b2c3d4e5f60001", "eu-west-1a", 3),
                subnet("subnet-0a1b2c3d4e5f60002", "eu-west-1b", 1),
            ],
            "4 free IPs in 2 cluster subnets across 2 AZs",
        ),
        (
            [
                subnet("subnet-0a1b2c3d4e5f60001", "eu-west-1a", 250),
                subnet("subnet-0a1b2c3d4e5f60002", "eu-west-1a", 250),
            ],
            "500 free IPs in 2 cluster subnets across 1 AZs",
        ),
    ],
    ids=["four-free-ips", "one-az"],
)  # fmt: skip
def test_cluster_subnets_without_room_block(subnets: list[dict[str, Any]], words: str) -> None:
    eks = FakeEks(version="1.30", nodegroups=[nodegroup("general", "1.30")])
    reader = Subnets(subnets)
    op = preflight(upgrade_operation("1.30", "1.31"), eks, FakeKube(eks), subnets=reader)

    assert (op.status, op.reason) == ("blocked", "insufficient_ips")
    ips = check(op, "cluster_subnet_ips")
    assert ips.severity == "required"
    assert ips.detail == f"{words}; the upgrade needs 5 free IPs and subnets in at least 2 AZs"
    assert reader.asked == [(REGION, ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"])]


def test_cluster_subnets_with_room_pass() -> None:
    eks = FakeEks(version="1.30", nodegroups=[nodegroup("general", "1.30")])
    op = preflight(upgrade_operation("1.30", "1.31"), eks, FakeKube(eks))

    ips = check(op, "cluster_subnet_ips")
    assert ips.passed and ips.detail == "473 free IPs in 2 cluster subnets across 2 AZs"


# ---- 8. versions -------------------------------------------------------------------------------
def test_target_older_than_the_control_plane_is_a_downgrade() -> None:
    eks = FakeEks(version="1.31")
    op = preflight(upgrade_operation("1.31", "1.30"), eks, FakeKube(eks))

    assert (op.status, op.reason) == ("blocked", "downgrade")
    assert op.message == "The control plane runs 1.31; 1.30 would be a downgrade, which EKS refuses."
    assert op.hops == [] and op.stage == ""
    assert not eks.called("update_cluster_version")


def test_target_equal_to_the_control_plane_is_skipped() -> None:
    eks = FakeEks(version="1.31")
    op = preflight(upgrade_operation("1.31", "1.31"), eks, FakeKube(eks))

    assert (op.status, op.reason) == ("skipped", "already_current")
    assert op.message == "The control plane already runs 1.31."
    assert op.hops == []


def test_the_version_eks_reports_wins_over_the_event() -> None:
    eks = FakeEks(version="1.30", nodegroups=[nodegroup("general", "1.30")])
    op = preflight(upgrade_operation("1.29", "1.31"), eks, FakeKube(eks))

    assert op.status == "running"
    assert op.fromVersion == "1.30"
    assert op.message == "The event said 1.29; EKS reports 1.30, which is used."
    assert (op.hops[0].fromVersion, op.hops[0].toVersion) == ("1.30", "1.31")
    assert op.kubernetesVersion == "1.30"
    assert op.support is not None
    assert (op.support.versionStatus, op.support.supportType) == ("EXTENDED_SUPPORT", "EXTENDED")
    assert op.support.endOfExtendedSupport == datetime(2026, 7, 23, tzinfo=UTC)


def test_a_multi_minor_target_is_taken_one_hop_at_a_time() -> None:
    eks = FakeEks(version="1.29", nodegroups=[nodegroup("general", "1.29")])
    op = preflight(upgrade_operation("1.29", "1.32"), eks, FakeKube(eks))

    assert op.status == "running"
    assert [(h.fromVersion, h.toVersion) for h in op.hops] == [("1.29", "1.30")]
    assert ("list_insights", "UPGRADE_READINESS", "1.30") in eks.calls
    assert check(op, "target_version_offered").detail == "1.30 is EXTENDED_SUPPORT"


# ---- a whole hop, driven through the steps -----------------------------------------------------
ADDONS_ON = {
    "1.29": {
        "vpc-cni": "v1.17.1-eksbuild.1",
        "kube-proxy": "v1.29.15-eksbuild.16",
        "coredns": "v1.11.4-eksbuild.24",
    },
    "1.30": {
        "vpc-cni": "v1.18.3-eksbuild.1",
        "kube-proxy": "v1.30.14-eksbuild.8",
        "coredns": "v1.11.4-eksbuild.24",
    },
}


def hop_world(version: str = "1.29") -> tuple[FakeEks, FakeKube]:
    eks = FakeEks(
        version=version,
        nodegroups=[nodegroup("general", version)],
        addons=ADDONS_ON[version],
    )
    kube = FakeKube(
        eks,
        nodes=[
            node(
                f"ip-10-0-1-{n}.eu-west-1.compute.internal",
                f"v{version}.15-eks-473151a",
                nodegroup_name="general",
            )
            for n in (17, 18, 19)
        ],
    )
    return eks, kube


def release_of(region: str, parameter: str) -> str | None:
    """The SSM public parameter of the recommended AL2023 release."""
    assert region == REGION
    found = re.match(r"/aws/service/eks/optimized-ami/(1\.\d+)/amazon-linux-2023/x86_64/standard/", parameter)
    assert found, parameter
    return {"1.30": "1.30.14-20251209", "1.31": "1.31.13-20251209"}.get(found[1])


def finish_child(eks: FakeEks, child: Operation, status: str = "succeeded", reason: str = "updated") -> None:
    """What the shared add-on or node group steps leave on the record (and in EKS)."""
    if status == "succeeded":
        if child.component.kind == "addon":
            eks.addons[child.component.name]["addonVersion"] = child.toVersion
        else:
            eks.nodegroups[child.component.name]["releaseVersion"] = child.toVersion
            eks.nodegroups[child.component.name]["version"] = child.kubernetesVersion
    child.end(status, reason, f"{child.component.name} runs {child.toVersion}.")


def run_hop(op: Operation, eks: FakeEks, kube: FakeKube, *, approver: str | None = None) -> Operation:
    """Preflight, approval, recheck, apply, the add-on and node group steps, verify, finish."""
    op = preflight(op, eks, kube)
    assert op.status == "running", op.message
    if approver:
        op.absorb_decision({"decision": "approved", "by": approver, "at": clock.now(), "approvalId": "ap-1"})
    op = recheck_hop(op, eks=eks)
    op = apply_hop(op, eks=eks)
    assert op.update.id is not None
    eks.complete_update(op.update.id)
    op = plan_addons(op, eks=eks)
    while True:
        op = next_child(op, eks=eks, ssm_parameter=release_of)
        if op.child is None:
            break
        finish_child(eks, op.child)
        op = fold_child(op)
    assert op.stage == "verify"
    for n in kube.nodes:  # the roll replaced the nodes
        n["status"]["nodeInfo"]["kubeletVersion"] = f"v{eks.cluster['version']}.14-eks-931bdca"
    op = verify_hop(op, eks=eks, kube=kube)
    assert op.verify.passed, op.verify.findings
    return finish_hop(op)


def test_a_two_hop_upgrade_runs_to_the_target() -> None:
    eks, kube = hop_world("1.29")
    op = upgrade_operation("1.29", "1.31")

    op = run_hop(op, eks, kube)
    assert (op.status, op.stage) == ("running", "preflight")
    op = run_hop(op, eks, kube)

    assert (op.status, op.reason, op.stage) == ("succeeded", "upgraded", "done")
    assert op.message == "The cluster runs 1.31 everywhere (1.29 → 1.30 → 1.31)."
    assert [(h.fromVersion, h.toVersion, h.status, h.reason) for h in op.hops] == [
        ("1.29", "1.30", "succeeded", "upgraded"),
        ("1.30", "1.31", "succeeded", "upgraded"),
    ]
    assert [c[2] for c in eks.called("update_cluster_version")] == ["1.30", "1.31"]
    tokens = [c[3] for c in eks.called("update_cluster_version")]
    assert tokens == [
        "prod-control-plane-1-31-eos-7d2c:hop1:1.30",
        "prod-control-plane-1-31-eos-7d2c:hop2:1.31",
    ]
    first = [(c.kind, c.name, c.fromVersion, c.toVersion, c.status) for c in op.hops[0].children]
    assert first == [
        ("addon", "kube-proxy", "v1.29.15-eksbuild.16", "v1.30.14-eksbuild.8", "succeeded"),
        ("addon", "vpc-cni", "v1.17.1-eksbuild.1", "v1.18.3-eksbuild.1", "succeeded"),
        ("nodegroup", "general", "1.29.15-20251209", "1.30.14-20251209", "succeeded"),
    ]
    second = [(c.kind, c.name, c.toVersion) for c in op.hops[1].children]
    assert second == [
        ("addon", "kube-proxy", "v1.31.10-eksbuild.12"),
        ("addon", "vpc-cni", "v1.19.0-eksbuild.1"),
        ("nodegroup", "general", "1.31.13-20251209"),
    ]
    assert eks.cluster["version"] == "1.31"


# ---- 9. each hop asks its own approval ---------------------------------------------------------
def test_the_second_hop_asks_a_new_approval_and_the_first_keeps_its_own() -> None:
    eks, kube = hop_world("1.29")
    op = upgrade_operation("1.29", "1.31", approval=True)

    op = run_hop(op, eks, kube, approver="alice")
    assert op.approval.decision == "approved"
    op = preflight(op, eks, kube)

    assert op.status == "running"
    assert [(h.fromVersion, h.toVersion) for h in op.hops] == [("1.29", "1.30"), ("1.30", "1.31")]
    assert op.approval == Approval(required=True, timeoutSeconds=4 * 3600)
    first = op.hops[0].approval
    assert first is not None
    assert (first.required, first.decision, first.by, first.id) == (True, "approved", "alice", "ap-1")
    assert op.hops[1].approval is None


def test_preflight_keeps_the_approval_of_a_hop_not_finished_through_finish_hop() -> None:
    eks, kube = hop_world("1.29")
    op = preflight(upgrade_operation("1.29", "1.31", approval=True), eks, kube)
    op.absorb_decision({"decision": "approved", "by": "bob", "at": clock.now(), "approvalId": "ap-7"})
    eks.cluster["version"] = "1.30"  # moved by someone else; the hop is not finished here
    eks.nodegroups["general"]["version"] = "1.30"
    op = preflight(op, eks, kube)

    assert op.hops[0].approval is not None and op.hops[0].approval.by == "bob"
    assert op.approval == Approval(required=True, timeoutSeconds=4 * 3600)


# ---- 10. the add-ons of a hop ------------------------------------------------------------------
def test_plan_addons_moves_each_addon_to_the_newest_for_the_new_version() -> None:
    eks, _ = hop_world("1.29")
    op = upgrade_operation("1.29", "1.30")
    op = preflight(op, eks, FakeKube(eks))
    eks.cluster["version"] = "1.30"
    op = plan_addons(op, eks=eks)

    planned = {p.name: (p.kind, p.fromVersion, p.toVersion) for p in op.pending}
    assert planned == {
        "vpc-cni": ("addon", "v1.17.1-eksbuild.1", "v1.18.3-eksbuild.1"),  # one minor; not v1.19.0
        "kube-proxy": ("addon", "v1.29.15-eksbuild.16", "v1.30.14-eksbuild.8"),  # newest 1.30 build
    }
    assert "coredns" not in planned  # v1.11.4-eksbuild.24 is compatible with 1.30 and newest
    assert (op.stage, op.kubernetesVersion) == ("addons", "1.30")
    hop = op.hops[0]
    assert hop.addonsStarted == clock.now() and hop.controlPlaneEnded == clock.now()
    assert ("addon_versions", "coredns", "1.30") in eks.calls


def test_plan_addons_never_plans_a_downgrade() -> None:
    eks, _ = hop_world("1.29")
    eks.addons["coredns"]["addonVersion"] = "v1.11.4-eksbuild.24"
    eks.addons["kube-proxy"]["addonVersion"] = "v1.30.14-eksbuild.8"  # already ahead
    eks.addons["vpc-cni"]["addonVersion"] = "v1.19.0-eksbuild.1"
    op = preflight(upgrade_operation("1.29", "1.30"), eks, FakeKube(eks))
    op = plan_addons(op, eks=eks)

    assert op.pending == []
    eks.addons["coredns"]["addonVersion"] = "v1.11.1-eksbuild.9"
    op = plan_addons(op, eks=eks)
    assert [(p.name, p.toVersion) for p in op.pending] == [("coredns", "v1.11.4-eksbuild.24")]


def test_preflight_lists_the_addon_moves_of_the_hop() -> None:
    eks, kube = hop_world("1.29")
    op = preflight(upgrade_operation("1.29", "1.30"), eks, kube)

    addons = check(op, "addons_compatible")
    assert addons.passed
    assert addons.detail == (
        "coredns v1.11.4-eksbuild.24 (stays); kube-proxy v1.29.15-eksbuild.16 → v1.30.14-eksbuild.8; "
        "vpc-cni v1.17.1-eksbuild.1 → v1.18.3-eksbuild.1"
    )


def test_an_addon_without_a_version_for_the_target_blocks() -> None:
    eks = FakeEks(
        version="1.30",
        nodegroups=[nodegroup("general", "1.30")],
        # never updated on 1.30: v1.18 is not offered for 1.31 and v1.19 is two minors away
        addons={"vpc-cni": "v1.17.1-eksbuild.1"},
    )
    op = preflight(upgrade_operation("1.30", "1.31"), eks, FakeKube(eks))
    assert (op.status, op.reason) == ("blocked", "addon_incompatible")
    assert check(op, "addons_compatible").detail == (
        "vpc-cni v1.17.1-eksbuild.1: no version for 1.31 that is not a downgrade in one step"
    )


# ---- 11. the steps of a hop, one at a time -----------------------------------------------------
def hop_after_control_plane() -> tuple[Operation, FakeEks, FakeKube]:
    eks, kube = hop_world("1.29")
    op = preflight(upgrade_operation("1.29", "1.31", op_id=LONG_ID), eks, kube)
    op = apply_hop(recheck_hop(op, eks=eks), eks=eks)
    assert op.update.id
    eks.complete_update(op.update.id)
    return plan_addons(op, eks=eks), eks, kube


def test_next_child_hands_out_one_step_at_a_time_under_the_upgrades_lease() -> None:
    op, eks, _ = hop_after_control_plane()
    assert [p.name for p in op.pending] == ["kube-proxy", "vpc-cni"]

    op = next_child(op, eks=eks, ssm_parameter=release_of)
    child = op.child
    assert child is not None
    assert child.id == f"{LONG_ID}.hop1.addon.kube-proxy"
    assert (child.component.kind, child.component.name) == ("addon", "kube-proxy")
    assert (child.fromVersion, child.toVersion) == ("v1.29.15-eksbuild.16", "v1.30.14-eksbuild.8")
    assert child.parent == op.id and child.lockHeld is True
    assert child.lock_holder == op.id != child.id
    assert (child.kubernetesVersion, child.status, child.approval.required) == ("1.30", "running", False)
    assert (child.executionArn, child.cluster) == (op.executionArn, op.cluster)
    assert [p.name for p in op.pending] == ["vpc-cni"]  # the rest wait their turn

    finish_child(eks, child)
    op = fold_child(op)
    assert op.child is None
    assert [(c.name, c.status, c.reason) for c in op.hops[0].children] == [
        ("kube-proxy", "succeeded", "updated")
    ]

    op = next_child(op, eks=eks, ssm_parameter=release_of)
    assert op.child is not None and op.child.component.name == "vpc-cni"
    assert op.child.lock_holder == op.id
    finish_child(eks, op.child)
    op = fold_child(op)

    asked: list[tuple[str, str]] = []
    op = next_child(op, eks=eks, ssm_parameter=lambda r, p: asked.append((r, p)) or release_of(r, p))
    assert op.stage == "nodegroups"
    assert asked == [
        (
            REGION,
            "/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/x86_64/standard/recommended/release_version",
        )
    ]
    ng = op.child
    assert ng is not None
    assert ng.id == f"{LONG_ID}.hop1.nodegroup.general"
    assert (ng.component.kind, ng.fromVersion, ng.toVersion) == (
        "nodegroup",
        "1.29.15-20251209",
        "1.30.14-20251209",
    )
    assert ng.parent == op.id and ng.lockHeld and ng.lock_holder == op.id
    finish_child(eks, ng)
    op = fold_child(op)

    op = next_child(op, eks=eks, ssm_parameter=release_of)
    assert op.child is None
    assert op.stage == "verify"
    assert op.hops[0].nodegroupsEnded == clock.now()


def test_a_rolled_back_addon_fails_the_upgrade() -> None:
    op, eks, _ = hop_after_control_plane()
    op = next_child(op, eks=eks, ssm_parameter=release_of)
    assert op.child is not None
    op.child.end(
        "rolled_back", "verify_failed", "Back on v1.29.15-eksbuild.16 after v1.30.14-eksbuild.8 failed."
    )
    op = fold_child(op)

    assert (op.status, op.reason) == ("failed", "addon_rolled_back")
    assert "kube-proxy" in (op.message or "")
    assert op.message == (
        "Hop 1.29 → 1.30: the control plane is on 1.30, but addon kube-proxy rolled_back (verify_failed): "
        "Back on v1.29.15-eksbuild.16 after v1.30.14-eksbuild.8 failed."
    )
    hop = op.hops[0]
    assert (hop.status, hop.reason) == ("failed", "addon_rolled_back")
    assert hop.children[-1].status == "rolled_back"
    assert op.pending == []
    op = next_child(op, eks=eks, ssm_parameter=release_of)  # nothing more is handed out
    assert op.child is None and op.status == "failed"


def test_a_nodegroup_step_waiting_for_force_approval_is_folded_as_drain_blocked() -> None:
    op, eks, _ = hop_after_control_plane()
    for _ in range(2):
        op = next_child(op, eks=eks, ssm_parameter=release_of)
        assert op.child is not None
        finish_child(eks, op.child)
        op = fold_child(op)
    op = next_child(op, eks=eks, ssm_parameter=release_of)
    child = op.child
    assert child is not None and child.component.kind == "nodegroup"
    child.approval.required = True  # its preflight found a PDB that only force would get past
    child.nodegroup = NodegroupPlan(
        amiType="AL2023_x86_64_STANDARD", version="1.29", force=True, forcePods=["payments/ledger-0"]
    )
    op = fold_child(op)

    result = op.hops[0].children[-1]
    assert (result.kind, result.name, result.status, result.reason) == (
        "nodegroup",
        "general",
        "blocked",
        "drain_blocked",
    )
    assert result.message == "A PDB blocks the drain; force would delete payments/ledger-0."
    assert (op.status, op.reason) == ("failed", "nodegroup_blocked")
    assert op.hops[0].status == "failed"


def test_a_step_that_ends_without_an_outcome_is_a_failure() -> None:
    op, eks, _ = hop_after_control_plane()
    op = next_child(op, eks=eks, ssm_parameter=release_of)
    op = fold_child(op)  # still running, no approval wanted

    assert op.hops[0].children[-1].reason == "internal_error"
    assert (op.status, op.reason) == ("failed", "addon_failed")


def test_no_release_for_the_new_version_blocks_the_nodegroup_and_fails_the_hop() -> None:
    op, eks, _ = hop_after_control_plane()
    op.pending = []  # the add-ons are done
    asked: list[tuple[str, str]] = []

    def nothing(region: str, parameter: str) -> str | None:
        asked.append((region, parameter))
        return None

    op = next_child(op, eks=eks, ssm_parameter=nothing)

    assert op.child is None
    parameter = (
        "/aws/service/eks/optimized-ami/1.30/amazon-linux-2023/x86_64/standard/recommended/release_version"
    )
    assert asked == [(REGION, parameter)]
    result = op.hops[0].children[-1]
    assert (result.kind, result.name, result.status, result.reason) == (
        "nodegroup",
        "general",
        "blocked",
        "no_release",
    )
    assert result.message == f"AWS publishes no AL2023_x86_64_STANDARD release for 1.30 ({parameter})"
    assert (op.status, op.reason) == ("failed", "nodegroup_blocked")
    assert (op.hops[0].status, op.hops[0].reason) == ("failed", "nodegroup_blocked")
    assert op.hops[0].nodegroupsEnded == clock.now()


def test_finish_hop_before_the_target_goes_back_to_preflight() -> None:
    op, eks, _ = hop_after_control_plane()
    op.pending = []
    op = next_child(op, eks=eks, ssm_parameter=release_of)
    op.child = None
    op = finish_hop(op)

    assert (op.status, op.stage) == ("running", "preflight")
    assert (op.hops[0].status, op.hops[0].reason) == ("succeeded", "upgraded")
    assert op.hops[0].endedAt == clock.now()
    assert op.hops[0].approval == op.approval
    assert op.update.id is None and op.verify.attempt == 0


def test_finish_hop_at_the_target_ends_the_upgrade() -> None:
    eks, kube = hop_world("1.29")
    op = preflight(upgrade_operation("1.29", "1.30"), eks, kube)
    op = finish_hop(op)

    assert (op.status, op.reason, op.stage) == ("succeeded", "upgraded", "done")
    assert op.message == "The cluster runs 1.30 everywhere (1.29 → 1.30)."


def test_close_hop_gives_an_open_hop_the_upgrades_outcome() -> None:
    eks, kube = hop_world("1.29")
    op = preflight(upgrade_operation("1.29", "1.30", approval=True), eks, kube)
    op.end("rejected", "approval_rejected", "Rejected by bob.")
    close_hop(op)

    hop = op.hops[0]
    assert (hop.status, hop.reason, hop.endedAt) == ("rejected", "approval_rejected", clock.now())
    assert hop.approval is not None and hop.approval.required


# ---- recheck, apply, verify --------------------------------------------------------------------
def test_recheck_blocks_when_the_control_plane_moved_since_preflight() -> None:
    eks, kube = hop_world("1.29")
    op = preflight(upgrade_operation("1.29", "1.31"), eks, kube)
    eks.cluster["version"] = "1.28"  # impossible in EKS, but the recheck must not trust preflight
    op = recheck_hop(op, eks=eks)

    assert (op.status, op.reason) == ("blocked", "state_changed")
    assert (
        check(op, "recheck_version_unchanged").detail
        == "the control plane moved from 1.29 to 1.28 since preflight"
    )


def test_recheck_blocks_a_nodegroup_that_fell_behind_and_a_busy_cluster() -> None:
    eks, kube = hop_world("1.29")
    op = preflight(upgrade_operation("1.29", "1.31"), eks, kube)
    eks.cluster["status"] = "UPDATING"
    op = recheck_hop(op, eks=eks)

    assert (op.status, op.reason) == ("blocked", "cluster_not_active")
    assert {c.name for c in op.hops[0].checks if c.name.startswith("recheck_")} == {
        "recheck_version_unchanged",
        "recheck_cluster_active",
        "recheck_nodegroups_match_control_plane",
    }


def test_recheck_finds_the_hop_done_and_apply_skips_the_update() -> None:
    eks, kube = hop_world("1.29")
    op = preflight(upgrade_operation("1.29", "1.31"), eks, kube)
    eks.cluster["version"] = "1.30"
    op = apply_hop(recheck_hop(op, eks=eks), eks=eks)

    assert op.status == "running"
    assert (op.hops[0].status, op.hops[0].reason) == ("succeeded", "already_current")
    assert (op.update.status, op.update.toVersion, op.poll.waitSeconds) == ("Successful", "1.30", 0)
    assert not eks.called("update_cluster_version")


def test_verify_retries_until_nodes_are_ready_and_then_fails() -> None:
    eks, kube = hop_world("1.29")
    op = preflight(upgrade_operation("1.29", "1.30"), eks, kube)
    op = apply_hop(op, eks=eks)
    assert op.update.id is not None
    eks.complete_update(op.update.id)
    eks.nodegroups["general"]["version"] = "1.30"
    kube.nodes[0]["status"]["conditions"][0]["status"] = "False"

    op = verify_hop(op, eks=eks, kube=kube)
    assert (op.status, op.verify.passed, op.verify.retry) == ("running", False, True)
    assert op.verify.findings == ["node ip-10-0-1-17.eu-west-1.compute.internal is not Ready"]
    for _ in range(9):
        op = verify_hop(op, eks=eks, kube=kube)
    assert (op.status, op.reason) == ("failed", "verify_failed")
    assert (
        op.message
        == "Hop 1.29 → 1.30 did not verify: node ip-10-0-1-17.eu-west-1.compute.internal is not Ready"
    )


# ---- 12. idempotency tokens of the steps -------------------------------------------------------
def test_request_tokens_of_the_steps_of_one_long_execution_differ() -> None:
    op, eks, _ = hop_after_control_plane()
    op = next_child(op, eks=eks, ssm_parameter=release_of)
    first = op.child
    assert first is not None
    op.child = None
    op = next_child(op, eks=eks, ssm_parameter=release_of)
    second = op.child
    assert second is not None

    a = request_token(first, "apply", first.toVersion)
    b = request_token(second, "apply", second.toVersion)
    assert len(LONG_ID) > 64
    assert a != b
    assert len(a) <= 64 and len(b) <= 64
    assert a == request_token(first, "apply", first.toVersion)  # stable across retries
    assert a[:47] == b[:47]  # they share the long prefix: the digest tells them apart
    assert request_token(first, "rollback", first.fromVersion) != a


def test_a_short_request_token_is_kept_as_it_is() -> None:
    op = upgrade_operation("1.29", "1.30")
    assert request_token(op, "hop1", "1.30") == "prod-control-plane-1-31-eos-7d2c:hop1:1.30"


# ---- 13. what people read ----------------------------------------------------------------------
def finished_two_hop_upgrade() -> Operation:
    eks, kube = hop_world("1.29")
    op = upgrade_operation("1.29", "1.31", approval=True)
    op = run_hop(op, eks, kube, approver="alice")
    op = run_hop(op, eks, kube, approver="alice")
    return op


def test_operation_blocks_for_a_finished_two_hop_upgrade() -> None:
    op = finished_two_hop_upgrade()
    assert op.support is not None and op.support.versionStatus == "EXTENDED_SUPPORT"

    payload = operation_blocks(op, CONSOLE)
    sections = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]
    everything = "\n".join(sections)

    hops = next(s for s in sections if s.startswith("*Hops*"))
    assert "• 1.29 → 1.30: succeeded, approved by alice" in hops
    assert "• 1.30 → 1.31: succeeded, approved by alice" in hops
    assert hops.count("; 3 add-on/node group steps done") == 2
    assert "extended support" in everything
    assert "upgrade policy: EXTENDED" in everything
    assert "The cluster runs 1.31 everywhere (1.29 → 1.30 → 1.31)." in everything
    assert all(len(s) <= SECTION_LIMIT for s in sections)
    assert payload["text"] == "prod: control-plane 1.29 → 1.31 patched"
    assert "1.29 → 1.30: succeeded, approved by alice" in plain_text(op)


def test_operation_blocks_stay_within_slack_limits_with_many_steps_and_checks() -> None:
    op = finished_two_hop_upgrade()
    hop = op.hops[-1]
    for n in range(200):
        hop.children.append(
            hop.children[0].model_copy(update={"name": f"ng-{n:03d}-" + "x" * 40, "status": "failed"})
        )
    op.checks = [
        Check(name=f"check_{n}", severity="required", passed=False, detail="why " * 200) for n in range(30)
    ]
    payload = operation_blocks(op, CONSOLE)

    for block in payload["blocks"]:
        if "text" in block:
            assert len(block["text"]["text"]) <= SECTION_LIMIT
        for field in block.get("fields", []):
            assert len(field["text"]) <= 2000


def test_hop_lines_name_the_approver_of_each_hop() -> None:
    eks, kube = hop_world("1.29")
    op = upgrade_operation("1.29", "1.31", approval=True)
    op = run_hop(op, eks, kube, approver="alice")
    op = run_hop(op, eks, kube, approver="bob")

    lines = hop_lines(op)
    assert lines[0].startswith("• 1.29 → 1.30: succeeded, approved by alice")
    assert lines[1].startswith("• 1.30 → 1.31: succeeded, approved by bob")


def test_support_line_in_standard_support() -> None:
    eks = FakeEks(version="1.32", support_type="STANDARD", nodegroups=[nodegroup("general", "1.32")])
    op = preflight(upgrade_operation("1.32", "1.33"), eks, FakeKube(eks))

    assert support_line(op) == "1.32 is in standard support until 2026-03-23; upgrade policy: STANDARD."


def test_support_line_names_the_version_its_dates_belong_to() -> None:
    eks, kube = hop_world("1.29")
    op = run_hop(upgrade_operation("1.29", "1.31"), eks, kube)
    op = preflight(op, eks, kube)  # hop 2: the cluster is on 1.30 now
    line = support_line(op)

    assert ("1.29 is in extended support" in line and "until 2026-03-23" in line) or (
        "1.30 is in extended support" in line and "until 2026-07-23" in line
    ), line
