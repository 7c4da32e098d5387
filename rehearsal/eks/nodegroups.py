"""Managed node groups of the EKS simulator: the model, their Nodes and workloads in the cluster's
KubeStore, and the version-update roll (FIDELITY.md §1).

The roll is a discrete-event simulation on the rehearsal clock, as add-on updates are: every step
(launch a node, a node becomes Ready, evict the Pods of a node, terminate it...) is an event with a
simulated time, and the simulator runs the events that are due whenever it is called. Nothing runs
in the background and nothing sleeps. A roll's random choices come from a `random.Random` seeded
with the update id, so the same update id gives the same order on every run.

Evictions go through `rehearsal.kube.server.evict_pod`, the same code that answers the fake API
server's eviction subresource, so a node group update honours PodDisruptionBudgets exactly as a
`kubectl drain` against the fake API would. The PDB status it reads (`disruptionsAllowed`) is
recomputed here whenever a Pod is added, removed, or changes readiness, the way the disruption
controller keeps it.

Figures AWS does not document are marked [INF] where they are defined.
"""

from __future__ import annotations

import copy
import hashlib
import heapq
import itertools
import math
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rehearsal.eks.catalog import (
    AmiReleaseCatalog,
    derived_ami_id,
    release_kubelet,
    release_minor,
)
from rehearsal.eks.manifests import POD_FIELD_MANAGER, deployment_status, refresh_workload_status
from rehearsal.kube.server import ApiError, evict_pod, selector_matches
from rehearsal.kube.store import KINDS, KubeStore

# ---- timing ---------------------------------------------------------------------------------------
# AWS documents the 15-minute drain limit and the 60 s wait before a drained node is terminated
# (FIDELITY 1.42); every other figure is [INF], chosen to keep a roll in a plausible order of minutes
# (1.58 reports about 5 minutes per node in practice).
SETUP_SECONDS = 60  # [INF] new launch template version, ASG pointed at it (1.31-1.33)
NODE_READY_SECONDS = 120  # [INF] EC2 launch, bootstrap, kubelet registers and turns Ready
NODE_JOIN_TIMEOUT_SECONDS = 15 * 60  # [INF] when nodes that never turn Ready fail the update (1.41)
POD_READY_SECONDS = 30  # [INF] a replacement Pod starts and passes its readiness probe
EVICTION_RETRY_SECONDS = 5  # [INF] kubectl drain retries a refused eviction every 5 s
DRAIN_TIMEOUT_SECONDS = 15 * 60  # [DOC] 1.42.4
TERMINATE_AFTER_DRAIN_SECONDS = 60  # [DOC] 1.42.5
CONFIG_UPDATE_SECONDS = 60  # [INF] UpdateNodegroupConfig of updateConfig only
MAX_UNAVAILABLE_LIMIT = 100  # [DOC] 1.33/1.34

# ---- labels and taints ----------------------------------------------------------------------------
NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
NODEGROUP_IMAGE_LABEL = "eks.amazonaws.com/nodegroup-image"
CAPACITY_TYPE_LABEL = "eks.amazonaws.com/capacityType"
SOURCE_LAUNCH_TEMPLATE_ID_LABEL = "eks.amazonaws.com/sourceLaunchTemplateId"
SOURCE_LAUNCH_TEMPLATE_VERSION_LABEL = "eks.amazonaws.com/sourceLaunchTemplateVersion"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
EXCLUDE_FROM_LB_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
# FIDELITY 1.50: cordoning makes Kubernetes add this taint; treating it as EKS's taint is [INF].
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_READY_TAINT = "node.kubernetes.io/not-ready"
NODE_FIELD_MANAGER = "kubelet"
WORKLOAD_FIELD_MANAGER = "kubectl-client-side-apply"

NODEGROUP_FAULT_TYPES = ("nodes_never_ready",)
UPDATE_STRATEGIES = ("DEFAULT", "MINIMAL")
CAPACITY_TYPES = ("ON_DEMAND", "SPOT", "CAPACITY_BLOCK")

# [OBS] FIDELITY 1.41 and 1.51
NODE_CREATION_FAILURE_MESSAGE = (
    "Couldn't proceed with upgrade process as new nodes are not joining node group {nodegroup}"
)
POD_EVICTION_FAILURE_MESSAGE = (
    "Reached max retries while trying to evict pods from nodes in node group {nodegroup}"
)
# [INF] The health issue left behind by nodes that never joined: the wording is the one commonly
# reported for NodeCreationFailure; FIDELITY has no sample of it.
NODES_NOT_JOINING_ISSUE = "Instances failed to join the kubernetes cluster"

# instance type -> (vCPUs, memory GiB, max pods). Max pods follow the VPC CNI formula
# ENIs x (IPv4 addresses per ENI - 1) + 2 (amazon-eks-ami eni-max-pods.txt); other types get the
# m6i.large figures [INF].
INSTANCE_TYPES: dict[str, tuple[int, int, int]] = {
    "t3.small": (2, 2, 11),
    "t3.medium": (2, 4, 17),
    "t3.large": (2, 8, 35),
    "m5.large": (2, 8, 29),
    "m5.xlarge": (4, 16, 58),
    "m6i.large": (2, 8, 29),
    "m6i.xlarge": (4, 16, 58),
    "m6g.large": (2, 8, 29),
    "m7i.large": (2, 8, 29),
    "m7g.large": (2, 8, 29),
    "c6i.large": (2, 4, 29),
    "r6i.large": (2, 16, 29),
    "g5.xlarge": (4, 16, 58),
}
DEFAULT_INSTANCE_SHAPE = INSTANCE_TYPES["m6i.large"]

_POD_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the characters Kubernetes uses in name suffixes


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _name_suffix(*parts: str, length: int = 5) -> str:
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return "".join(_POD_NAME_ALPHABET[b % len(_POD_NAME_ALPHABET)] for b in digest[:length])


def stable_uuid(*parts: str) -> str:
    """A UUID-shaped id that is the same for the same parts on every run."""
    return str(uuid.UUID(bytes=hashlib.sha256("/".join(parts).encode()).digest()[:16]))


def kubelet_version(release_version: str) -> str:
    """`1.31.2-20241121` -> `v1.31.2-eks-<7 hex>`, the way EKS-built kubelets report themselves."""
    return f"v{release_kubelet(release_version)}-eks-{_digest('kubelet', release_version, length=7)}"


# ==== the model ====================================================================================


@dataclass(frozen=True)
class ClusterRef:
    """What the node group code needs to know of a simulated cluster."""

    name: str
    region: str
    account_id: str
    partition: str
    store: KubeStore


@dataclass
class NodegroupUpdate:
    id: str
    cluster: str
    nodegroup: str
    type: str  # VersionUpdate or ConfigUpdate
    params: list[dict[str, str]]
    created_at: datetime
    status: str = "InProgress"
    errors: list[dict[str, Any]] = field(default_factory=list)
    force_evicted: list[str] = field(default_factory=list)  # namespace/name of Pods deleted by force
    finished_at: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": self.type,
            "params": copy.deepcopy(self.params),
            "createdAt": self.created_at,
            "errors": copy.deepcopy(self.errors),
        }


