"""A stateful, in-process stand-in for the Amazon EKS API (add-ons, managed node groups, updates).

The product's Lambdas call EKS through botocore; the rehearsal routes those calls to
`EksSimulator.call(operation, params)`, which takes botocore operation names and parameters and
returns botocore-style parsed responses. Behaviour follows FIDELITY.md §1 (UpdateNodegroupVersion),
§2 (UpdateAddon), §3 (UpdateClusterVersion, upgrade insights, DescribeClusterVersions) and §4
(DescribeUpdate). Where AWS does not document the behaviour, the choice made
here is marked [INF]. The node group model and the roll of an update are in `nodegroups.py`.

Time is simulated: an update finishes at `created_at + duration` on the rehearsal clock, and is
finalised lazily by the first call that runs at or after that moment (no threads, no sleeping). A node
group update is a series of such moments (nodes launched, Ready, drained, terminated), run in order.
"""

from __future__ import annotations

import base64
import binascii
import collections
import copy
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

import yaml
from autopatch.fields import FieldPath, fieldsv1_to_paths, format_path, get_path, item_step, parse_path
from jsonschema import Draft6Validator, ValidationError

from rehearsal.eks.catalog import (
    POD_IDENTITY_CONFIGURATION,
    AddonCatalog,
    AddonVersion,
    AmiRelease,
    AmiReleaseCatalog,
    addon_minor,
    configuration_schema,
    default_addon_catalog,
    default_ami_releases,
    derived_ami_id,
    minor_key,
    release_kubelet,
    release_minor,
    release_order,
)
from rehearsal.eks.insights import ClusterFacts, upgrade_insights
from rehearsal.eks.manifests import (
    ADDON_WORKLOADS,
    EKS_FIELD_MANAGER,
    ClusterInfo,
    addon_manifests,
    sync_addon_pods,
)
from rehearsal.eks.nodegroups import (
    CAPACITY_TYPES,
    NODEGROUP_FAULT_TYPES,
    UPDATE_STRATEGIES,
    ClusterRef,
    Nodegroup,
    NodegroupUpdate,
    NodegroupWorld,
)
from rehearsal.eks.versions import cluster_versions, is_released, kubernetes_versions, version_entry
from rehearsal.kube.store import KINDS, KubeStore, ObjectKey


class Clock(Protocol):
    def now(self) -> datetime:
        """The current simulated time, timezone-aware UTC."""
        ...


