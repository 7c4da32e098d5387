"""Rehearsal scenarios: a start time, a fleet, its clusters' state, the policy, and what happens.

The format is documented in docs/scenarios.md. A broken scenario fails with the field that is wrong.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from autopatch.policy import FleetPolicy, parse_policy
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rehearsal.kube.store import KINDS, served_api_versions

_OFFSET = re.compile(r"^\+?\s*(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScenarioError(ValueError):
    pass


def offset_seconds(text: str | int) -> int:
    """`+0m`, `+90s`, `+2h`, `+1d` (or a number of seconds) after the scenario's `now`."""
    if isinstance(text, int):
        return text
    match = _OFFSET.match(str(text).strip())
    if not match:
        raise ValueError(f"{text!r} is not an offset like '+5m' or '+2h'")
    return int(match.group(1)) * _UNITS[match.group(2)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Edit(_Strict):
    """A customer's change to an add-on object, made through the Kubernetes API."""

    object: str  # "ConfigMap kube-system/coredns"
    path: str  # ".data.Corefile"
    value: Any = None
    replace: tuple[str, str] | None = None  # (old, new) inside a string field
    manager: str = "kubectl-edit"


class AddonSeed(_Strict):
    name: str
    version: str
    configurationValues: str | None = None
    serviceAccountRoleArn: str | None = None
    edits: list[Edit] = Field(default_factory=list)


class Fault(_Strict):
    """How a later update misbehaves: of an add-on (`addon`), or of the control plane (`controlPlane: true`,
    UpdateClusterVersion; `update_fails` and `update_duration` only)."""

    addon: str | None = None
    controlPlane: bool = False
    type: Literal["update_fails", "pods_never_ready", "update_duration"]
    toVersion: str | None = None
    errorCode: str | None = None
    message: str | None = None
    seconds: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _target(self) -> Fault:
        if self.controlPlane and self.addon is not None:
            raise ValueError("a fault names either addon or controlPlane: true, not both")
        if not self.controlPlane and self.addon is None:
            raise ValueError(
                "an add-on fault needs addon (or set controlPlane: true for a cluster version update)"
            )
        if self.controlPlane and self.type == "pods_never_ready":
            raise ValueError("a controlPlane fault is update_fails or update_duration")
        if self.controlPlane and self.type == "update_duration" and self.seconds is None:
            raise ValueError("a controlPlane update_duration fault needs seconds")
        return self


class ClusterSubnetSeed(_Strict):
    az: str
    freeIps: int = Field(default=250, ge=0, le=65000)  # exact: addresses are taken to leave this many


class ApiUsageSeed(_Strict):
    """Requests to a deprecated API seen in the cluster's audit log (read by the upgrade insights)."""

    userAgent: str
    path: str = Field(pattern=r"^/apis/[a-z0-9.-]+/v[0-9a-z]+/[a-z]+$")  # /apis/batch/v1beta1/cronjobs
    requests: int = Field(default=1, ge=1)


class SubnetSeed(_Strict):
    az: str
    freeIps: int = Field(default=250, ge=1, le=65000)  # rounded up to what a CIDR block offers


class NodegroupSeed(_Strict):
    """A managed node group (real EKS-optimized AMI release versions: scenarios/data/ami_releases.json)."""

    name: str
    releaseVersion: str
    amiType: str = "AL2023_x86_64_STANDARD"
    nodes: int = Field(default=3, ge=1, le=500)
    maxNodes: int | None = None
    instanceType: str = "m6i.large"
    subnets: list[SubnetSeed] = Field(default_factory=lambda: [SubnetSeed(az="a"), SubnetSeed(az="b")])
    updateConfig: dict[str, Any] | None = None
    customAmiId: str | None = None


class WorkloadSeed(_Strict):
    namespace: str
    name: str
    replicas: int = Field(default=3, ge=1, le=10000)
    nodegroup: str | None = None
    pdb: dict[str, Any] | None = None  # {minAvailable: n} or {maxUnavailable: n}
    readinessProbe: bool = True


class PodChange(_Strict):
    """At a time of the run, a workload's pod (by its position) turns Ready or not Ready."""

    at: str
    workload: str  # namespace/name
    pod: int = 0
    ready: bool = False


class ClusterSeed(_Strict):
    name: str
    version: str
    accountId: str | None = None
    region: str | None = None
    nodes: int = Field(default=3, ge=0, le=500)  # nodes outside managed node groups
    addons: list[AddonSeed] = Field(default_factory=list)
    nodegroups: list[NodegroupSeed] = Field(default_factory=list)
    workloads: list[WorkloadSeed] = Field(default_factory=list)
    podChanges: list[PodChange] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)
    # the control plane and what its upgrade looks at
    supportType: Literal["STANDARD", "EXTENDED"] = "EXTENDED"
    subnets: list[ClusterSubnetSeed] = Field(
        default_factory=lambda: [ClusterSubnetSeed(az="a"), ClusterSubnetSeed(az="b")]
    )
    enforceUpgradeInsights: bool | None = None  # None: the simulator's default (not enforced)
    nodesVersion: str | None = Field(default=None, pattern=r"^\d+\.\d+$")  # kubelet of `nodes`
    objects: list[dict[str, Any]] = Field(default_factory=list)  # manifests applied with kubectl apply
    apiUsage: list[ApiUsageSeed] = Field(default_factory=list)

    @field_validator("version")
    @classmethod
    def _minor(cls, version: str) -> str:
        if not re.fullmatch(r"\d+\.\d+", version):
            raise ValueError(f"{version!r} is not a Kubernetes minor version like '1.31'")
        return version

    @model_validator(mode="after")
    def _served_objects(self) -> ClusterSeed:
        for index, manifest in enumerate(self.objects):
            kind, api_version = manifest.get("kind"), manifest.get("apiVersion")
            name = (manifest.get("metadata") or {}).get("name")
            where = f"objects.{index}"
            if kind not in KINDS:
                raise ValueError(f"{where}: kind {kind!r} is not one the fake Kubernetes API holds")
            if not name:
                raise ValueError(f"{where}: metadata.name is required")
            served = served_api_versions(str(kind), self.version)
            if api_version not in served:
                raise ValueError(
                    f"{where}: Kubernetes {self.version} does not serve {kind} as {api_version!r} "
                    f"(it serves {', '.join(served) or 'no version of it'})"
                )
        if self.nodesVersion is not None and tuple(map(int, self.nodesVersion.split("."))) > tuple(
            map(int, self.version.split("."))
        ):
            raise ValueError("nodesVersion cannot be newer than the cluster's version")
        return self