@dataclass
class Nodegroup:
    cluster: ClusterRef
    name: str
    arn: str
    asg_name: str
    ami_type: str  # an AmiType name, or CUSTOM
    release_version: str  # the EKS-optimized release the nodes run (for CUSTOM: the one the AMI is built on)
    custom_ami_id: str | None
    instance_type: str
    capacity_type: str
    min_size: int
    max_size: int
    desired_size: int
    subnets: list[tuple[str, str]]  # (subnet id, availability zone)
    update_config: dict[str, Any]
    launch_template: dict[str, str] | None
    labels: dict[str, str]
    tags: dict[str, str]
    node_role: str
    created_at: datetime
    modified_at: datetime
    status: str = "ACTIVE"
    health_issues: list[dict[str, Any]] = field(default_factory=list)
    updates: list[NodegroupUpdate] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def version(self) -> str:
        return release_minor(self.release_version)

    @property
    def api_release_version(self) -> str:
        """DescribeNodegroup's releaseVersion: the AMI id for a custom AMI (FIDELITY 1.15)."""
        return self.custom_ami_id or self.release_version

    @property
    def is_custom(self) -> bool:
        return self.custom_ami_id is not None

    def running_update(self) -> NodegroupUpdate | None:
        return next((u for u in self.updates if u.status == "InProgress"), None)

    def max_unavailable(self, node_count: int) -> int:
        """Nodes updated in parallel. How EKS rounds a percentage is UNKNOWN (1.35): [INF] down,
        at least one node, at most 100 (1.33)."""
        if "maxUnavailablePercentage" in self.update_config:
            count = math.floor(node_count * int(self.update_config["maxUnavailablePercentage"]) / 100)
        else:
            count = int(self.update_config.get("maxUnavailable", 1))
        return max(1, min(count, MAX_UNAVAILABLE_LIMIT))

    @property
    def strategy(self) -> str:
        return str(self.update_config.get("updateStrategy", "DEFAULT"))

    def to_api(self) -> dict[str, Any]:
        """DescribeNodegroup's `nodegroup`, shaped like api_samples/describe_nodegroup.json."""
        body: dict[str, Any] = {
            "nodegroupName": self.name,
            "nodegroupArn": self.arn,
            "clusterName": self.cluster.name,
            "version": self.version,
            "releaseVersion": self.api_release_version,
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "status": self.status,
            "capacityType": self.capacity_type,
            "scalingConfig": {
                "minSize": self.min_size,
                "maxSize": self.max_size,
                "desiredSize": self.desired_size,
            },
            "instanceTypes": [self.instance_type],
            "subnets": [subnet for subnet, _ in self.subnets],
            "amiType": self.ami_type,
            "nodeRole": self.node_role,
            "labels": dict(self.labels),
            "resources": {"autoScalingGroups": [{"name": self.asg_name}]},
            "health": {"issues": copy.deepcopy(self.health_issues)},
            "updateConfig": dict(self.update_config),
            "tags": dict(self.tags),
        }
        if self.launch_template is not None:
            body["launchTemplate"] = dict(self.launch_template)
        else:
            body["diskSize"] = 20  # the API default; with a launch template the template sets it
        return body


@dataclass(order=True)
class _Event:
    at: datetime
    seq: int
    action: Callable[[datetime], None] = field(compare=False)
    roll: _Roll | None = field(compare=False, default=None)


# ==== Kubernetes objects ===========================================================================


def _is_ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _owner(obj: dict[str, Any]) -> dict[str, Any] | None:
    refs = obj["metadata"].get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), refs[0] if refs else None)


def _is_daemonset_pod(pod: dict[str, Any]) -> bool:
    owner = _owner(pod)
    return owner is not None and owner.get("kind") == "DaemonSet"


def _pod_key(pod: dict[str, Any]) -> str:
    return f"{pod['metadata'].get('namespace', '')}/{pod['metadata']['name']}"


def _node_is_schedulable(node: dict[str, Any]) -> bool:
    return _is_ready(node) and not node.get("spec", {}).get("unschedulable", False)


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
            continue
        if toleration.get("operator") == "Exists" and not toleration.get("key"):
            return True
        if toleration.get("key") != taint.get("key"):
            continue
        if toleration.get("operator") == "Exists" or toleration.get("value") == taint.get("value"):
            return True
    return False


def _fits(pod: dict[str, Any], node: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    tolerations = spec.get("tolerations") or []
    return all(
        _tolerates(tolerations, taint)
        for taint in node.get("spec", {}).get("taints") or []
        if taint.get("effect") in ("NoSchedule", "NoExecute")
    )


def _set_pod_readiness(pod: dict[str, Any], ready: bool, at: datetime) -> None:
    status = pod.setdefault("status", {})
    value = "True" if ready else "False"
    for condition in status.setdefault("conditions", []):
        if condition["type"] in ("Ready", "ContainersReady") and condition["status"] != value:
            condition["status"] = value
            condition["lastTransitionTime"] = _stamp(at)
    for container in status.get("containerStatuses") or []:
        container["ready"] = ready


def _pod_status(pod: dict[str, Any], at: datetime, *, bound: bool, ready: bool) -> dict[str, Any]:
    now = _stamp(at)
    if not bound:
        return {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/0 nodes are available: no Ready, schedulable node fits the pod.",
                    "lastTransitionTime": now,
                }
            ],
        }
    readiness = "True" if ready else "False"
    return {
        "phase": "Running",
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": readiness, "lastTransitionTime": now},
            {"type": "Ready", "status": readiness, "lastTransitionTime": now},
        ],
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c.get("image", ""),
                "ready": ready,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": now}},
            }
            for c in pod["spec"].get("containers", [])
        ],
    }


def _int_or_percent(value: Any, total: int) -> int:
    """A PDB's minAvailable/maxUnavailable: an integer or a percentage, rounded up as the
    disruption controller does."""
    if isinstance(value, str) and value.endswith("%"):
        return math.ceil(total * int(value[:-1]) / 100)
    return int(value)


def refresh_budgets(store: KubeStore, namespace: str) -> None:
    """Recompute the status of every PodDisruptionBudget in `namespace` the way the disruption
    controller does: expectedPods from the controllers' scale, currentHealthy = Ready Pods,
    disruptionsAllowed = currentHealthy - desiredHealthy, never negative."""
    pods = [p for p in store.list("Pod", namespace) if not p["metadata"].get("deletionTimestamp")]
    for pdb in store.list("PodDisruptionBudget", namespace):
        spec = pdb.get("spec") or {}
        matched = [
            p for p in pods if selector_matches(spec.get("selector"), p["metadata"].get("labels") or {})
        ]
        expected = _expected_pods(store, matched)
        healthy = sum(1 for p in matched if _is_ready(p) and p.get("status", {}).get("phase") == "Running")
        if spec.get("maxUnavailable") is not None:
            desired = max(0, expected - _int_or_percent(spec["maxUnavailable"], expected))
        elif spec.get("minAvailable") is not None:
            desired = _int_or_percent(spec["minAvailable"], expected)
        else:
            desired = 0
        allowed = max(0, healthy - desired)
        status = {
            "observedGeneration": pdb["metadata"].get("generation", 1),
            "expectedPods": expected,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "disruptionsAllowed": allowed,
            "conditions": [
                {
                    "type": "DisruptionAllowed",
                    "status": "True" if allowed > 0 else "False",
                    "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
                }
            ],
        }
        if pdb.get("status", {}) != status:
            store.update_status("PodDisruptionBudget", namespace, pdb["metadata"]["name"], status)


