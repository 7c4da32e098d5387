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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    addon: str
    type: Literal["update_fails", "pods_never_ready", "update_duration"]
    toVersion: str | None = None
    errorCode: str | None = None
    message: str | None = None
    seconds: int | None = None


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