class EksApiError(Exception):
    """An error the EKS API would return; `code` is the botocore error code."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def error_response(self) -> dict[str, Any]:
        """The parsed error body botocore puts into `ClientError.response`."""
        return {
            "Error": {"Code": self.code, "Message": self.message},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }


def _invalid_parameter(message: str) -> EksApiError:
    return EksApiError("InvalidParameterException", message, 400)


def _invalid_request(message: str) -> EksApiError:
    return EksApiError("InvalidRequestException", message, 400)


def _not_found(message: str) -> EksApiError:
    return EksApiError("ResourceNotFoundException", message, 404)


def _in_use(message: str) -> EksApiError:
    return EksApiError("ResourceInUseException", message, 409)


def _invalid_state(message: str) -> EksApiError:
    return EksApiError("InvalidStateException", message, 400)


# Simulated time an add-on update takes unless a scenario sets `update_duration`. AWS states no
# figure for any add-on; these only keep updates in a plausible order of minutes. The EBS CSI driver
# rolls two workloads (controller and node plugin), so it gets the longest.
DEFAULT_UPDATE_SECONDS: dict[str, int] = {
    "coredns": 90,
    "kube-proxy": 120,
    "vpc-cni": 150,
    "aws-ebs-csi-driver": 180,
    "eks-pod-identity-agent": 120,
}
# Add-ons EKS moves by at most one minor version per update (FIDELITY 2.29-2.32), with the name
# the refusal uses. The vpc-cni wording is observed (2.32); the agent's is [INF]: the same pattern.
ONE_MINOR_PER_UPDATE: dict[str, str] = {
    "vpc-cni": "VPC-CNI",
    "eks-pod-identity-agent": "eks-pod-identity-agent",
}
RESOLVE_CONFLICTS_MODES = ("OVERWRITE", "NONE", "PRESERVE")
# FIDELITY 2.21: failed add-ons accept a new update.
UPDATABLE_STATUSES = ("ACTIVE", "UPDATE_FAILED", "DEGRADED")
FAULT_TYPES = ("update_fails", "pods_never_ready", "update_duration")
MAX_PAGE_SIZE = 100
# The add-ons here whose Pods call AWS APIs (the CNI: ENIs and IPs; the EBS CSI controller: volumes)
# need IAM permissions.
REQUIRES_IAM_PERMISSIONS = {"vpc-cni", "aws-ebs-csi-driver"}
CONFLICT_MESSAGE = (
    "Conflicts found when trying to apply. Will not continue due to resolve conflicts mode. Conflicts:"
)
SCHEMA_MESSAGE = (
    "ConfigurationValue provided in request is not supported: Json schema validation failed with error:"
)
# ---- managed node groups (FIDELITY §1) -----------------------------------------------------------
NODEGROUP_IN_USE_MESSAGE = "Nodegroup cannot be updated as it is currently not in Active State"  # [OBS] 1.20
CUSTOM_AMI_VERSION_MESSAGE = (
    "You cannot specify the field kubernetesVersion when using custom AMIs."  # [OBS] 1.16
)
# [INF] 1.14 forbids releaseVersion with a custom AMI too; the wording follows 1.16.
CUSTOM_AMI_RELEASE_MESSAGE = "You cannot specify the field releaseVersion when using custom AMIs."
CUSTOM_AMI_LAUNCH_TEMPLATE_MESSAGE = (
    "Launch template details can't be null for Custom ami type node group"  # [OBS] 1.17
)
# [DOC] 1.8 states the rule in these words; that EKS answers with this text is [INF].
ROLLBACK_MESSAGE = "You cannot roll back a node group to an earlier Kubernetes version or AMI version."
INVALID_RELEASE_MESSAGE = (
    "Requested release version {release} is not valid for kubernetes version {version}."  # [OBS] 1.12
)
ONLY_LATEST_RELEASE_MESSAGE = (  # [OBS] 1.13
    "Requested Nodegroup release version {release} is invalid. Allowed release version is {latest}"
)
KUBERNETES_VERSION_PATTERN = re.compile(r"^\d+\.\d+$")
# ---- control plane (FIDELITY §3) ----------------------------------------------------------------
# FIDELITY 3.10: one observed 1.30 -> 1.31 update took about 10 minutes; AWS states no figure.
CLUSTER_UPDATE_SECONDS = 600
CONTROL_PLANE_FAULT_TYPES = ("update_fails", "update_duration")
# FIDELITY 3.12: the update needs up to five free IP addresses in the cluster's subnets. Whether each
# subnet or all of them together must hold them is UNKNOWN (3.13): all of them together is used.
CLUSTER_UPDATE_FREE_IPS = 5
UPGRADE_PLATFORM_VERSION = "eks.1"  # FIDELITY 3.3
# [INF] 3.6-3.8 state the rules (one minor at a time, no downgrade); no refusal text is documented.
UNSUPPORTED_VERSION_UPDATE_MESSAGE = "Unsupported Kubernetes minor version update from {current} to {target}"
NODEGROUPS_MUST_MATCH_MESSAGE = (  # [OBS] 3.17
    "Nodegroups {names} must be updated to match cluster version {version} before updating cluster version"
)
UPGRADE_READINESS_MESSAGE = (  # [OBS] 3.19
    "Upgrade readiness issues detected. Call the EKS ListInsights API to view upgrade blocking issues "
    "detected by EKS. Pass the force flag to override upgrade readiness errors and proceed with upgrade."
)
CLUSTER_BUSY_MESSAGE = (  # [OBS] 1.21/1.22
    "Cannot {update_type} because cluster {cluster} currently has update {update_id} in progress"
)
INSIGHT_CATEGORIES = ("UPGRADE_READINESS", "MISCONFIGURATION", "ROLLBACK_READINESS")
INSIGHT_STATUSES = ("PASSING", "WARNING", "ERROR", "UNKNOWN")
INSIGHT_SUMMARY_KEYS = (
    "id",
    "name",
    "category",
    "kubernetesVersion",
    "lastRefreshTime",
    "lastTransitionTime",
    "description",
    "insightStatus",
)
UPDATE_CONFIG_KEYS = ("maxUnavailable", "maxUnavailablePercentage", "updateStrategy")
# UpdateNodegroupConfig changes the simulator does not model; asking for one is said loudly.
UNMODELLED_NODEGROUP_CONFIG = ("labels", "taints", "scalingConfig", "nodeRepairConfig", "warmPoolConfig")
# Used when the rehearsal gives a cluster no CA: the fake API endpoint is plain HTTP then.
PLACEHOLDER_CA = base64.b64encode(
    b"-----BEGIN CERTIFICATE-----\nsimulated cluster without a CA\n-----END CERTIFICATE-----\n"
).decode()


@dataclass(frozen=True)
class CustomerEdit:
    """A change made to an add-on object outside EKS: ground truth for tests and the report."""

    cluster: str
    kind: str
    namespace: str
    name: str
    path: FieldPath
    value: Any
    manager: str
    at: datetime


@dataclass
class _AddonUpdate:
    id: str
    cluster: str
    addon: str
    created_at: datetime
    finishes_at: datetime
    params: list[dict[str, str]]
    target_version: str
    resolve_conflicts: str | None
    configuration_values: str | None  # None: keep the add-on's current values
    service_account_role_arn: str | None  # None: unchanged
    pod_identity_associations: list[str] | None  # None: unchanged
    planned_failure: dict[str, Any] | None
    leaves_pods_unready: bool
    status: str = "InProgress"
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": "AddonUpdate",
            "params": copy.deepcopy(self.params),
            "createdAt": self.created_at,
            "errors": copy.deepcopy(self.errors),
        }


@dataclass(frozen=True)
class ClusterSubnet:
    """A subnet given to the cluster at creation (`resourcesVpcConfig.subnetIds`) and its free IPs."""

    subnet_id: str
    availability_zone: str
    free_ips: int


@dataclass
class _ClusterUpdate:
    """An UpdateClusterVersion in progress or done (FIDELITY 3.3/3.4/3.11)."""

    id: str
    cluster: str
    created_at: datetime
    finishes_at: datetime
    from_version: str
    target_version: str
    planned_failure: dict[str, Any] | None
    status: str = "InProgress"
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "type": "VersionUpdate",
            "params": [
                {"type": "Version", "value": self.target_version},
                {"type": "PlatformVersion", "value": UPGRADE_PLATFORM_VERSION},
            ],
            "createdAt": self.created_at,
            "errors": copy.deepcopy(self.errors),
        }


@dataclass
class _Addon:
    name: str
    version: str
    arn: str
    created_at: datetime
    modified_at: datetime
    status: str = "ACTIVE"
    configuration_values: str | None = None
    service_account_role_arn: str | None = None
    pod_identity_associations: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    health_issues: list[dict[str, Any]] = field(default_factory=list)
    pods_not_ready: bool = False


@dataclass
class _Cluster:
    name: str
    account_id: str
    region: str
    version: str
    platform_version: str
    endpoint: str
    ca_data: str | None
    store: KubeStore
    tags: dict[str, str]
    created_at: datetime
    node_count: int
    support_type: str
    status: str = "ACTIVE"
    addons: dict[str, _Addon] = field(default_factory=dict)
    updates: list[_AddonUpdate] = field(default_factory=list)
    faults: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    update_seconds: dict[str, int] = field(default_factory=dict)
    subnets: list[ClusterSubnet] = field(default_factory=list)
    vpc_id: str = ""
    security_group_ids: list[str] = field(default_factory=list)
    cluster_security_group_id: str = ""
    enforce_upgrade_insights: bool | None = None  # None: the simulator's setting
    cluster_updates: list[_ClusterUpdate] = field(default_factory=list)
    control_plane_faults: list[dict[str, Any]] = field(default_factory=list)
    control_plane_update_seconds: int = CLUSTER_UPDATE_SECONDS

    def running_cluster_update(self) -> _ClusterUpdate | None:
        return next((u for u in self.cluster_updates if u.status == "InProgress"), None)

    @property
    def info(self) -> ClusterInfo:
        return ClusterInfo(name=self.name, region=self.region)

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        return "aws-us-gov" if self.region.startswith("us-gov-") else "aws"

    @property
    def arn(self) -> str:
        return f"arn:{self.partition}:eks:{self.region}:{self.account_id}:cluster/{self.name}"


class EksSimulator:
    """EKS clusters with add-ons whose objects live in each cluster's `KubeStore`."""

    def __init__(
        self, clock: Clock, catalog: AddonCatalog | None = None, ami_releases: AmiReleaseCatalog | None = None
    ) -> None:
        self.clock = clock
        self.catalog = catalog or default_addon_catalog()
        self.ami_releases = ami_releases or default_ami_releases()
        self.calls: collections.Counter[str] = collections.Counter()
        self.call_log: list[tuple[str, dict[str, Any]]] = []
        self.customer_edits: list[CustomerEdit] = []
        self._clusters: dict[str, _Cluster] = {}
        self._updates: dict[str, _AddonUpdate] = {}
        self._cluster_updates: dict[str, _ClusterUpdate] = {}
        # insight id -> (status, when it took that status): lastTransitionTime
        self._insight_transitions: dict[str, tuple[str, datetime]] = {}
        self._idempotency: dict[tuple[str, str, str], tuple[str, str]] = {}
        # Lambdas of several executions may call at once; every state change happens under this lock.
        self._lock = threading.RLock()
        self._nodegroups = NodegroupWorld(self.ami_releases, self.resync_addon_pods)
        # FIDELITY 1.5/1.6: what UpdateNodegroupVersion does without `version` is UNKNOWN. "cluster":
        # the cluster's version (the current API model's text); "nodegroup": the node group's own.
        self.nodegroup_default_version = "cluster"
        # FIDELITY 1.13: whether a release other than the newest is accepted is UNKNOWN. False accepts
        # any published release that is not a rollback; True only the newest, as EKS did in 2021.
        self.nodegroup_only_latest_release = False
        # Ids of new node group updates. A test may fix them: a roll's random choices follow the id.
        self.new_update_id: Callable[[], str] = lambda: str(uuid.uuid4())
        # FIDELITY 3.19-3.22: whether UpdateClusterVersion refuses to start while an upgrade insight for
        # the target version is ERROR (unless `force`) is UNKNOWN today: enforcement launched on
        # 2025-03-27 and was rolled back the next day. False: insights inform only. A cluster's own
        # setting (add_cluster's `enforce_upgrade_insights`) wins over this one.
        self.enforce_upgrade_insights = False

    # ==== setup API (scenario loader) ==========================================================

    def add_cluster(
        self,
        name: str,
        *,
        account_id: str,
        region: str,
        version: str,
        store: KubeStore,
        endpoint: str,
        ca_data: str | None = None,
        platform_version: str = "eks.1",
        tags: dict[str, str] | None = None,
        node_count: int = 3,
        support_type: str = "EXTENDED",
        subnets: list[ClusterSubnet] | None = None,
        vpc_id: str | None = None,
        security_group_ids: list[str] | None = None,
        enforce_upgrade_insights: bool | None = None,
    ) -> None:
        """`node_count` sizes DaemonSets while the store holds no Node objects. `subnets` are the
        cluster's own subnets (default: two made-up ones in zones a and b with 251 free IPs each)."""
        with self._lock:
            if name in self._clusters:
                raise ValueError(f"cluster {name!r} already exists")
            if support_type not in ("STANDARD", "EXTENDED"):
                raise ValueError("support_type must be STANDARD or EXTENDED")
            digest = derived_ami_id(f"{account_id}/{region}/{name}")[4:]
            if subnets is None:
                subnets = [
                    ClusterSubnet(f"subnet-0{digest[:15]}{zone}", f"{region}{zone}", 251)
                    for zone in ("a", "b")
                ]
            self._clusters[name] = _Cluster(
                name=name,
                account_id=account_id,
                region=region,
                version=version,
                platform_version=platform_version,
                endpoint=endpoint,
                ca_data=ca_data,
                store=store,
                tags=dict(tags or {}),
                created_at=self.clock.now(),
                node_count=node_count,
                support_type=support_type,
                subnets=list(subnets),
                vpc_id=vpc_id or f"vpc-0{digest[:16]}",
                security_group_ids=list(security_group_ids or []),
                cluster_security_group_id=f"sg-0{digest[1:17]}",
                enforce_upgrade_insights=enforce_upgrade_insights,
            )

    def install_addon(
        self,
        cluster: str,
        addon_name: str,
        version: str,
        *,
        configuration_values: str | None = None,
        service_account_role_arn: str | None = None,
        pod_identity_associations: list[str] | None = None,
    ) -> None:
        """Install an add-on as EKS would have (objects owned by `eks`, Pods ready, status ACTIVE)."""
        with self._lock:
            state = self._setup_cluster(cluster)
            if addon_name in state.addons:
                raise ValueError(f"{addon_name} is already installed on {cluster}")
            catalog_version = self._catalog_version(addon_name, version)
            if catalog_version is None or not catalog_version.is_compatible_with(state.version):
                raise ValueError(f"{addon_name} {version} is not offered for Kubernetes {state.version}")
            try:
                configuration = self._validated_configuration(addon_name, version, configuration_values)
            except EksApiError as exc:
                raise ValueError(exc.message) from exc
            now = self.clock.now()
            state.addons[addon_name] = _Addon(
                name=addon_name,
                version=version,
                arn=f"arn:{state.partition}:eks:{state.region}:{state.account_id}:addon/{cluster}/{addon_name}/"
                f"{uuid.uuid4()}",
                created_at=now,
                modified_at=now,
                configuration_values=configuration_values,
                service_account_role_arn=service_account_role_arn,
                pod_identity_associations=list(pod_identity_associations or []),
            )
            for obj in addon_manifests(addon_name, version, state.info, configuration):
                before = state.store.get(*KubeStore.key_of(obj))
                state.store.put(obj, EKS_FIELD_MANAGER)
                _record_generation(state.store, KubeStore.key_of(obj), before)
            sync_addon_pods(
                state.store, addon_name, fallback_node_count=state.node_count, new_pods_ready=True
            )

    def customer_edit(
        self,
        cluster: str,
        kind: str,
        namespace: str,
        name: str,
        path: FieldPath | str,
        value: Any,
        manager: str = "kubectl-edit",
    ) -> None:
        """Change one field as a customer would (`kubectl edit`): `manager` takes ownership of it."""
        with self._lock:
            state = self._setup_cluster(cluster)
            field_path = parse_path(path) if isinstance(path, str) else tuple(path)
            before = state.store.get(kind, namespace, name)
            if before is None:
                raise ValueError(f"{kind} {namespace}/{name} does not exist in {cluster}")
            state.store.set_field(kind, namespace, name, field_path, value, manager)
            _record_generation(state.store, (kind, namespace, name), before)
            self.customer_edits.append(
                CustomerEdit(
                    cluster,
                    kind,
                    namespace,
                    name,
                    field_path,
                    copy.deepcopy(value),
                    manager,
                    self.clock.now(),
                )
            )
            addon = self._addon_owning_workload(state, (kind, namespace, name))
            if addon is not None:
                # A changed pod template or replica count makes Kubernetes roll the Pods.
                sync_addon_pods(
                    state.store,
                    addon.name,
                    fallback_node_count=state.node_count,
                    new_pods_ready=not addon.pods_not_ready,
                )

    def inject_fault(self, cluster: str, addon: str, fault: dict[str, Any]) -> None:
        """Make a later update of `addon` (or of the node group of that name) misbehave; see
        FAULT_TYPES and NODEGROUP_FAULT_TYPES.

        - update_fails: the next update (to `toVersion`, if given) ends Failed with `errorCode`/`message`.
        - pods_never_ready: the update to `toVersion` succeeds but the new Pods never become Ready.
        - update_duration: every later update of the add-on takes `seconds` of simulated time.
        - nodes_never_ready (node groups): the next version update's new nodes never turn Ready, so
          it fails with NodeCreationFailure after 15 minutes.
        """
        with self._lock:
            if fault.get("type") in NODEGROUP_FAULT_TYPES:
                self._setup_nodegroup(cluster, addon).faults.append(dict(fault))
                return
            state = self._setup_cluster(cluster)
            if self.catalog.get(addon) is None:
                raise ValueError(f"unknown add-on {addon!r}")
            fault_type = fault.get("type")
            if fault_type not in FAULT_TYPES:
                raise ValueError(f"unknown fault type {fault_type!r}; expected one of {FAULT_TYPES}")
            if fault_type == "update_duration":
                state.update_seconds[addon] = int(fault["seconds"])
                return
            if fault_type == "pods_never_ready" and "toVersion" not in fault:
                raise ValueError("a pods_never_ready fault needs toVersion")
            state.faults.setdefault(addon, []).append(dict(fault))

    def inject_control_plane_fault(self, cluster: str, fault: dict[str, Any]) -> None:
        """Make a later UpdateClusterVersion misbehave (CONTROL_PLANE_FAULT_TYPES).

        - update_fails: the next version update (to `toVersion`, if given) ends Failed with `errorCode`
          (default Unknown) and `message`; the cluster stays on its version and returns to ACTIVE (3.11).
        - update_duration: every later version update takes `seconds` of simulated time (default 600).
        """
        with self._lock:
            state = self._setup_cluster(cluster)
            fault_type = fault.get("type")
            if fault_type not in CONTROL_PLANE_FAULT_TYPES:
                raise ValueError(
                    f"unknown control plane fault type {fault_type!r}; "
                    f"expected one of {CONTROL_PLANE_FAULT_TYPES}"
                )
            if fault_type == "update_duration":
                seconds = fault.get("seconds")
                if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds < 0:
                    raise ValueError("an update_duration fault needs seconds (an integer >= 0)")
                state.control_plane_update_seconds = seconds
                return
            state.control_plane_faults.append(dict(fault))

    def resync_addon_pods(self, cluster: str) -> None:
        """Re-run the DaemonSet/Deployment 'controllers' after Nodes were added or removed."""
        with self._lock:
            state = self._setup_cluster(cluster)
            for addon in state.addons.values():
                sync_addon_pods(
                    state.store,
                    addon.name,
                    fallback_node_count=state.node_count,
                    new_pods_ready=not addon.pods_not_ready,
                )

    # ---- managed node groups -----------------------------------------------------------------

    def add_nodegroup(
        self,
        cluster: str,
        name: str,
        *,
        ami_type: str = "AL2023_x86_64_STANDARD",
        release_version: str,
        instance_type: str = "m6i.large",
        desired: int = 3,
        min_size: int = 1,
        max_size: int = 6,
        subnets: list[tuple[str, str]],
        update_config: dict[str, Any] | None = None,
        launch_template: dict[str, str] | None = None,
        custom_ami_id: str | None = None,
        labels: dict[str, str] | None = None,
        capacity_type: str = "ON_DEMAND",
        tags: dict[str, str] | None = None,
        node_role: str | None = None,
    ) -> None:
        """A managed node group that exists, ACTIVE, with `desired` Ready nodes spread over the
        subnets' availability zones. `release_version` is the EKS-optimized AMI release the nodes
        run; with `custom_ami_id` the node group is amiType CUSTOM (its releaseVersion is the AMI id)
        and `release_version` only says which kubelet the custom AMI carries."""
        with self._lock:
            self.finish_due_updates()
            state = self._setup_cluster(cluster)
            if (cluster, name) in self._nodegroups.nodegroups:
                raise ValueError(f"node group {name!r} already exists in {cluster}")
            if not subnets:
                raise ValueError("a node group needs at least one (subnet id, availability zone)")
            if not 0 <= min_size <= desired <= max_size:
                raise ValueError(
                    f"sizes must satisfy min <= desired <= max, not {min_size}/{desired}/{max_size}"
                )
            if capacity_type not in CAPACITY_TYPES:
                raise ValueError(f"capacity_type must be one of {CAPACITY_TYPES}")
            try:
                config = _validated_update_config(update_config or {"maxUnavailable": 1}, {})
            except EksApiError as exc:
                raise ValueError(exc.message) from exc
            if custom_ami_id is not None:
                ami_type = "CUSTOM"
                launch_template = dict(launch_template or {"name": f"{name}-launch-template", "version": "1"})
            else:
                known = self.ami_releases.ami_type(ami_type)
                if known is None:
                    raise ValueError(
                        f"the simulator has no releases for amiType {ami_type!r}; known: "
                        f"{sorted(self.ami_releases.ami_types)} (or give custom_ami_id)"
                    )
                if self.ami_releases.published(release_version, known.family, self.clock.now()) is None:
                    raise ValueError(f"{release_version} is not a published {known.family} release")
            if minor_key(release_minor(release_version)) > minor_key(state.version):
                raise ValueError(
                    f"release {release_version} is newer than the cluster's Kubernetes {state.version}"
                )
            if launch_template is not None:
                launch_template = dict(launch_template)
                launch_template.setdefault("name", f"{name}-launch-template")
                launch_template.setdefault("id", "lt-0" + derived_ami_id(launch_template["name"])[4:20])
                launch_template.setdefault("version", "1")
            self._nodegroups.create(
                self._cluster_ref(state),
                name,
                ami_type=ami_type,
                release_version=release_version,
                instance_type=instance_type,
                capacity_type=capacity_type,
                desired=desired,
                min_size=min_size,
                max_size=max_size,
                subnets=list(subnets),
                update_config=config,
                launch_template=launch_template,
                custom_ami_id=custom_ami_id,
                labels=dict(labels or {}),
                tags=dict(tags or {}),
                node_role=node_role,
                at=self.clock.now(),
            )

    def add_workload(
        self,
        cluster: str,
        *,
        namespace: str,
        name: str,
        kind: str = "Deployment",
        replicas: int = 3,
        nodegroup: str | None = None,
        pdb: dict[str, Any] | None = None,
        readiness_probe: bool = True,
        labels: dict[str, str] | None = None,
    ) -> None:
        """A Deployment (with its ReplicaSet) or StatefulSet whose Pods run Ready, spread over the
        Ready schedulable nodes (of `nodegroup` if given, through a nodeSelector), and optionally
        its PodDisruptionBudget: `{"minAvailable": n}` or `{"maxUnavailable": n}`, plus `name`."""
        with self._lock:
            self.finish_due_updates()
            state = self._setup_cluster(cluster)
            self._nodegroups.add_workload(
                self._cluster_ref(state),
                namespace=namespace,
                name=name,
                kind=kind,
                replicas=replicas,
                nodegroup=nodegroup,
                pdb=pdb,
                readiness_probe=readiness_probe,
                labels=dict(labels or {"app": name}),
                at=self.clock.now(),
            )

    def set_pod_ready(self, cluster: str, namespace: str, pod_name: str, ready: bool) -> None:
        """Make a Pod Ready or not from now on (a fault: a Pod turns unready in the middle of a roll).
        The roll first catches up to now, so the change lands at the right moment."""
        with self._lock:
            self.finish_due_updates()
            state = self._setup_cluster(cluster)
            self._nodegroups.set_pod_ready(
                self._cluster_ref(state), namespace, pod_name, ready, self.clock.now()
            )

    def publish_ami_release(
        self, tag: str, release_date: date | str, release_versions: dict[str, str], families: list[str]
    ) -> None:
        """An amazon-eks-ami release that appears during the run (SSM recommends it from its date)."""
        with self._lock:
            self.finish_due_updates()
            day = date.fromisoformat(release_date) if isinstance(release_date, str) else release_date
            self.ami_releases.publish(
                AmiRelease(
                    tag=tag, date=day, release_versions=dict(release_versions), families=tuple(families)
                )
            )

    def ssm_parameter(self, name: str) -> str | None:
        """An SSM public parameter of the EKS-optimized AMIs, as of the simulated now:
        `/aws/service/eks/optimized-ami/<k8s>/<path>/recommended/release_version` (or `image_id`).
        None for any other name (the caller answers ParameterNotFound)."""
        with self._lock:
            self.calls["ssm:GetParameter"] += 1
            self.call_log.append(("ssm:GetParameter", {"Name": name}))
            return self.ami_releases.ssm_parameter(name, self.clock.now())

    @property
    def force_delete_after_seconds(self) -> float:
        """With `force`, how long a Pod's eviction is refused before it is deleted anyway (UNKNOWN,
        FIDELITY 1.42.4/1.53: 0 deletes at the first refusal; 900 after the 15-minute limit)."""
        return self._nodegroups.force_delete_after_seconds

    @force_delete_after_seconds.setter
    def force_delete_after_seconds(self, seconds: float) -> None:
        self._nodegroups.force_delete_after_seconds = float(seconds)

    # ==== helpers for tests and the report =====================================================

    def cluster_names(self) -> list[str]:
        with self._lock:
            return sorted(self._clusters)

    def store_of(self, cluster: str) -> KubeStore:
        with self._lock:
            self.finish_due_updates()
            return self._setup_cluster(cluster).store

    def addon_state(self, cluster: str, addon: str) -> dict[str, Any]:
        with self._lock:
            self.finish_due_updates()
            state = self._setup_cluster(cluster)
            if addon not in state.addons:
                raise ValueError(f"{addon} is not installed on {cluster}")
            current = state.addons[addon]
            return {
                "name": current.name,
                "status": current.status,
                "version": current.version,
                "configuration_values": current.configuration_values,
                "service_account_role_arn": current.service_account_role_arn,
                "pod_identity_associations": list(current.pod_identity_associations),
                "pods_ready": not current.pods_not_ready,
                "updates": [u.to_api() for u in state.updates if u.addon == addon],
                "pending_faults": copy.deepcopy(state.faults.get(addon, [])),
            }

    def nodegroup_timeline(self, cluster: str, nodegroup: str) -> list[dict[str, Any]]:
        """What happened to the node group's nodes, in order: {at, node, event[, pod][, update]}
        with event one of launched, ready, cordoned, drain started, evicted pod <ns/name>,
        force-evicted pod <ns/name>, eviction refused by pdb <name>, drained, terminated,
        uncordoned, terminated (never joined)."""
        with self._lock:
            self.finish_due_updates()
            return copy.deepcopy(self._setup_nodegroup(cluster, nodegroup).timeline)

    def nodegroup_state(self, cluster: str, nodegroup: str) -> dict[str, Any]:
        with self._lock:
            self.finish_due_updates()
            group = self._setup_nodegroup(cluster, nodegroup)
            store = group.cluster.store
            pods = store.list("Pod")
            nodes = []
            for node in self._nodegroups.nodes_of(group):
                node_name = node["metadata"]["name"]
                labels = node["metadata"].get("labels", {})
                nodes.append(
                    {
                        "name": node_name,
                        "zone": labels.get("topology.kubernetes.io/zone"),
                        "instanceId": node["spec"].get("providerID", "").rsplit("/", 1)[-1],
                        "image": labels.get("eks.amazonaws.com/nodegroup-image"),
                        "kubeletVersion": node["status"]["nodeInfo"]["kubeletVersion"],
                        "ready": any(
                            c["type"] == "Ready" and c["status"] == "True"
                            for c in node["status"]["conditions"]
                        ),
                        "unschedulable": bool(node["spec"].get("unschedulable", False)),
                        "pods": sorted(
                            f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                            for p in pods
                            if p.get("spec", {}).get("nodeName") == node_name
                        ),
                    }
                )
            running = group.running_update()
            roll = self._nodegroups.rolls.get(running.id) if running is not None else None
            return {
                "name": group.name,
                "cluster": cluster,
                "status": group.status,
                "version": group.version,
                "releaseVersion": group.api_release_version,
                "amiType": group.ami_type,
                "desiredSize": group.desired_size,
                "updateConfig": dict(group.update_config),
                "healthIssues": copy.deepcopy(group.health_issues),
                "nodes": nodes,
                "roll": roll.state() if roll is not None else None,
                "updates": [
                    {**u.to_api(), "forceEvicted": list(u.force_evicted), "finishedAt": u.finished_at}
                    for u in group.updates
                ],
                "pendingFaults": copy.deepcopy(group.faults),
            }

    def cluster_state(self, cluster: str) -> dict[str, Any]:
        """The control plane as the simulator holds it: for tests and the report."""
        with self._lock:
            self.finish_due_updates()
            state = self._setup_cluster(cluster)
            return {
                "name": state.name,
                "status": state.status,
                "version": state.version,
                "platformVersion": state.platform_version,
                "kubernetesVersionServed": state.store.kubernetes_version,
                "supportType": state.support_type,
                "subnets": [
                    {"subnetId": s.subnet_id, "availabilityZone": s.availability_zone, "freeIps": s.free_ips}
                    for s in state.subnets
                ],
                "enforceUpgradeInsights": self._enforces_insights(state),
                "updates": [u.to_api() for u in state.cluster_updates],
                "pendingFaults": copy.deepcopy(state.control_plane_faults),
            }

    def finish_due_updates(self) -> None:
        """Finalise every add-on and cluster update whose simulated end time has passed and run every
        node group event that is due, all in the order of their simulated times."""
        with self._lock:
            now = self.clock.now()
            due: list[_AddonUpdate | _ClusterUpdate] = sorted(
                [
                    *(u for u in self._updates.values() if u.status == "InProgress" and u.finishes_at <= now),
                    *(
                        u
                        for u in self._cluster_updates.values()
                        if u.status == "InProgress" and u.finishes_at <= now
                    ),
                ],
                key=lambda u: u.finishes_at,
            )
            while True:
                next_event = self._nodegroups.next_event_at()
                if (
                    next_event is not None
                    and next_event <= now
                    and (not due or next_event < due[0].finishes_at)
                ):
                    self._nodegroups.run_next()
                elif due:
                    update = due.pop(0)
                    if isinstance(update, _ClusterUpdate):
                        self._finish_cluster_update(update)
                    else:
                        self._finish_update(update)
                else:
                    return

    # ==== the API ==============================================================================

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = {
            "ListClusters": self._list_clusters,
            "DescribeCluster": self._describe_cluster,
            "ListAddons": self._list_addons,
            "DescribeAddon": self._describe_addon,
            "DescribeAddonVersions": self._describe_addon_versions,
            "DescribeAddonConfiguration": self._describe_addon_configuration,
            "UpdateAddon": self._update_addon,
            "ListNodegroups": self._list_nodegroups,
            "DescribeNodegroup": self._describe_nodegroup,
            "UpdateNodegroupVersion": self._update_nodegroup_version,
            "UpdateNodegroupConfig": self._update_nodegroup_config,
            "DescribeUpdate": self._describe_update,
            "ListUpdates": self._list_updates,
            "UpdateClusterVersion": self._update_cluster_version,
            "DescribeClusterVersions": self._describe_cluster_versions,
            "ListInsights": self._list_insights,
            "DescribeInsight": self._describe_insight,
        }.get(operation)
        if handler is None:
            # Said loudly, as an API error the caller sees, never answered with made-up data.
            raise EksApiError("UnsupportedOperation", f"the EKS simulator does not offer {operation}", 501)
        with self._lock:
            self.calls[operation] += 1
            self.call_log.append((operation, copy.deepcopy(params)))
            self.finish_due_updates()
            return handler(params)

    def _list_clusters(self, params: dict[str, Any]) -> dict[str, Any]:
        page, next_token = _page(sorted(self._clusters), params, "ListClusters")
        return _with_token({"clusters": page}, next_token)

    def _describe_cluster(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "name"))
        return {
            "cluster": {
                "name": state.name,
                "arn": state.arn,
                "createdAt": state.created_at,
                "version": state.version,
                "endpoint": state.endpoint,
                "certificateAuthority": {"data": state.ca_data or PLACEHOLDER_CA},
                "platformVersion": state.platform_version,
                "status": state.status,
                "resourcesVpcConfig": {
                    "subnetIds": [subnet.subnet_id for subnet in state.subnets],
                    "securityGroupIds": list(state.security_group_ids),
                    "clusterSecurityGroupId": state.cluster_security_group_id,
                    "vpcId": state.vpc_id,
                    # EKS's defaults for a new cluster: public endpoint only, open to all.
                    "endpointPublicAccess": True,
                    "endpointPrivateAccess": False,
                    "publicAccessCidrs": ["0.0.0.0/0"],
                },
                "health": {"issues": []},
                "accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"},
                "upgradePolicy": {"supportType": state.support_type},
                "tags": dict(state.tags),
            }
        }

    def _list_addons(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "clusterName"))
        page, next_token = _page(sorted(state.addons), params, "ListAddons")
        return _with_token({"addons": page}, next_token)

    def _describe_addon(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "clusterName"))
        addon = self._addon(state, _required(params, "addonName"))
        body: dict[str, Any] = {
            "addonName": addon.name,
            "clusterName": state.name,
            "status": addon.status,
            "addonVersion": addon.version,
            "health": {"issues": copy.deepcopy(addon.health_issues)},
            "addonArn": addon.arn,
            "createdAt": addon.created_at,
            "modifiedAt": addon.modified_at,
            "tags": dict(addon.tags),
        }
        if addon.service_account_role_arn:
            body["serviceAccountRoleArn"] = addon.service_account_role_arn
        if addon.configuration_values is not None:
            body["configurationValues"] = addon.configuration_values
        if addon.pod_identity_associations:
            body["podIdentityAssociations"] = list(addon.pod_identity_associations)
        return {"addon": body}

    def _describe_addon_versions(self, params: dict[str, Any]) -> dict[str, Any]:
        kubernetes_version = params.get("kubernetesVersion")
        addons = []
        for name in self.catalog.names():
            entry = self.catalog.addons[name]
            if params.get("addonName") not in (None, name):
                continue
            if not _matches_filter(params.get("types"), entry.type):
                continue
            if not _matches_filter(params.get("publishers"), entry.publisher):
                continue
            if not _matches_filter(params.get("owners"), entry.owner):
                continue
            versions = entry.versions_for(kubernetes_version) if kubernetes_version else list(entry.versions)
            if not versions:
                continue
            addons.append(
                {
                    "addonName": name,
                    "type": entry.type,
                    "addonVersions": [_addon_version_api(name, v, kubernetes_version) for v in versions],
                    "publisher": entry.publisher,
                    "owner": entry.owner,
                    "defaultNamespace": "kube-system",
                }
            )
        page, next_token = _page(addons, params, "DescribeAddonVersions")
        return _with_token({"addons": page}, next_token)

    def _describe_addon_configuration(self, params: dict[str, Any]) -> dict[str, Any]:
        addon_name = _required(params, "addonName")
        addon_version = _required(params, "addonVersion")
        if self.catalog.get(addon_name) is None:
            raise _not_found(f"Addon {addon_name} not found")  # [INF] wording
        if self._catalog_version(addon_name, addon_version) is None:
            raise _invalid_parameter("Addon version specified is not supported")
        return {
            "addonName": addon_name,
            "addonVersion": addon_version,
            "configurationSchema": json.dumps(configuration_schema(addon_name, addon_version)),
            "podIdentityConfiguration": copy.deepcopy(POD_IDENTITY_CONFIGURATION.get(addon_name, [])),
        }

    def _describe_update(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "name"))
        update_id = _required(params, "updateId")
        # FIDELITY 4.1/4.2: addonName is required for add-on updates and nodegroupName for node
        # group updates; leaving it out (or naming another one) is answered with
        # ResourceNotFoundException [INF].
        update = self._updates.get(update_id)
        if update is not None and update.cluster == state.name and params.get("addonName") == update.addon:
            return {"update": update.to_api()}
        nodegroup_update = self._nodegroups.updates.get(update_id)
        if (
            nodegroup_update is not None
            and nodegroup_update.cluster == state.name
            and params.get("nodegroupName") == nodegroup_update.nodegroup
            and params.get("addonName") is None
        ):
            return {"update": nodegroup_update.to_api()}
        cluster_update = self._cluster_updates.get(update_id)
        if (
            cluster_update is not None
            and cluster_update.cluster == state.name
            and not params.get("addonName")
            and not params.get("nodegroupName")
        ):
            return {"update": cluster_update.to_api()}
        raise _not_found(f"No update found for ID: {update_id}")

    def _list_updates(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "name"))
        addon_name = params.get("addonName")
        nodegroup_name = params.get("nodegroupName")
        if addon_name is not None:
            self._addon(state, addon_name)
        # Without addonName or nodegroupName: the cluster's own updates. The order of the list is
        # UNKNOWN (FIDELITY 4.13): creation order is used.
        if addon_name is not None:
            ids = [u.id for u in state.updates if u.addon == addon_name]
        elif nodegroup_name:
            ids = [u.id for u in self._nodegroup(state, nodegroup_name).updates]
        else:
            ids = [u.id for u in state.cluster_updates]
        page, next_token = _page(ids, params, "ListUpdates")
        return _with_token({"updateIds": page}, next_token)

    # ---- managed node groups --------------------------------------------------------------------

    def _list_nodegroups(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "clusterName"))
        names = sorted(name for cluster, name in self._nodegroups.nodegroups if cluster == state.name)
        page, next_token = _page(names, params, "ListNodegroups")
        return _with_token({"nodegroups": page}, next_token)

    def _describe_nodegroup(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "clusterName"))
        nodegroup = self._nodegroup(state, _required(params, "nodegroupName"))
        return {"nodegroup": nodegroup.to_api()}

    def _nodegroup_update_request(self, params: dict[str, Any], update_type: str) -> tuple[Any, Any, Any]:
        """The cluster and node group an update names, and the update a repeated token already
        started (None for a new request, which must then find the node group free)."""
        state = self._cluster(_required(params, "clusterName"))
        nodegroup = self._nodegroup(state, _required(params, "nodegroupName"))
        token = params.get("clientRequestToken")
        repeated = self._repeated_nodegroup_request(nodegroup, token, params) if token else None
        if repeated is None:
            self._check_no_cluster_update(state, update_type)
            self._check_nodegroup_updatable(nodegroup)
        return state, nodegroup, repeated

    def _remember_nodegroup_token(
        self, state: Any, nodegroup: Any, params: dict[str, Any], update_id: str
    ) -> None:
        token = params.get("clientRequestToken")
        if token:
            self._idempotency[(state.name, f"nodegroup/{nodegroup.name}", token)] = (
                _fingerprint(params),
                update_id,
            )

    def _update_nodegroup_version(self, params: dict[str, Any]) -> dict[str, Any]:
        state, nodegroup, repeated = self._nodegroup_update_request(params, "VersionUpdate")
        if repeated is not None:
            return {"update": repeated.to_api()}
        force = params.get("force", False)
        if not isinstance(force, bool):
            raise _invalid_parameter("force must be a boolean")
        launch_template_version = self._requested_launch_template_version(
            nodegroup, params.get("launchTemplate")
        )
        custom_ami_id = None
        if nodegroup.is_custom:
            # FIDELITY 1.14-1.17: a custom AMI comes from the launch template, never from the API fields.
            if params.get("version"):
                raise _invalid_parameter(CUSTOM_AMI_VERSION_MESSAGE)
            if params.get("releaseVersion"):
                raise _invalid_parameter(CUSTOM_AMI_RELEASE_MESSAGE)
            if params.get("launchTemplate") is None:
                raise _invalid_parameter(CUSTOM_AMI_LAUNCH_TEMPLATE_MESSAGE)
            target_release = nodegroup.release_version
            template = nodegroup.launch_template or {}
            # [INF] The AMI a launch template version names is not modelled: each version stands for
            # its own AMI id, derived from the template and the version.
            custom_ami_id = (
                nodegroup.custom_ami_id
                if launch_template_version == template.get("version")
                else derived_ami_id(f"{template.get('id')}:{launch_template_version}")
            )
            update_params = []
        else:
            target_release = self._target_release(state, nodegroup, params)
            update_params = [
                {"type": "Version", "value": release_minor(target_release)},
                {"type": "ReleaseVersion", "value": target_release},
            ]
        if params.get("launchTemplate") is not None and nodegroup.launch_template is not None:
            # FIDELITY 1.4; [INF] for a node group on an EKS AMI, the version params come first.
            update_params += [
                {"type": "LaunchTemplateName", "value": nodegroup.launch_template["name"]},
                {"type": "LaunchTemplateVersion", "value": str(launch_template_version)},
            ]
        update = NodegroupUpdate(
            id=self.new_update_id(),
            cluster=state.name,
            nodegroup=nodegroup.name,
            type="VersionUpdate",
            params=update_params,
            created_at=self.clock.now(),
        )
        self._nodegroups.start_version_update(
            nodegroup,
            update,
            target_release=target_release,
            custom_ami_id=custom_ami_id,
            launch_template_version=launch_template_version
            if params.get("launchTemplate") is not None
            else None,
            force=force,
        )
        self._remember_nodegroup_token(state, nodegroup, params, update.id)
        return {"update": update.to_api()}

    def _target_release(self, state: _Cluster, nodegroup: Nodegroup, params: dict[str, Any]) -> str:
        """The release an UpdateNodegroupVersion asks for, checked (FIDELITY 1.5-1.13)."""
        now = self.clock.now()
        family = self.ami_releases.ami_types[nodegroup.ami_type].family
        requested_release = params.get("releaseVersion")
        version = params.get("version")
        if not version and requested_release:
            try:
                version = release_minor(requested_release)  # [INF] the release names its version
            except ValueError:
                raise _invalid_parameter(
                    INVALID_RELEASE_MESSAGE.format(release=requested_release, version=nodegroup.version)
                ) from None
        if not version:
            version = state.version if self.nodegroup_default_version == "cluster" else nodegroup.version
        if not KUBERNETES_VERSION_PATTERN.match(str(version)):
            raise _invalid_parameter(f"Requested Kubernetes version {version} is not supported.")  # [INF]
        if minor_key(version) > minor_key(state.version):
            # [DOC] 1.7 states the rule; the wording is [INF].
            raise _invalid_parameter(
                f"Requested Kubernetes version {version} is greater than the cluster's Kubernetes version "
                f"{state.version}."
            )
        if minor_key(version) < minor_key(nodegroup.version):
            raise _invalid_parameter(ROLLBACK_MESSAGE)
        latest = self.ami_releases.recommended(version, family, now)
        if requested_release:
            try:
                matches_version = release_minor(requested_release) == version
            except ValueError:
                matches_version = False
            # [INF] A release that is unknown, not yet published, or not built for this AMI family
            # gets the same answer as one of another Kubernetes version (1.12).
            if not matches_version or self.ami_releases.published(requested_release, family, now) is None:
                raise _invalid_parameter(
                    INVALID_RELEASE_MESSAGE.format(release=requested_release, version=version)
                )
            if release_order(requested_release) < release_order(nodegroup.release_version):
                raise _invalid_parameter(ROLLBACK_MESSAGE)
            if self.nodegroup_only_latest_release and latest is not None and requested_release != latest:
                raise _invalid_parameter(
                    ONLY_LATEST_RELEASE_MESSAGE.format(release=requested_release, latest=latest)
                )
            return str(requested_release)
        if latest is None:
            raise _invalid_parameter(  # [INF] wording
                f"Requested AMI type {nodegroup.ami_type} is not supported for kubernetes version {version}."
            )
        if release_order(latest) < release_order(nodegroup.release_version):
            return nodegroup.release_version
        return latest

    def _requested_launch_template_version(self, nodegroup: Nodegroup, requested: Any) -> str | None:
        """FIDELITY 1.18: only the node group's own launch template, by id or name; without a version
        its default version ([INF] the version it runs now)."""
        template = nodegroup.launch_template
        if requested is None:
            return None if template is None else template["version"]
        if not isinstance(requested, dict):
            raise _invalid_parameter("launchTemplate must be a structure with id or name and version")
        if template is None:
            raise _invalid_parameter(  # [INF] wording
                f"Nodegroup {nodegroup.name} was not created with a launch template; "
                "launchTemplate cannot be specified."
            )
        if (requested.get("id") not in (None, template["id"])) or (
            requested.get("name") not in (None, template["name"])
        ):
            raise _invalid_parameter(  # [INF] wording
                f"The launch template must be the one the node group was created with ({template['id']}, "
                f"{template['name']})."
            )
        return str(requested.get("version") or template["version"])

    def _update_nodegroup_config(self, params: dict[str, Any]) -> dict[str, Any]:
        state, nodegroup, repeated = self._nodegroup_update_request(params, "ConfigUpdate")
        if repeated is not None:
            return {"update": repeated.to_api()}
        unmodelled = [key for key in UNMODELLED_NODEGROUP_CONFIG if params.get(key) is not None]
        if unmodelled:
            raise EksApiError(
                "UnsupportedOperation",
                f"the EKS simulator's UpdateNodegroupConfig does not change {', '.join(unmodelled)}",
                501,
            )
        requested = params.get("updateConfig")
        if requested is None:
            raise _invalid_parameter("No changes were requested for the node group.")  # [INF] wording
        config = _validated_update_config(requested, nodegroup.update_config)
        update_params = [
            {"type": param_type, "value": str(requested[key])}
            for param_type, key in (
                ("MaxUnavailable", "maxUnavailable"),
                ("MaxUnavailablePercentage", "maxUnavailablePercentage"),
                ("UpdateStrategy", "updateStrategy"),
            )
            if key in requested
        ]
        update = NodegroupUpdate(
            id=self.new_update_id(),
            cluster=state.name,
            nodegroup=nodegroup.name,
            type="ConfigUpdate",
            params=update_params,
            created_at=self.clock.now(),
        )
        self._nodegroups.start_config_update(nodegroup, update, config)
        self._remember_nodegroup_token(state, nodegroup, params, update.id)
        return {"update": update.to_api()}

    def _repeated_nodegroup_request(
        self, nodegroup: Nodegroup, token: str, params: dict[str, Any]
    ) -> NodegroupUpdate | None:
        seen = self._idempotency.get((nodegroup.cluster.name, f"nodegroup/{nodegroup.name}", token))
        if seen is None:
            return None
        fingerprint, update_id = seen
        if fingerprint != _fingerprint(params):
            # [INF] as for UpdateAddon: the API model declares no dedicated error.
            raise _invalid_parameter(
                f"Client request token {token} was already used with different parameters"
            )
        return self._nodegroups.updates[update_id]

    def _check_nodegroup_updatable(self, nodegroup: Nodegroup) -> None:
        # FIDELITY 1.20: the same answer whether the node group is busy with an update or otherwise
        # not ACTIVE (an update in progress keeps it UPDATING).
        if nodegroup.status != "ACTIVE" or nodegroup.running_update() is not None:
            raise _in_use(NODEGROUP_IN_USE_MESSAGE)

    # ---- the control plane: UpdateClusterVersion (FIDELITY §3) ------------------------------------

    def _update_cluster_version(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "name"))
        target = _required(params, "version")
        token = params.get("clientRequestToken")
        if token:
            seen = self._idempotency.get((state.name, "cluster", token))
            if seen is not None:
                fingerprint, update_id = seen
                if fingerprint != _fingerprint(params):
                    # [INF] as for UpdateAddon: the API model declares no dedicated error.
                    raise _invalid_parameter(
                        f"Client request token {token} was already used with different parameters"
                    )
                return {"update": self._cluster_updates[update_id].to_api()}
        force = params.get("force", False)
        if not isinstance(force, bool):
            raise _invalid_parameter("force must be a boolean")
        if params.get("rollbackConfig") is not None:
            # FIDELITY 7.1: rollback semantics are UNKNOWN outside Auto Mode; not modelled.
            raise EksApiError("UnsupportedOperation", "the EKS simulator does not model rollbackConfig", 501)
        self._check_cluster_free(state, "VersionUpdate")
        self._check_version_step(state, target)
        lagging = sorted(
            group.name
            for (cluster, _), group in self._nodegroups.nodegroups.items()
            if cluster == state.name and group.version != state.version
        )
        if lagging:
            # FIDELITY 3.15/3.17/3.18: a node group behind or ahead of the control plane blocks it.
            raise _invalid_parameter(
                NODEGROUPS_MUST_MATCH_MESSAGE.format(names=", ".join(lagging), version=state.version)
            )
        if self._enforces_insights(state) and not force:
            blocking = [
                i
                for i in self._insights(state)
                if i["kubernetesVersion"] == target
                and i["category"] == "UPGRADE_READINESS"
                and i["insightStatus"]["status"] == "ERROR"
            ]
            if blocking:
                raise _invalid_state(UPGRADE_READINESS_MESSAGE)
        now = self.clock.now()
        update = _ClusterUpdate(
            id=str(uuid.uuid4()),
            cluster=state.name,
            created_at=now,
            finishes_at=now + timedelta(seconds=state.control_plane_update_seconds),
            from_version=state.version,
            target_version=target,
            planned_failure=self._planned_cluster_failure(state, target),
        )
        state.cluster_updates.append(update)
        self._cluster_updates[update.id] = update
        state.status = "UPDATING"  # FIDELITY 3.4
        if token:
            self._idempotency[(state.name, "cluster", token)] = (_fingerprint(params), update.id)
        return {"update": update.to_api()}

    def _check_version_step(self, state: _Cluster, target: str) -> None:
        """FIDELITY 3.6-3.8: exactly one minor version up, to a version EKS offers now."""
        message = UNSUPPORTED_VERSION_UPDATE_MESSAGE.format(current=state.version, target=target)
        if not KUBERNETES_VERSION_PATTERN.match(target):
            raise _invalid_parameter(message)
        major, minor = minor_key(state.version)
        if minor_key(target) != (major, minor + 1):
            raise _invalid_parameter(message)
        entry = version_entry(target)
        if entry is None or not is_released(entry, self.clock.now()):
            raise _invalid_parameter(message)  # [INF] a version EKS does not offer yet

    def _check_cluster_free(self, state: _Cluster, update_type: str) -> None:
        """One update at a time on a cluster ([INF] for add-on and node group updates running while a
        version update is asked for: FIDELITY 1.21/1.22 show the message, not what it covers)."""
        running: Any = state.running_cluster_update()
        if running is None:
            running = next(
                (u for u in state.updates if u.status == "InProgress"),
                None,
            )
        if running is None:
            running = next(
                (
                    group.running_update()
                    for (cluster, _), group in sorted(self._nodegroups.nodegroups.items())
                    if cluster == state.name and group.running_update() is not None
                ),
                None,
            )
        if running is not None:
            raise _in_use(
                CLUSTER_BUSY_MESSAGE.format(update_type=update_type, cluster=state.name, update_id=running.id)
            )

    def _check_no_cluster_update(self, state: _Cluster, update_type: str) -> None:
        """[INF] No add-on or node group update starts while the control plane is being upgraded (the
        message of FIDELITY 1.21/1.22)."""
        running = state.running_cluster_update()
        if running is not None:
            raise _in_use(
                CLUSTER_BUSY_MESSAGE.format(update_type=update_type, cluster=state.name, update_id=running.id)
            )

    def _planned_cluster_failure(self, state: _Cluster, target: str) -> dict[str, Any] | None:
        """How the update will fail, if it will: an injected fault, or too few free IPs (3.12)."""
        for fault in state.control_plane_faults:
            if fault["type"] == "update_fails" and fault.get("toVersion") in (None, target):
                state.control_plane_faults.remove(fault)
                return {
                    "errorCode": fault.get("errorCode") or "Unknown",
                    "errorMessage": fault.get("message") or "The cluster version update failed.",
                    "resourceIds": list(fault.get("resourceIds") or []),
                }
        free = sum(subnet.free_ips for subnet in state.subnets)
        if free < CLUSTER_UPDATE_FREE_IPS:
            # [INF] error code (4.8 lists IpNotAvailable for cluster updates) and wording.
            subnet_ids = [subnet.subnet_id for subnet in state.subnets]
            return {
                "errorCode": "IpNotAvailable",
                "errorMessage": f"The cluster's subnets {', '.join(subnet_ids)} have {free} free IP "
                f"addresses; updating the control plane needs up to {CLUSTER_UPDATE_FREE_IPS}.",
                "resourceIds": subnet_ids,
            }
        return None

    def _finish_cluster_update(self, update: _ClusterUpdate) -> None:
        state = self._clusters[update.cluster]
        state.status = "ACTIVE"  # FIDELITY 3.4: back to ACTIVE whether it failed or succeeded
        if update.planned_failure is not None:
            # FIDELITY 3.11: a failed upgrade leaves the control plane on its prior version.
            update.status = "Failed"
            update.errors = [dict(update.planned_failure)]
            return
        state.version = update.target_version
        state.platform_version = UPGRADE_PLATFORM_VERSION
        state.store.kubernetes_version = update.target_version  # /version, discovery and served APIs follow
        update.status = "Successful"

    def _enforces_insights(self, state: _Cluster) -> bool:
        if state.enforce_upgrade_insights is not None:
            return state.enforce_upgrade_insights
        return self.enforce_upgrade_insights

    # ---- upgrade insights and the version calendar ----------------------------------------------

    def _insights(self, state: _Cluster) -> list[dict[str, Any]]:
        """The cluster's insights as of now. Real EKS refreshes them every 24 hours (FIDELITY 3.25); the
        simulator computes them whenever they are asked for."""
        now = self.clock.now()
        facts = ClusterFacts(
            name=state.name,
            arn=state.arn,
            version=state.version,
            store=state.store,
            addons={name: (addon.version, addon.arn) for name, addon in state.addons.items()},
            catalog=self.catalog,
            known_versions=tuple(v.version for v in kubernetes_versions()),
            now=now,
        )
        insights = []
        for insight in upgrade_insights(facts):
            status = insight["insightStatus"]["status"]
            seen = self._insight_transitions.get(insight["id"])
            if seen is None or seen[0] != status:
                seen = (status, now)
                self._insight_transitions[insight["id"]] = seen
            insights.append({**insight, "lastRefreshTime": now, "lastTransitionTime": seen[1]})
        return insights

    def _list_insights(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "clusterName"))
        wanted = params.get("filter") or {}
        for key, allowed in (("categories", INSIGHT_CATEGORIES), ("statuses", INSIGHT_STATUSES)):
            unknown = [value for value in wanted.get(key) or [] if value not in allowed]
            if unknown:
                raise _invalid_parameter(f"{key} must be among {', '.join(allowed)}")  # [INF] wording
        summaries = [
            {key: copy.deepcopy(insight[key]) for key in INSIGHT_SUMMARY_KEYS}
            for insight in self._insights(state)
            if _matches_filter(wanted.get("categories"), insight["category"])
            and _matches_filter(wanted.get("kubernetesVersions"), insight["kubernetesVersion"])
            and _matches_filter(wanted.get("statuses"), insight["insightStatus"]["status"])
        ]
        page, next_token = _page(summaries, params, "ListInsights")
        return _with_token({"insights": page}, next_token)

    def _describe_insight(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "clusterName"))
        insight_id = _required(params, "id")
        for insight in self._insights(state):
            if insight["id"] == insight_id:
                return {"insight": insight}
        raise _not_found(f"No insight found for ID: {insight_id}")  # [INF] wording

    def _describe_cluster_versions(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            entries = cluster_versions(params, self.clock.now(), self._kubernetes_patch_version)
        except ValueError as exc:
            raise _invalid_parameter(str(exc)) from None
        page, next_token = _page(entries, params, "DescribeClusterVersions")
        return _with_token({"clusterVersions": page}, next_token)

    def _kubernetes_patch_version(self, minor: str) -> str:
        """[INF] The patch level of the newest EKS-optimized AMI for the minor published by now (its
        kubelet), else `<minor>.0`: the data holds no control-plane patch levels."""
        now = self.clock.now()
        for family in ("AL2023", "AL2"):
            release = self.ami_releases.recommended(minor, family, now)
            if release is not None:
                return release_kubelet(release)
        return f"{minor}.0"

    # ---- UpdateAddon ----------------------------------------------------------------------------

    def _update_addon(self, params: dict[str, Any]) -> dict[str, Any]:
        state = self._cluster(_required(params, "clusterName"))
        addon = self._addon(state, _required(params, "addonName"))
        token = params.get("clientRequestToken")
        if token:
            repeated = self._repeated_request(state, addon, token, params)
            if repeated is not None:
                return {"update": repeated.to_api()}
        self._check_no_cluster_update(state, "AddonUpdate")
        self._check_updatable(state, addon)
        resolve_conflicts = params.get("resolveConflicts")
        if resolve_conflicts is not None and resolve_conflicts not in RESOLVE_CONFLICTS_MODES:
            raise _invalid_parameter(f"Unsupported resolveConflicts value: {resolve_conflicts}")
        target_version = params.get("addonVersion") or addon.version
        if params.get("addonVersion"):
            self._check_target_version(state, addon, target_version)
        if params.get("configurationValues") is not None:
            self._validated_configuration(addon.name, target_version, params["configurationValues"])
        update = self._start_update(state, addon, params, target_version)
        if token:
            self._idempotency[(state.name, addon.name, token)] = (_fingerprint(params), update.id)
        return {"update": update.to_api()}

    def _repeated_request(
        self, state: _Cluster, addon: _Addon, token: str, params: dict[str, Any]
    ) -> _AddonUpdate | None:
        """The update a retried request (same clientRequestToken) already started, if any."""
        seen = self._idempotency.get((state.name, addon.name, token))
        if seen is None:
            return None
        fingerprint, update_id = seen
        if fingerprint != _fingerprint(params):
            # [INF] The API model declares no dedicated error for a reused token with other parameters.
            raise _invalid_parameter(
                f"Client request token {token} was already used with different parameters"
            )
        return self._updates[update_id]

    def _check_updatable(self, state: _Cluster, addon: _Addon) -> None:
        running = next(
            (u for u in state.updates if u.addon == addon.name and u.status == "InProgress"),
            None,
        )
        if running is not None:
            # Wording modelled on the cluster-level message (FIDELITY 1.21-1.23) [INF].
            raise _in_use(
                f"Cannot AddonUpdate because addon {addon.name} in cluster {state.name} currently has update "
                f"{running.id} in progress"
            )
        if addon.status not in UPDATABLE_STATUSES:
            raise _in_use(f"Addon {addon.name} cannot be updated as it is currently in {addon.status} state")

    def _check_target_version(self, state: _Cluster, addon: _Addon, target_version: str) -> None:
        catalog_version = self._catalog_version(addon.name, target_version)
        # FIDELITY 2.23/2.24: unknown and incompatible versions get the same synchronous 400.
        if catalog_version is None or not catalog_version.is_compatible_with(state.version):
            raise _invalid_parameter("Addon version specified is not supported")
        shown_name = ONE_MINOR_PER_UPDATE.get(addon.name)
        if shown_name is not None:
            current_major, current_minor = addon_minor(addon.version)
            target_major, target_minor = addon_minor(target_version)
            # FIDELITY 2.29-2.32: one minor at a time, up or down. [INF] for eks-pod-identity-agent:
            # the rule is documented (2.30) but only the vpc-cni message is observed.
            if current_major != target_major or abs(current_minor - target_minor) > 1:
                raise _invalid_parameter(
                    f"Updating {shown_name} can only go up or down 1 minor version at a time"
                )

    def _start_update(
        self, state: _Cluster, addon: _Addon, params: dict[str, Any], target_version: str
    ) -> _AddonUpdate:
        now = self.clock.now()
        seconds = state.update_seconds.get(addon.name, DEFAULT_UPDATE_SECONDS.get(addon.name, 120))
        associations = params.get("podIdentityAssociations")
        update = _AddonUpdate(
            id=str(uuid.uuid4()),
            cluster=state.name,
            addon=addon.name,
            created_at=now,
            finishes_at=now + timedelta(seconds=seconds),
            params=_update_params(params),
            target_version=target_version,
            resolve_conflicts=params.get("resolveConflicts"),
            configuration_values=params.get("configurationValues"),
            service_account_role_arn=params.get("serviceAccountRoleArn"),
            pod_identity_associations=(
                None if associations is None else [self._association_arn(state) for _ in associations]
            ),
            planned_failure=self._take_fault(state, addon.name, "update_fails", target_version),
            leaves_pods_unready=self._take_fault(state, addon.name, "pods_never_ready", target_version)
            is not None,
        )
        state.updates.append(update)
        self._updates[update.id] = update
        addon.status = "UPDATING"
        addon.modified_at = now
        return update

    def _take_fault(
        self, state: _Cluster, addon_name: str, fault_type: str, target_version: str
    ) -> dict[str, Any] | None:
        """Remove and return the first pending fault of this type that applies to the target version."""
        pending = state.faults.get(addon_name, [])
        for fault in pending:
            if fault["type"] == fault_type and fault.get("toVersion") in (None, target_version):
                pending.remove(fault)
                return fault
        return None

    def _association_arn(self, state: _Cluster) -> str:
        return (
            f"arn:{state.partition}:eks:{state.region}:{state.account_id}:podidentityassociation/"
            f"{state.name}/a-{uuid.uuid4().hex[:17]}"
        )

    # ---- finishing an update ----------------------------------------------------------------

    def _finish_update(self, update: _AddonUpdate) -> None:
        state = self._clusters[update.cluster]
        addon = state.addons[update.addon]
        addon.modified_at = update.finishes_at
        # [INF] A failed update (injected failure or conflict) leaves the add-on ACTIVE on its old
        # version with nothing applied. FIDELITY 2.20 describes a timeout that keeps the new version
        # (DEGRADED); 2.12 leaves the conflict case UNKNOWN. The simulator takes the simplest reading.
        addon.status = "ACTIVE"
        if update.planned_failure is not None:
            self._fail(
                update,
                update.planned_failure.get("errorCode", "Unknown"),
                update.planned_failure.get("message", "The add-on update failed."),
            )
            return
        configuration_values = (
            addon.configuration_values if update.configuration_values is None else update.configuration_values
        )
        configuration = _parse_configuration(configuration_values)
        desired = addon_manifests(addon.name, update.target_version, state.info, configuration)
        if update.resolve_conflicts in (None, "NONE"):
            # FIDELITY 2.7: the default when resolveConflicts is left out is UNKNOWN; eksctl's default
            # (NONE, 2.8) is used.
            conflicts = _conflicts(state.store, desired)
            if conflicts:
                self._fail(update, "ConfigurationConflict", f"{CONFLICT_MESSAGE} {' '.join(conflicts)}")
                return
        for obj in desired:
            _apply(state.store, obj, take_conflicting_fields=update.resolve_conflicts == "OVERWRITE")
        self._record_success(state, addon, update, configuration_values)

    def _fail(self, update: _AddonUpdate, error_code: str, message: str) -> None:
        update.status = "Failed"
        # The conflict sample in api_samples/describe_update.json carries no resource IDs.
        update.errors = [{"errorCode": error_code, "errorMessage": message, "resourceIds": []}]

    def _record_success(
        self, state: _Cluster, addon: _Addon, update: _AddonUpdate, configuration_values: str | None
    ) -> None:
        if update.leaves_pods_unready:
            addon.pods_not_ready = True
        elif update.target_version != addon.version:
            addon.pods_not_ready = False
        addon.version = update.target_version
        addon.configuration_values = configuration_values
        if update.service_account_role_arn is not None:
            addon.service_account_role_arn = update.service_account_role_arn or None
        if update.pod_identity_associations is not None:
            addon.pod_identity_associations = list(update.pod_identity_associations)
        sync_addon_pods(
            state.store,
            addon.name,
            fallback_node_count=state.node_count,
            new_pods_ready=not addon.pods_not_ready,
        )
        update.status = "Successful"

    # ---- lookups --------------------------------------------------------------------------------

    def _cluster(self, name: str) -> _Cluster:
        state = self._clusters.get(name)
        if state is None:
            raise _not_found(f"No cluster found for name: {name}.")
        return state

    def _setup_cluster(self, name: str) -> _Cluster:
        """Cluster lookup for the setup API, where a wrong name is a scenario error."""
        state = self._clusters.get(name)
        if state is None:
            raise ValueError(f"unknown cluster {name!r}")
        return state

    def _nodegroup(self, state: _Cluster, name: str) -> Nodegroup:
        nodegroup = self._nodegroups.nodegroups.get((state.name, name))
        if nodegroup is None:
            raise _not_found(f"No node group found for name: {name}.")  # [INF] wording
        return nodegroup

    def _setup_nodegroup(self, cluster: str, name: str) -> Nodegroup:
        self._setup_cluster(cluster)
        nodegroup = self._nodegroups.nodegroups.get((cluster, name))
        if nodegroup is None:
            raise ValueError(f"unknown node group {name!r} in cluster {cluster!r}")
        return nodegroup

    def _cluster_ref(self, state: _Cluster) -> ClusterRef:
        return ClusterRef(state.name, state.region, state.account_id, state.partition, state.store)

    def _addon(self, state: _Cluster, name: str) -> _Addon:
        addon = state.addons.get(name)
        if addon is None:
            raise _not_found(f"No addon: {name} found in cluster: {state.name}")
        return addon

    def _catalog_version(self, addon_name: str, version: str) -> AddonVersion | None:
        entry = self.catalog.get(addon_name)
        return None if entry is None else entry.version(version)

    def _addon_owning_workload(self, state: _Cluster, key: ObjectKey) -> _Addon | None:
        for addon in state.addons.values():
            if key in ADDON_WORKLOADS.get(addon.name, ()):
                return addon
        return None

    def _validated_configuration(self, addon_name: str, version: str, text: str | None) -> dict[str, Any]:
        configuration = _parse_configuration(text)
        problems = _schema_problems(configuration_schema(addon_name, version), configuration)
        if problems:
            raise _invalid_parameter(f"{SCHEMA_MESSAGE} [{', '.join(problems)}]")
        return configuration


# ==== module helpers =============================================================================


def _required(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if not value:
        raise _invalid_parameter(f"Missing required parameter: {name}")
    return str(value)


def _matches_filter(allowed: list[str] | None, value: str) -> bool:
    return not allowed or value in allowed


def _with_token(body: dict[str, Any], next_token: str | None) -> dict[str, Any]:
    if next_token is not None:
        body["nextToken"] = next_token
    return body


def _page(items: list[Any], params: dict[str, Any], operation: str) -> tuple[list[Any], str | None]:
    """One page of `items` and the token of the next one (None on the last page)."""
    max_results = params.get("maxResults", MAX_PAGE_SIZE)
    if not isinstance(max_results, int) or not 1 <= max_results <= MAX_PAGE_SIZE:
        raise _invalid_parameter(f"maxResults must be between 1 and {MAX_PAGE_SIZE}")
    start = _decode_token(params.get("nextToken"), operation)
    end = start + max_results
    return items[start:end], (_encode_token(operation, end) if end < len(items) else None)


def _encode_token(operation: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"op": operation, "offset": offset}).encode()).decode()