class InjectedEvent(_Strict):
    """An event put on the bus directly (tests: malformed events, duplicates)."""

    at: str = "+0m"
    repeat: int = Field(default=1, ge=1, le=1000)
    source: str = "autopatch"
    detail_type: str = Field(alias="detail-type")
    detail: Any


class WatcherRuns(_Strict):
    runs: list[str] = Field(default_factory=lambda: ["+0m"])

    @field_validator("runs")
    @classmethod
    def _offsets(cls, runs: list[str]) -> list[str]:
        for run in runs:
            offset_seconds(run)
        return runs


class ApprovalPlan(_Strict):
    mode: Literal["auto", "reject", "prompt", "none"] = "auto"
    delay: str = "+4m"  # how long the simulated approver takes to click


class Scenario(_Strict):
    name: str
    description: str = ""
    now: datetime
    accountId: str = "111122223333"
    region: str = "eu-west-1"
    policy: dict[str, Any]
    clusters: list[ClusterSeed]
    watcher: WatcherRuns = Field(default_factory=WatcherRuns)
    events: list[InjectedEvent] = Field(default_factory=list)
    approvals: ApprovalPlan = Field(default_factory=ApprovalPlan)

    @field_validator("now")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @property
    def fleet_policy(self) -> FleetPolicy:
        return parse_policy(self.policy, origin=f"scenario {self.name}: policy")

    def at(self, offset: str) -> datetime:
        return self.now + timedelta(seconds=offset_seconds(offset))


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path} is not valid YAML: {exc}") from exc
    return parse_scenario(data, origin=str(path))


def parse_scenario(data: Any, *, origin: str = "scenario") -> Scenario:
    try:
        scenario = Scenario.model_validate(data)
        scenario.fleet_policy  # noqa: B018 - validate the policy block too
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise ScenarioError(f"{origin} is not a valid scenario: {problems}") from exc
    except ValueError as exc:
        raise ScenarioError(str(exc)) from exc
    return scenario