def _expected_pods(store: KubeStore, pods: list[dict[str, Any]]) -> int:
    """The scale of the controllers behind `pods` (a Deployment through its ReplicaSet), plus one
    for every Pod without a controller."""
    scales: dict[tuple[str, str], int] = {}
    loose = 0
    for pod in pods:
        namespace = pod["metadata"].get("namespace", "")
        owner = _owner(pod)
        if owner is None or owner.get("kind") not in ("ReplicaSet", "Deployment", "StatefulSet"):
            loose += 1
            continue
        controller = store.get(owner["kind"], namespace, owner["name"])
        if controller is None:
            loose += 1
            continue
        if owner["kind"] == "ReplicaSet":
            parent = _owner(controller)
            deployment = store.get("Deployment", namespace, parent["name"]) if parent else None
            if deployment is not None:
                controller = deployment
        key = (controller["kind"], controller["metadata"]["name"])
        scales[key] = int(controller.get("spec", {}).get("replicas", 1))
    return sum(scales.values()) + loose


def refresh_controller_status(store: KubeStore, pod_owner: dict[str, Any] | None, namespace: str) -> None:
    """Write the status of the workload a Pod belongs to after its Pods changed."""
    if pod_owner is None:
        return
    kind, name = str(pod_owner.get("kind", "")), str(pod_owner.get("name", ""))
    if kind in ("DaemonSet", "Deployment"):
        # The add-ons' workloads own their Pods directly: their status is the add-on code's.
        if store.get(kind, namespace, name) is not None:
            refresh_workload_status(store, (kind, namespace, name), fallback_node_count=0)
        return
    controller = store.get(kind, namespace, name) if kind in ("ReplicaSet", "StatefulSet") else None
    if controller is None:
        return
    uid = controller["metadata"]["uid"]
    pods = [
        p
        for p in store.list("Pod", namespace)
        if any(ref.get("uid") == uid for ref in p["metadata"].get("ownerReferences") or [])
    ]
    ready = sum(1 for p in pods if _is_ready(p))
    replicas = int(controller["spec"].get("replicas", 1))
    generation = controller["metadata"].get("generation", 1)
    if kind == "StatefulSet":
        store.update_status(
            kind,
            namespace,
            name,
            {
                "observedGeneration": generation,
                "replicas": len(pods),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "currentReplicas": len(pods),
                "updatedReplicas": len(pods),
            },
        )
        return
    store.update_status(
        kind,
        namespace,
        name,
        {
            "observedGeneration": generation,
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
        },
    )
    parent = _owner(controller)
    if parent is None or store.get("Deployment", namespace, parent["name"]) is None:
        return
    # Like the controller: a Deployment of several replicas may be one pod short and still be Available.
    status = deployment_status(
        desired=replicas,
        pods=len(pods),
        updated=len(pods),
        ready=ready,
        generation=generation,
        tolerated=1 if replicas > 1 else 0,
    )
    store.update_status("Deployment", namespace, parent["name"], status)


# ==== the node group world =========================================================================