def _decode_token(token: str | None, operation: str) -> int:
    if not token:
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError) as exc:
        raise _invalid_parameter("The nextToken is not valid") from exc
    if (
        not isinstance(decoded, dict)
        or decoded.get("op") != operation
        or not isinstance(decoded.get("offset"), int)
    ):
        raise _invalid_parameter("The nextToken is not valid")
    return int(decoded["offset"])


def _fingerprint(params: dict[str, Any]) -> str:
    return json.dumps(
        {k: v for k, v in params.items() if k != "clientRequestToken"}, sort_keys=True, default=str
    )


def _validated_update_config(requested: Any, current: dict[str, Any]) -> dict[str, Any]:
    """A node group's updateConfig after `requested` (NodegroupUpdateConfig, FIDELITY 1.33/1.34)."""
    if not isinstance(requested, dict) or not requested:
        raise _invalid_parameter(
            "updateConfig must name maxUnavailable, maxUnavailablePercentage or updateStrategy"
        )
    unknown = sorted(set(requested) - set(UPDATE_CONFIG_KEYS))
    if unknown:
        raise _invalid_parameter(f"Unknown updateConfig fields: {', '.join(unknown)}")
    if "maxUnavailable" in requested and "maxUnavailablePercentage" in requested:
        raise _invalid_parameter(
            "Only one of maxUnavailable and maxUnavailablePercentage can be specified"
        )  # [INF]
    for key in ("maxUnavailable", "maxUnavailablePercentage"):
        if key in requested:
            value = requested[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100:
                raise _invalid_parameter(f"{key} must be an integer between 1 and 100")  # [INF] wording
    strategy = requested.get("updateStrategy")
    if strategy is not None and strategy not in UPDATE_STRATEGIES:
        raise _invalid_parameter(f"updateStrategy must be one of {', '.join(UPDATE_STRATEGIES)}")
    config = dict(current)
    if "maxUnavailable" in requested or "maxUnavailablePercentage" in requested:
        config.pop("maxUnavailable", None)
        config.pop("maxUnavailablePercentage", None)
    config.update(requested)
    if "maxUnavailable" not in config and "maxUnavailablePercentage" not in config:
        config["maxUnavailable"] = 1  # [DOC] 1.33: the default is one node
    return config


def _update_params(params: dict[str, Any]) -> list[dict[str, str]]:
    """Update.params in the order of the AWS CLI update-addon example."""
    named = [
        ("AddonVersion", "addonVersion"),
        ("ServiceAccountRoleArn", "serviceAccountRoleArn"),
        ("ResolveConflicts", "resolveConflicts"),
        ("ConfigurationValues", "configurationValues"),
        ("PodIdentityAssociations", "podIdentityAssociations"),
    ]
    out = []
    for param_type, key in named:
        if params.get(key) is None:
            continue
        value = params[key]
        out.append({"type": param_type, "value": value if isinstance(value, str) else json.dumps(value)})
    return out


def _addon_version_api(
    addon_name: str, version: AddonVersion, kubernetes_version: str | None
) -> dict[str, Any]:
    compatibilities = [
        c
        for c in version.compatibilities
        if kubernetes_version is None or c.cluster_version == kubernetes_version
    ]
    return {
        "addonVersion": version.addon_version,
        "architecture": ["amd64", "arm64"],
        "computeTypes": ["ec2"],
        "compatibilities": [
            {
                "clusterVersion": c.cluster_version,
                "platformVersions": list(c.platform_versions),
                "defaultVersion": c.default_version,
            }
            for c in compatibilities
        ],
        "requiresConfiguration": version.requires_configuration,
        "requiresIamPermissions": addon_name in REQUIRES_IAM_PERMISSIONS,
    }


# ---- configuration values ---------------------------------------------------------------------


def _parse_configuration(text: str | None) -> dict[str, Any]:
    """configurationValues is JSON or YAML (FIDELITY 2.36); empty or `{}` means EKS defaults."""
    if text is None or not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise _invalid_parameter(f"{SCHEMA_MESSAGE} [$: not valid JSON or YAML]") from exc
    if parsed is None:
        return {}
    if not isinstance(parsed, dict):
        raise _invalid_parameter(f"{SCHEMA_MESSAGE} [$: {_json_type(parsed)} found, object expected]")
    return parsed


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    names = {float: "number", str: "string", dict: "object", list: "array", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _schema_problems(schema: dict[str, Any], configuration: dict[str, Any]) -> list[str]:
    errors = sorted(
        Draft6Validator(schema).iter_errors(configuration), key=lambda e: [str(p) for p in e.absolute_path]
    )
    return [message for error in errors for message in _describe_schema_error(error)]


def _describe_schema_error(error: ValidationError) -> list[str]:
    """Messages in the wording EKS's validator uses, e.g.
    `$.nodeSelector: is not defined in the schema and the schema does not allow additional properties`."""
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        not_allowed = "is not defined in the schema and the schema does not allow additional properties"
        return [f"{where}.{extra}: {not_allowed}" for extra in sorted(set(error.instance) - allowed)]
    if error.validator == "type":
        expected = error.validator_value
        expected_text = expected if isinstance(expected, str) else ", ".join(expected)
        return [f"{where}: {_json_type(error.instance)} found, {expected_text} expected"]
    if error.validator == "enum":
        choices = ", ".join(map(str, error.validator_value))
        return [f"{where}: does not have a value in the enumeration [{choices}]"]
    if error.validator == "minimum":
        return [f"{where}: must have a minimum value of {error.validator_value}"]
    return [f"{where}: {error.message}"]


# ---- applying objects with field ownership ----------------------------------------------------


def _manifest_leaf_paths(value: Any, prefix: FieldPath = ()) -> list[FieldPath]:
    """The fields an apply of `value` sets, named the way managedFields names them."""
    if not prefix and isinstance(value, dict):
        paths = []
        for key, child in value.items():
            if key in ("apiVersion", "kind", "status"):
                continue
            if key == "metadata":
                paths += _manifest_leaf_paths(child.get("labels") or {}, ("metadata", "labels"))
                continue
            paths += _manifest_leaf_paths(child, (key,))
        return paths
    if isinstance(value, dict) and value:
        return [p for key, child in value.items() for p in _manifest_leaf_paths(child, (*prefix, key))]
    if isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        return [
            p
            for item in value
            for p in _manifest_leaf_paths(
                {k: v for k, v in item.items() if k != "name"}, (*prefix, item_step({"name": item["name"]}))
            )
        ]
    return [prefix]


def _overlaps(a: FieldPath, b: FieldPath) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


def _settable(path: FieldPath) -> FieldPath:
    """A path that ends on a map key (set_path cannot end on a list item)."""
    while path and path[-1].startswith("["):
        path = path[:-1]
    return path


def _conflicting_fields(current: dict[str, Any], desired: dict[str, Any]) -> list[FieldPath]:
    """Fields another manager owns that the apply would change: server-side apply's conflicts
    (UG:kubernetes-field-management). A field set to the value EKS applies is not a conflict."""
    desired_paths = _manifest_leaf_paths(desired)
    found: list[FieldPath] = []
    for entry in current["metadata"].get("managedFields", []):
        if entry["manager"] == EKS_FIELD_MANAGER:
            continue
        for owned in fieldsv1_to_paths(entry.get("fieldsV1", {})):
            for applied in desired_paths:
                if not _overlaps(owned, applied):
                    continue
                path = _settable(owned if len(owned) <= len(applied) else applied)
                if path not in found and get_path(current, path, None) != get_path(desired, path, None):
                    found.append(path)
    return found


def _kind_label(kind: str) -> str:
    """`ConfigMap`, `Deployment.apps`: how the conflict message names a kind."""
    api_version = KINDS[kind][0]
    return f"{kind}.{api_version.split('/')[0]}" if "/" in api_version else kind


def _conflicts(store: KubeStore, desired: list[dict[str, Any]]) -> list[str]:
    """`ConfigMap coredns - .data.Corefile` for every conflicting field (FIDELITY 2.10)."""
    messages = []
    for obj in desired:
        current = store.get(*KubeStore.key_of(obj))
        if current is None:
            continue
        for path in _conflicting_fields(current, obj):
            messages.append(f"{_kind_label(obj['kind'])} {obj['metadata']['name']} - {format_path(path)}")
    return messages


def _apply(store: KubeStore, desired: dict[str, Any], *, take_conflicting_fields: bool) -> None:
    """Apply `desired` as EKS. Fields other managers own keep their value and owner, except
    conflicting ones when `take_conflicting_fields` (resolveConflicts=OVERWRITE: EKS takes them back).
    Fields outside EKS's manifest are never touched, as with server-side apply."""
    key = KubeStore.key_of(desired)
    before = store.get(*key)
    if before is not None and take_conflicting_fields:
        for path in _conflicting_fields(before, desired):
            store.set_field(*key, path, copy.deepcopy(get_path(desired, path)), EKS_FIELD_MANAGER)
    store.put(desired, EKS_FIELD_MANAGER, yield_to_others=True)
    _record_generation(store, key, before)


def _record_generation(store: KubeStore, key: ObjectKey, before: dict[str, Any] | None) -> None:
    """metadata.generation counts spec changes (ConfigMaps have no spec and no generation)."""
    after = store.get(*key)
    if after is None or "spec" not in after:
        return
    previous = 0 if before is None else int(before["metadata"].get("generation", 1))
    changed = before is None or before.get("spec") != after.get("spec")
    generation = previous + 1 if changed else previous

    def set_generation(obj: dict[str, Any]) -> None:
        obj["metadata"]["generation"] = generation

    store.mutate(*key, set_generation)