class NodegroupWorld:
    """Every managed node group of one simulator, the events of their rolls, and the small
    'controllers' that keep their workloads running: a scheduler for Pods that lost their node, and
    the readiness of replacement Pods."""

    def __init__(self, releases: AmiReleaseCatalog, resync_addon_pods: Callable[[str], None]) -> None:
        self.releases = releases
        self._resync_addon_pods = resync_addon_pods
        self.nodegroups: dict[tuple[str, str], Nodegroup] = {}
        self.updates: dict[str, NodegroupUpdate] = {}
        self.rolls: dict[str, _Roll] = {}
        # UNKNOWN whether `force` deletes a refused Pod at once or only after the 15-minute limit
        # (FIDELITY 1.42.4, 1.53): [INF] at once; a scenario may set 900 for the other reading.
        self.force_delete_after_seconds: float = 0.0
        self._events: list[_Event] = []
        self._seq = itertools.count()
        self._node_counter: dict[str, itertools.count[int]] = {}
        self._pod_counter = itertools.count()
        # Pods whose readiness a scenario set by hand: replacement timers leave them alone.
        self._pinned_readiness: set[tuple[str, str]] = set()
        # (cluster, pod uid) of replacement Pods that turn Ready once bound (the evicted one was Ready).
        self._becomes_ready: set[tuple[str, str]] = set()

    # ---- events -------------------------------------------------------------------------------

    def at(self, when: datetime, action: Callable[[datetime], None], roll: _Roll | None = None) -> None:
        heapq.heappush(self._events, _Event(when, next(self._seq), action, roll))

    def next_event_at(self) -> datetime | None:
        while self._events and self._events[0].roll is not None and self._events[0].roll.done:
            heapq.heappop(self._events)
        return self._events[0].at if self._events else None

    def run_next(self) -> None:
        event = heapq.heappop(self._events)
        if event.roll is None or not event.roll.done:
            event.action(event.at)

    # ---- setup ----------------------------------------------------------------------------------

    def create(
        self,
        cluster: ClusterRef,
        name: str,
        *,
        ami_type: str,
        release_version: str,
        instance_type: str,
        capacity_type: str,
        desired: int,
        min_size: int,
        max_size: int,
        subnets: list[tuple[str, str]],
        update_config: dict[str, Any],
        launch_template: dict[str, str] | None,
        custom_ami_id: str | None,
        labels: dict[str, str],
        tags: dict[str, str],
        node_role: str | None,
        at: datetime,
    ) -> Nodegroup:
        ng_uuid = stable_uuid(cluster.account_id, cluster.region, cluster.name, name)
        nodegroup = Nodegroup(
            cluster=cluster,
            name=name,
            arn=f"arn:{cluster.partition}:eks:{cluster.region}:{cluster.account_id}:nodegroup/{cluster.name}/"
            f"{name}/{ng_uuid}",
            asg_name=f"eks-{name}-{ng_uuid}",
            ami_type=ami_type,
            release_version=release_version,
            custom_ami_id=custom_ami_id,
            instance_type=instance_type,
            capacity_type=capacity_type,
            min_size=min_size,
            max_size=max_size,
            desired_size=desired,
            subnets=list(subnets),
            update_config=dict(update_config),
            launch_template=dict(launch_template) if launch_template is not None else None,
            labels=dict(labels),
            tags=dict(tags),
            node_role=node_role
            or f"arn:{cluster.partition}:iam::{cluster.account_id}:role/{cluster.name}-{name}-node-role",
            created_at=at,
            modified_at=at,
        )
        self.nodegroups[(cluster.name, name)] = nodegroup
        for index in range(desired):
            _, zone = subnets[index % len(subnets)]
            self.launch_node(nodegroup, zone, at, ready=True, record=False)
        self._resync_addon_pods(cluster.name)
        self.schedule_pending(cluster, at)
        return nodegroup

    def image_of(self, nodegroup: Nodegroup, release_version: str, custom_ami_id: str | None) -> str:
        if custom_ami_id is not None:
            return custom_ami_id
        ami_type = self.releases.ami_type(nodegroup.ami_type)
        if ami_type is None:  # pragma: no cover - add_nodegroup refuses other AMI types
            return derived_ami_id(f"{nodegroup.ami_type}/{release_version}")
        return self.releases.ami_id(ami_type, release_version)

    def launch_node(
        self,
        nodegroup: Nodegroup,
        zone: str,
        at: datetime,
        *,
        ready: bool,
        record: bool = True,
        release_version: str | None = None,
        custom_ami_id: str | None = None,
        launch_template_version: str | None = None,
        update_id: str | None = None,
    ) -> str:
        """Create one EC2 instance's Node object; not Ready unless `ready`."""
        cluster = nodegroup.cluster
        release_version = release_version or nodegroup.release_version
        image = self.image_of(
            nodegroup,
            release_version,
            custom_ami_id if custom_ami_id is not None else nodegroup.custom_ami_id,
        )
        counter = self._node_counter.setdefault(cluster.name, itertools.count())
        number = next(counter)
        zones = sorted({z for _, z in nodegroup.subnets})
        zone_index = zones.index(zone) if zone in zones else 0
        ip = f"10.0.{(zone_index * 32 + number // 200) % 256}.{number % 200 + 20}"
        domain = "ec2.internal" if cluster.region == "us-east-1" else f"{cluster.region}.compute.internal"
        node_name = f"ip-{ip.replace('.', '-')}.{domain}"
        instance_id = "i-0" + _digest(
            cluster.account_id, cluster.region, cluster.name, str(number), length=16
        )
        ami_type = self.releases.ami_type(nodegroup.ami_type)
        arch = ami_type.kubernetes_arch if ami_type is not None else "amd64"
        cpus, memory_gib, max_pods = INSTANCE_TYPES.get(nodegroup.instance_type, DEFAULT_INSTANCE_SHAPE)
        labels = {
            **nodegroup.labels,
            NODEGROUP_LABEL: nodegroup.name,
            NODEGROUP_IMAGE_LABEL: image,
            CAPACITY_TYPE_LABEL: nodegroup.capacity_type,
            ZONE_LABEL: zone,
            REGION_LABEL: cluster.region,
            INSTANCE_TYPE_LABEL: nodegroup.instance_type,
            "beta.kubernetes.io/instance-type": nodegroup.instance_type,
            "kubernetes.io/os": "linux",
            "beta.kubernetes.io/os": "linux",
            "kubernetes.io/arch": arch,
            "beta.kubernetes.io/arch": arch,
            "kubernetes.io/hostname": node_name,
        }
        if nodegroup.launch_template is not None:
            labels[SOURCE_LAUNCH_TEMPLATE_ID_LABEL] = nodegroup.launch_template["id"]
            labels[SOURCE_LAUNCH_TEMPLATE_VERSION_LABEL] = (
                launch_template_version or nodegroup.launch_template["version"]
            )
        stamp = _stamp(at)
        kubelet = kubelet_version(release_version)
        family = ami_type.family if ami_type is not None else "AL2023"
        allocatable = {
            "cpu": f"{cpus * 1000 - 70}m",
            "memory": f"{memory_gib * 1024 * 1024 - 900 * 1024}Ki",
            "pods": str(max_pods),
            "ephemeral-storage": "18242267924",
        }
        node = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node_name,
                "creationTimestamp": stamp,
                "labels": labels,
                "annotations": {
                    "alpha.kubernetes.io/provided-node-ip": ip,
                    "node.alpha.kubernetes.io/ttl": "0",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                },
            },
            "spec": {
                "providerID": f"aws:///{zone}/{instance_id}",
                "taints": [] if ready else [{"key": NOT_READY_TAINT, "effect": "NoSchedule"}],
            },
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": ip},
                    {"type": "InternalDNS", "address": node_name},
                    {"type": "Hostname", "address": node_name},
                ],
                "capacity": {
                    "cpu": str(cpus),
                    "memory": f"{memory_gib * 1024 * 1024}Ki",
                    "pods": str(max_pods),
                    "ephemeral-storage": "20959212Ki",
                },
                "allocatable": allocatable,
                "conditions": _node_conditions(ready, at),
                "nodeInfo": {
                    "architecture": arch,
                    "bootID": stable_uuid("boot", instance_id),
                    "containerRuntimeVersion": "containerd://1.7.27",
                    "kernelVersion": "6.1.0-amzn2023.x86_64" if family == "AL2023" else "5.10.0-amzn2.x86_64",
                    "kubeProxyVersion": kubelet,
                    "kubeletVersion": kubelet,
                    "machineID": _digest("machine", instance_id, length=32),
                    "operatingSystem": "linux",
                    "osImage": "Amazon Linux 2023" if family == "AL2023" else "Amazon Linux 2",
                    "systemUUID": stable_uuid("system", instance_id),
                },
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            },
        }
        cluster.store.put(node, NODE_FIELD_MANAGER)
        if record:
            self.record(nodegroup, at, node_name, "launched", update_id=update_id)
        return node_name

    def mark_node_ready(self, nodegroup: Nodegroup, node_name: str, at: datetime) -> None:
        store = nodegroup.cluster.store

        def ready(node: dict[str, Any]) -> None:
            node["status"]["conditions"] = _node_conditions(True, at)
            node["spec"]["taints"] = [
                t for t in node["spec"].get("taints", []) if t["key"] != NOT_READY_TAINT
            ]

        store.mutate("Node", "", node_name, ready)

    def nodes_of(self, nodegroup: Nodegroup) -> list[dict[str, Any]]:
        return nodegroup.cluster.store.list("Node", labels={NODEGROUP_LABEL: nodegroup.name})

    def cordon(self, nodegroup: Nodegroup, node_name: str, at: datetime, update_id: str) -> None:
        def cordon(node: dict[str, Any]) -> None:
            node["spec"]["unschedulable"] = True
            taints = node["spec"].setdefault("taints", [])
            if not any(t["key"] == UNSCHEDULABLE_TAINT for t in taints):
                taints.append({"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule", "timeAdded": _stamp(at)})
            node["metadata"].setdefault("labels", {})[EXCLUDE_FROM_LB_LABEL] = "true"

        nodegroup.cluster.store.mutate("Node", "", node_name, cordon)
        self.record(nodegroup, at, node_name, "cordoned", update_id=update_id)

    def uncordon(self, nodegroup: Nodegroup, node_name: str, at: datetime, update_id: str) -> None:
        def uncordon(node: dict[str, Any]) -> None:
            node["spec"].pop("unschedulable", None)
            node["spec"]["taints"] = [
                t for t in node["spec"].get("taints", []) if t["key"] != UNSCHEDULABLE_TAINT
            ]
            node["metadata"].get("labels", {}).pop(EXCLUDE_FROM_LB_LABEL, None)

        if nodegroup.cluster.store.get("Node", "", node_name) is None:
            return
        nodegroup.cluster.store.mutate("Node", "", node_name, uncordon)
        self.record(nodegroup, at, node_name, "uncordoned", update_id=update_id)

    def remove_node(self, nodegroup: Nodegroup, node_name: str, at: datetime) -> None:
        """The instance is terminated: its Node object goes, and with it the Pods still bound to it."""
        cluster = nodegroup.cluster
        store = cluster.store
        store.delete("Node", "", node_name)
        touched: set[str] = set()
        for pod in store.list("Pod"):
            if pod.get("spec", {}).get("nodeName") != node_name or _is_daemonset_pod(pod):
                continue
            # Normally nothing is left after a drain: these Pods are lost with the node and their
            # controllers replace them.
            store.delete("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
            self.replace_pod(cluster, pod, at)
            touched.add(pod["metadata"]["namespace"])
        self._resync_addon_pods(cluster.name)  # the node's DaemonSet Pods go with it
        for namespace in touched:
            refresh_budgets(store, namespace)

    def record(
        self,
        nodegroup: Nodegroup,
        at: datetime,
        node: str,
        event: str,
        *,
        update_id: str | None = None,
        pod: str | None = None,
    ) -> None:
        entry: dict[str, Any] = {"at": at, "node": node, "event": event}
        if pod is not None:
            entry["pod"] = pod
        if update_id is not None:
            entry["update"] = update_id
        nodegroup.timeline.append(entry)

    # ---- workloads --------------------------------------------------------------------------------

    def add_workload(
        self,
        cluster: ClusterRef,
        *,
        namespace: str,
        name: str,
        kind: str,
        replicas: int,
        nodegroup: str | None,
        pdb: dict[str, Any] | None,
        readiness_probe: bool,
        labels: dict[str, str],
        at: datetime,
    ) -> None:
        store = cluster.store
        if kind not in ("Deployment", "StatefulSet"):
            raise ValueError(f"workload kind {kind!r} is not simulated; use Deployment or StatefulSet")
        if store.get(kind, namespace, name) is not None:
            raise ValueError(f"{kind} {namespace}/{name} already exists in {cluster.name}")
        if nodegroup is not None and (cluster.name, nodegroup) not in self.nodegroups:
            raise ValueError(f"unknown node group {nodegroup!r} in {cluster.name}")
        if pdb is not None and ("minAvailable" in pdb) == ("maxUnavailable" in pdb):
            raise ValueError("a pdb needs exactly one of minAvailable and maxUnavailable")
        stamp = _stamp(at)
        if store.get("Namespace", "", namespace) is None:
            store.put(
                {
                    "kind": "Namespace",
                    "metadata": {
                        "name": namespace,
                        "creationTimestamp": stamp,
                        "labels": {"kubernetes.io/metadata.name": namespace},
                    },
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
                WORKLOAD_FIELD_MANAGER,
            )
        container: dict[str, Any] = {
            "name": name,
            "image": "public.ecr.aws/nginx/nginx:1.27",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
        }
        if readiness_probe:
            container["readinessProbe"] = {
                "httpGet": {"path": "/", "port": 80, "scheme": "HTTP"},
                "periodSeconds": 5,
                "failureThreshold": 3,
                "successThreshold": 1,
                "timeoutSeconds": 1,
            }
        pod_spec: dict[str, Any] = {
            "containers": [container],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "schedulerName": "default-scheduler",
        }
        if nodegroup is not None:
            pod_spec["nodeSelector"] = {NODEGROUP_LABEL: nodegroup}
        template = {"metadata": {"labels": dict(labels)}, "spec": pod_spec}
        workload: dict[str, Any] = {
            "apiVersion": KINDS[kind][0],
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": dict(labels),
                "generation": 1,
                "creationTimestamp": stamp,
            },
            "spec": {"replicas": replicas, "selector": {"matchLabels": dict(labels)}, "template": template},
        }
        if kind == "Deployment":
            workload["spec"]["strategy"] = {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            }
            workload["spec"]["revisionHistoryLimit"] = 10
            workload["spec"]["progressDeadlineSeconds"] = 600
        else:
            workload["spec"]["serviceName"] = name
            workload["spec"]["podManagementPolicy"] = "OrderedReady"
            workload["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        created = store.put(workload, WORKLOAD_FIELD_MANAGER)
        revision = _digest(repr(sorted(labels.items())), repr(pod_spec), length=10)
        owner_ref = {
            "apiVersion": KINDS[kind][0],
            "kind": kind,
            "name": name,
            "uid": created["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        if kind == "Deployment":
            rs_name = f"{name}-{revision}"
            rs_labels = {**labels, "pod-template-hash": revision}
            replica_set = store.put(
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "metadata": {
                        "name": rs_name,
                        "namespace": namespace,
                        "labels": rs_labels,
                        "generation": 1,
                        "creationTimestamp": stamp,
                        "annotations": {"deployment.kubernetes.io/revision": "1"},
                        "ownerReferences": [owner_ref],
                    },
                    "spec": {
                        "replicas": replicas,
                        "selector": {"matchLabels": rs_labels},
                        "template": {"metadata": {"labels": rs_labels}, "spec": copy.deepcopy(pod_spec)},
                    },
                },
                "kube-controller-manager",
            )
            pod_owner = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": rs_name,
                "uid": replica_set["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
            pod_names = [self._generated_pod_name(cluster.name, namespace, rs_name) for _ in range(replicas)]
            pod_labels = [rs_labels for _ in range(replicas)]
        else:
            pod_owner = owner_ref
            pod_names = [f"{name}-{i}" for i in range(replicas)]
            pod_labels = [
                {
                    **labels,
                    "controller-revision-hash": f"{name}-{revision}",
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(i),
                }
                for i, pod_name in enumerate(pod_names)
            ]
        for pod_name, these_labels in zip(pod_names, pod_labels, strict=True):
            pod: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": dict(these_labels),
                    "creationTimestamp": stamp,
                    "ownerReferences": [dict(pod_owner)],
                },
                "spec": copy.deepcopy(pod_spec),
            }
            if kind == "StatefulSet":
                pod["spec"]["hostname"] = pod_name
                pod["spec"]["subdomain"] = name
            node = self._pick_node(store, pod)
            if node is not None:
                pod["spec"]["nodeName"] = node
            pod["status"] = _pod_status(pod, at, bound=node is not None, ready=node is not None)
            put = store.put(pod, POD_FIELD_MANAGER)
            if node is None:
                self._becomes_ready.add((cluster.name, put["metadata"]["uid"]))
        if pdb is not None:
            budget_spec: dict[str, Any] = {"selector": {"matchLabels": dict(labels)}}
            for key in ("minAvailable", "maxUnavailable"):
                if key in pdb:
                    budget_spec[key] = pdb[key]
            store.put(
                {
                    "apiVersion": "policy/v1",
                    "kind": "PodDisruptionBudget",
                    "metadata": {
                        "name": pdb.get("name", name),
                        "namespace": namespace,
                        "generation": 1,
                        "creationTimestamp": stamp,
                    },
                    "spec": budget_spec,
                },
                WORKLOAD_FIELD_MANAGER,
            )
        refresh_controller_status(store, pod_owner, namespace)
        refresh_budgets(store, namespace)

    def _generated_pod_name(self, cluster: str, namespace: str, prefix: str) -> str:
        return f"{prefix}-{_name_suffix(cluster, namespace, prefix, str(next(self._pod_counter)))}"

    def set_pod_ready(
        self, cluster: ClusterRef, namespace: str, name: str, ready: bool, at: datetime
    ) -> None:
        store = cluster.store
        pod = store.get("Pod", namespace, name)
        if pod is None:
            raise ValueError(f"no Pod {namespace}/{name} in {cluster.name}")
        if not pod.get("spec", {}).get("nodeName"):
            raise ValueError(f"Pod {namespace}/{name} is not scheduled yet; it has no readiness to set")
        self._pinned_readiness.add((cluster.name, pod["metadata"]["uid"]))
        store.mutate("Pod", namespace, name, lambda obj: _set_pod_readiness(obj, ready, at))
        refresh_controller_status(store, _owner(pod), namespace)
        refresh_budgets(store, namespace)

    # ---- controllers: replacement Pods, scheduling, readiness ----------------------------------------

    def _pick_node(self, store: KubeStore, pod: dict[str, Any]) -> str | None:
        """A Ready, schedulable node the Pod fits on: the one with the fewest Pods of the same owner,
        then the fewest Pods (the default scheduler's spreading, roughly)."""
        pods = store.list("Pod")
        owner = _owner(pod)
        owner_uid = owner.get("uid") if owner else None
        best: tuple[int, int, str] | None = None
        for node in store.list("Node"):
            if not _node_is_schedulable(node) or not _fits(pod, node):
                continue
            node_name = node["metadata"]["name"]
            on_node = [p for p in pods if p.get("spec", {}).get("nodeName") == node_name]
            if len(on_node) >= int(node["status"].get("allocatable", {}).get("pods", "110")):
                continue
            same_owner = sum(1 for p in on_node if owner_uid and (_owner(p) or {}).get("uid") == owner_uid)
            candidate = (same_owner, len(on_node), node_name)
            if best is None or candidate < best:
                best = candidate
        return best[2] if best else None

    def replace_pod(self, cluster: ClusterRef, evicted: dict[str, Any], at: datetime) -> str | None:
        """What the evicted Pod's controller does: create a replacement (a ReplicaSet Pod gets a new
        name; a StatefulSet Pod, and an add-on Deployment's Pod, whose names are fixed slots in the
        add-on code, keep theirs). It turns Ready POD_READY_SECONDS after it is bound, if the
        evicted Pod was Ready [INF]. Returns the replacement's name (None: no controller)."""
        owner = _owner(evicted)
        if owner is None or owner.get("kind") not in ("ReplicaSet", "StatefulSet", "Deployment"):
            return None
        store = cluster.store
        namespace = evicted["metadata"]["namespace"]
        if store.get(owner["kind"], namespace, owner["name"]) is None:
            return None
        name = evicted["metadata"]["name"]
        if owner["kind"] == "ReplicaSet":
            name = self._generated_pod_name(cluster.name, namespace, owner["name"])
        if store.get("Pod", namespace, name) is not None:
            return None
        meta = evicted["metadata"]
        pod: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                key: copy.deepcopy(meta[key])
                for key in ("namespace", "labels", "annotations", "ownerReferences")
                if key in meta
            },
            "spec": copy.deepcopy(evicted.get("spec") or {}),
        }
        pod["metadata"]["name"] = name
        pod["metadata"]["creationTimestamp"] = _stamp(at)
        pod["spec"].pop("nodeName", None)
        node = self._pick_node(store, pod)
        if node is not None:
            pod["spec"]["nodeName"] = node
        pod["status"] = _pod_status(pod, at, bound=node is not None, ready=False)
        created = store.put(pod, POD_FIELD_MANAGER)
        uid = created["metadata"]["uid"]
        if _is_ready(evicted):
            self._becomes_ready.add((cluster.name, uid))
            if node is not None:
                self.at(
                    at + timedelta(seconds=POD_READY_SECONDS),
                    self._ready_later(cluster, namespace, name, uid),
                )
        refresh_controller_status(store, owner, namespace)
        return name

    def _ready_later(
        self, cluster: ClusterRef, namespace: str, name: str, uid: str
    ) -> Callable[[datetime], None]:
        def turn_ready(at: datetime) -> None:
            key = (cluster.name, uid)
            if key not in self._becomes_ready:
                return
            self._becomes_ready.discard(key)
            pod = cluster.store.get("Pod", namespace, name)
            if pod is None or pod["metadata"]["uid"] != uid or key in self._pinned_readiness:
                return
            cluster.store.mutate("Pod", namespace, name, lambda obj: _set_pod_readiness(obj, True, at))
            refresh_controller_status(cluster.store, _owner(pod), namespace)
            refresh_budgets(cluster.store, namespace)

        return turn_ready

    def schedule_pending(self, cluster: ClusterRef, at: datetime) -> None:
        """Bind the Pods that have no node (DaemonSet Pods are the add-on code's) to a node that fits."""
        store = cluster.store
        touched: set[str] = set()
        for pod in store.list("Pod"):
            if pod.get("spec", {}).get("nodeName") or _is_daemonset_pod(pod):
                continue
            node = self._pick_node(store, pod)
            if node is None:
                continue
            namespace, name, uid = (
                pod["metadata"]["namespace"],
                pod["metadata"]["name"],
                pod["metadata"]["uid"],
            )
            pending = pod.get("status", {}).get("phase") == "Pending"

            def bind(obj: dict[str, Any], node: str = node, pending: bool = pending) -> None:
                obj["spec"]["nodeName"] = node
                if pending:
                    obj["status"] = _pod_status(obj, at, bound=True, ready=False)

            store.mutate("Pod", namespace, name, bind)
            if pending and (cluster.name, uid) in self._becomes_ready:
                self.at(
                    at + timedelta(seconds=POD_READY_SECONDS),
                    self._ready_later(cluster, namespace, name, uid),
                )
            touched.add(namespace)
            refresh_controller_status(store, _owner(pod), namespace)
        for namespace in touched:
            refresh_budgets(store, namespace)

    def evict(self, cluster: ClusterRef, pod: dict[str, Any], at: datetime) -> str | None:
        """Evict through the eviction API's own code; None if the Pod went, else why it was refused."""
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        store = cluster.store
        try:
            evict_pod(store, namespace, name)
        except ApiError as refused:
            if refused.code == 404:
                return None
            if refused.code == 429:
                budgets = [
                    b["metadata"]["name"]
                    for b in store.list("PodDisruptionBudget", namespace)
                    if selector_matches(
                        (b.get("spec") or {}).get("selector"), pod["metadata"].get("labels") or {}
                    )
                ]
                return f"eviction refused by pdb {', '.join(budgets)}"
            return f"eviction refused: {refused.message}"
        self.replace_pod(cluster, pod, at)
        refresh_budgets(store, namespace)
        return None

    def force_delete(self, cluster: ClusterRef, pod: dict[str, Any], at: datetime) -> None:
        namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        cluster.store.delete("Pod", namespace, name)
        self.replace_pod(cluster, pod, at)
        refresh_budgets(cluster.store, namespace)

    # ---- updates --------------------------------------------------------------------------------

    def start_version_update(
        self,
        nodegroup: Nodegroup,
        update: NodegroupUpdate,
        *,
        target_release: str,
        custom_ami_id: str | None,
        launch_template_version: str | None,
        force: bool,
    ) -> None:
        never_ready = next((f for f in nodegroup.faults if f["type"] == "nodes_never_ready"), None)
        if never_ready is not None:
            nodegroup.faults.remove(never_ready)
        roll = _Roll(
            self,
            nodegroup,
            update,
            target_release=target_release,
            custom_ami_id=custom_ami_id,
            launch_template_version=launch_template_version,
            force=force,
            nodes_never_ready=never_ready is not None,
        )
        self._begin(nodegroup, update)
        self.rolls[update.id] = roll
        roll.start()

    def start_config_update(
        self, nodegroup: Nodegroup, update: NodegroupUpdate, update_config: dict[str, Any]
    ) -> None:
        self._begin(nodegroup, update)

        def finish(at: datetime) -> None:
            nodegroup.update_config = dict(update_config)
            nodegroup.status = "ACTIVE"
            nodegroup.modified_at = at
            update.status = "Successful"
            update.finished_at = at

        self.at(update.created_at + timedelta(seconds=CONFIG_UPDATE_SECONDS), finish)

    def _begin(self, nodegroup: Nodegroup, update: NodegroupUpdate) -> None:
        nodegroup.updates.append(update)
        self.updates[update.id] = update
        nodegroup.status = "UPDATING"
        nodegroup.modified_at = update.created_at


def _node_conditions(ready: bool, at: datetime) -> list[dict[str, Any]]:
    stamp = _stamp(at)
    pressure = [
        ("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
        ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
        ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ]
    conditions = [
        {
            "type": kind,
            "status": "False",
            "reason": reason,
            "message": message,
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
        for kind, reason, message in pressure
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status"
            if ready
            else "container runtime network not ready: NetworkReady=false",
            "lastHeartbeatTime": stamp,
            "lastTransitionTime": stamp,
        }
    )
    return conditions


# ==== the roll =====================================================================================


@dataclass
class _Drain:
    started: datetime
    noted_refusals: set[tuple[str, str]] = field(default_factory=set)
    # The Pods still to evict. Retries look only at these; the node is listed again before it
    # counts as drained, so a Pod that arrived meanwhile is not missed.
    pods: list[dict[str, Any]] | None = None


class _Roll:
    """One UpdateNodegroupVersion, phase by phase (FIDELITY 1.30-1.47)."""

    def __init__(
        self,
        world: NodegroupWorld,
        nodegroup: Nodegroup,
        update: NodegroupUpdate,
        *,
        target_release: str,
        custom_ami_id: str | None,
        launch_template_version: str | None,
        force: bool,
        nodes_never_ready: bool,
    ) -> None:
        self.world = world
        self.nodegroup = nodegroup
        self.update = update
        self.target_release = target_release
        self.custom_ami_id = custom_ami_id
        self.launch_template_version = launch_template_version
        self.force = force
        self.nodes_never_ready = nodes_never_ready
        self.rng = random.Random(update.id)
        self.strategy = nodegroup.strategy
        self.phase = "setup"
        self.done = False
        nodes = world.nodes_of(nodegroup)
        # [INF] Every node present when the update starts is replaced: each update writes a new
        # launch template version (1.31), so none runs the new one yet.
        self.old_nodes: dict[str, str] = {
            n["metadata"]["name"]: n["metadata"]["labels"].get(ZONE_LABEL, "") for n in nodes
        }
        self.remaining_old: set[str] = set(self.old_nodes)
        self.max_unavailable = nodegroup.max_unavailable(len(nodes))
        self.zone_plan = _round_robin_zones(list(self.old_nodes.values()))
        ng_zones = {zone for _, zone in nodegroup.subnets}
        # 1.37: the ASG grows by the larger of 2 x its AZs and maxUnavailable; the simulator never
        # launches more new nodes than there are old ones to replace. MINIMAL launches none (1.43-1.45).
        surge = max(2 * len(ng_zones), self.max_unavailable)
        self.surge = 0 if self.strategy == "MINIMAL" else min(surge, len(self.old_nodes))
        self.launched: list[str] = []
        self.ready: set[str] = set()
        self.draining: dict[str, _Drain] = {}
        self.awaiting_termination: set[str] = set()
        self.cordoned = False

    # ---- helpers ----------------------------------------------------------------------------------

    def _at(self, when: datetime, action: Callable[[datetime], None]) -> None:
        self.world.at(when, action, self)

    def _record(self, at: datetime, node: str, event: str, pod: str | None = None) -> None:
        self.world.record(self.nodegroup, at, node, event, update_id=self.update.id, pod=pod)

    def state(self) -> dict[str, Any]:
        return {
            "updateId": self.update.id,
            "phase": self.phase,
            "strategy": self.strategy,
            "maxUnavailable": self.max_unavailable,
            "force": self.force,
            "targetReleaseVersion": self.target_release,
            "oldNodes": sorted(self.remaining_old),
            "newNodes": list(self.launched),
            "draining": sorted(self.draining),
            "awaitingTermination": sorted(self.awaiting_termination),
            "forceEvicted": list(self.update.force_evicted),
        }

    # ---- phases -----------------------------------------------------------------------------------

    def start(self) -> None:
        self._at(self.update.created_at + timedelta(seconds=SETUP_SECONDS), self.scale_up)

    def scale_up(self, at: datetime) -> None:
        self.phase = "scale up"
        for zone in self.zone_plan[: self.surge]:
            self.launch(at, zone)
        if not self.launched:
            self.begin_upgrade(at)

    def launch(self, at: datetime, zone: str) -> None:
        node = self.world.launch_node(
            self.nodegroup,
            zone,
            at,
            ready=False,
            release_version=self.target_release,
            custom_ami_id=self.custom_ami_id,
            launch_template_version=self.launch_template_version,
            update_id=self.update.id,
        )
        self.launched.append(node)
        if self.nodes_never_ready:
            self._at(at + timedelta(seconds=NODE_JOIN_TIMEOUT_SECONDS), self.join_timeout(node))
        else:
            self._at(at + timedelta(seconds=NODE_READY_SECONDS), self.node_ready(node))

    def node_ready(self, node: str) -> Callable[[datetime], None]:
        def ready(at: datetime) -> None:
            self.world.mark_node_ready(self.nodegroup, node, at)
            self.ready.add(node)
            self._record(at, node, "ready")
            self.world.schedule_pending(self.nodegroup.cluster, at)
            if self.phase == "scale up" and all(n in self.ready for n in self.launched):
                self.begin_upgrade(at)
            elif self.phase == "upgrade":
                self.fill(at)

        return ready

    def join_timeout(self, node: str) -> Callable[[datetime], None]:
        def timeout(at: datetime) -> None:
            if node in self.ready:
                return
            stuck = [n for n in self.launched if n not in self.ready]
            instance_ids = [self._instance_id(n) for n in stuck]
            for name in stuck:
                self.world.remove_node(self.nodegroup, name, at)
                self._record(at, name, "terminated (never joined)")
            self.nodegroup.health_issues = [
                {
                    "code": "NodeCreationFailure",
                    "message": NODES_NOT_JOINING_ISSUE,
                    "resourceIds": instance_ids,
                }
            ]
            # [INF] resourceIds: the instances that did not join.
            self.fail(
                at,
                "NodeCreationFailure",
                NODE_CREATION_FAILURE_MESSAGE.format(nodegroup=self.nodegroup.name),
                instance_ids,
            )

        return timeout

    def _instance_id(self, node: str) -> str:
        obj = self.nodegroup.cluster.store.get("Node", "", node)
        provider = (obj or {}).get("spec", {}).get("providerID", "")
        return provider.rsplit("/", 1)[-1] or node

    def begin_upgrade(self, at: datetime) -> None:
        # 1.39: old nodes are marked unschedulable and excluded from load balancers. [INF] MINIMAL
        # marks them too, so evicted Pods wait for the replacement nodes.
        self.phase = "upgrade"
        for node in sorted(self.remaining_old):
            self.world.cordon(self.nodegroup, node, at, self.update.id)
        self.cordoned = True
        self.fill(at)

    def fill(self, at: datetime) -> None:
        """Keep up to maxUnavailable old nodes draining or waiting for termination (1.42.2)."""
        while not self.done and len(self.draining) + len(self.awaiting_termination) < self.max_unavailable:
            candidates = sorted(self.remaining_old - set(self.draining) - self.awaiting_termination)
            if not candidates:
                break
            node = self.rng.choice(candidates)
            self.draining[node] = _Drain(started=at)
            self._record(at, node, "drain started")
            self.drain(node)(at)
        self.maybe_finish(at)

    def drain(self, node: str) -> Callable[[datetime], None]:
        def attempt(at: datetime) -> None:
            state = self.draining.get(node)
            if state is None:
                return
            cluster = self.nodegroup.cluster
            remaining: list[dict[str, Any]] = []
            for known in state.pods if state.pods is not None else self._evictable_pods(node):
                pod = cluster.store.get("Pod", known["metadata"]["namespace"], known["metadata"]["name"])
                if (
                    pod is None
                    or pod["metadata"]["uid"] != known["metadata"]["uid"]
                    or pod.get("spec", {}).get("nodeName") != node
                ):
                    continue
                pod_key = _pod_key(pod)
                refusal = self.world.evict(cluster, pod, at)
                if refusal is None:
                    self._record(at, node, f"evicted pod {pod_key}", pod=pod_key)
                    continue
                elapsed = (at - state.started).total_seconds()
                if self.force and elapsed >= self.world.force_delete_after_seconds:
                    self.world.force_delete(cluster, pod, at)
                    self.update.force_evicted.append(pod_key)
                    self._record(at, node, f"force-evicted pod {pod_key}", pod=pod_key)
                    continue
                if (pod_key, refusal) not in state.noted_refusals:
                    state.noted_refusals.add((pod_key, refusal))
                    self._record(at, node, refusal, pod=pod_key)
                remaining.append(pod)
            state.pods = remaining or self._evictable_pods(node)
            if not state.pods:
                del self.draining[node]
                self.awaiting_termination.add(node)
                self._record(at, node, "drained")
                self._at(at + timedelta(seconds=TERMINATE_AFTER_DRAIN_SECONDS), self.terminate(node))
                return
            if (at - state.started).total_seconds() >= DRAIN_TIMEOUT_SECONDS:
                stuck = sorted(
                    name
                    for name, drain in self.draining.items()
                    if (at - drain.started).total_seconds() >= DRAIN_TIMEOUT_SECONDS
                )
                self.fail(
                    at,
                    "PodEvictionFailure",
                    POD_EVICTION_FAILURE_MESSAGE.format(nodegroup=self.nodegroup.name),
                    stuck,
                )
                return
            self._at(at + timedelta(seconds=EVICTION_RETRY_SECONDS), attempt)

        return attempt

    def _evictable_pods(self, node: str) -> list[dict[str, Any]]:
        """What `kubectl drain --ignore-daemonsets` evicts: every Pod on the node but DaemonSet Pods
        and Pods that have already finished."""
        return [
            pod
            for pod in self.nodegroup.cluster.store.list("Pod")
            if pod.get("spec", {}).get("nodeName") == node
            and not _is_daemonset_pod(pod)
            and pod.get("status", {}).get("phase") not in ("Succeeded", "Failed")
        ]

    def terminate(self, node: str) -> Callable[[datetime], None]:
        def terminate(at: datetime) -> None:
            zone = self.old_nodes.get(node, "")
            self.world.remove_node(self.nodegroup, node, at)
            self._record(at, node, "terminated")
            self.awaiting_termination.discard(node)
            self.remaining_old.discard(node)
            if self.strategy == "MINIMAL":
                # 1.43: the ASG replaces the missing capacity after the termination.
                self.launch(at, zone)
            elif len(self.launched) < len(self.zone_plan):
                self.launch(at, self.zone_plan[len(self.launched)])
            self.fill(at)

        return terminate

    def maybe_finish(self, at: datetime) -> None:
        if self.done or self.phase != "upgrade":
            return
        if self.remaining_old or self.draining or self.awaiting_termination:
            return
        if any(n not in self.ready for n in self.launched):
            return
        self.phase = "scale down"
        nodes = self.world.nodes_of(self.nodegroup)
        surplus = len(nodes) - self.nodegroup.desired_size
        if surplus > 0:
            store = self.nodegroup.cluster.store
            pods = store.list("Pod")
            for node in sorted((n["metadata"]["name"] for n in nodes), reverse=True):
                if surplus <= 0:
                    break
                busy = any(
                    p.get("spec", {}).get("nodeName") == node and not _is_daemonset_pod(p) for p in pods
                )
                if busy:
                    continue  # [INF] a surplus node that already runs workload Pods is kept
                self.world.remove_node(self.nodegroup, node, at)
                self._record(at, node, "terminated")
                surplus -= 1
        self.succeed(at)

    # ---- outcomes ---------------------------------------------------------------------------------

    def succeed(self, at: datetime) -> None:
        nodegroup = self.nodegroup
        nodegroup.release_version = self.target_release
        if self.custom_ami_id is not None:
            nodegroup.custom_ami_id = self.custom_ami_id
        if nodegroup.launch_template is not None and self.launch_template_version is not None:
            nodegroup.launch_template["version"] = self.launch_template_version
        nodegroup.health_issues = []
        self._close(at, "Successful")
        self.phase = "done"

    def fail(self, at: datetime, code: str, message: str, resource_ids: list[str]) -> None:
        """FIDELITY 1.27: the node group goes back to its previous configuration and to ACTIVE.
        [INF] New nodes already launched stay; old nodes not yet terminated are un-cordoned."""
        self.update.errors = [{"errorCode": code, "errorMessage": message, "resourceIds": list(resource_ids)}]
        if self.cordoned:
            for node in sorted(self.remaining_old):
                self.world.uncordon(self.nodegroup, node, at, self.update.id)
        self.draining.clear()
        self.awaiting_termination.clear()
        self._close(at, "Failed")
        self.phase = "failed"
        self.world.schedule_pending(self.nodegroup.cluster, at)

    def _close(self, at: datetime, status: str) -> None:
        self.done = True
        self.update.status = status
        self.update.finished_at = at
        self.nodegroup.status = "ACTIVE"
        self.nodegroup.modified_at = at


def _round_robin_zones(zones: list[str]) -> list[str]:
    """One zone per node to replace, taking the zones in turn: [a, a, b] -> [a, b, a] (1.36)."""
    left = {zone: zones.count(zone) for zone in sorted(set(zones))}
    plan: list[str] = []
    while any(left.values()):
        for zone in sorted(left):
            if left[zone]:
                plan.append(zone)
                left[zone] -= 1
    return plan
