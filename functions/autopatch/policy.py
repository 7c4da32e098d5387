"""Fleet policy: which clusters are patched, who approves, and how cautiously.

One model serves three readers: the CDK app validates it at synth (and ships it to the Lambdas as
JSON inside the asset), the Lambdas load it once per cold start, and the rehearsal reads the same
block from a scenario file. A broken file fails loudly with the field that is wrong.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MINOR = re.compile(r"^1\.\d{1,2}$")

SUPPORTED_ADDONS = ("vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver", "eks-pod-identity-agent")


class PolicyError(ValueError):
    """The fleet policy file is missing, unreadable or invalid."""


def parse_duration(value: Any) -> int:
    """Seconds from `90`, `"90s"`, `"30m"`, `"6h"` or `"1d"`."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '6h'")
    if isinstance(value, int | float):
        seconds = int(value)
    elif isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"{value!r} is not a duration; use e.g. '90s', '30m', '6h' or '1d'")
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    else:
        raise ValueError("a duration must be a number of seconds or a string like '6h'")
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


Duration = Annotated[int, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Approver(_Strict):
    name: str = Field(min_length=1)
    slackUserId: str | None = None
    email: str | None = None


class ClusterSettings(_Strict):
    """Settings that a cluster may override from the fleet defaults. `None` means "inherit"."""

    approval: Literal["required", "none"] | None = None
    approvers: list[Approver] | None = None
    rollbackOnFailure: bool | None = None
    retryAfter: Duration | None = None
    lockWaitBudget: Duration | None = None
    approvalTimeout: Duration | None = None
    addons: list[str] | None = None
    resolveConflicts: Literal["PRESERVE", "OVERWRITE"] | None = None
    # Managed node groups: which to roll (None: every managed node group), how many nodes at a
    # time (None: leave the group's updateConfig as it is), and whether a PDB that blocks the
    # drain may be overridden with force=true after an approver has seen the pods it would delete.
    nodegroups: list[str] | None = None
    maxUnavailable: int | None = Field(default=None, ge=1, le=100)
    maxUnavailablePercentage: int | None = Field(default=None, ge=1, le=100)
    allowForce: bool | None = None
    # Control-plane upgrades: "next-minor" (one hop) or a pinned version such as "1.32" (as many
    # hops as it takes, one minor each); the days before an end-of-support date at which the
    # end-of-support watcher speaks up; whether cluster-autoscaler lagging the target blocks a hop.
    upgradeTarget: str | None = None
    endOfSupportThresholds: list[int] | None = None
    autoscalerMustMatch: bool | None = None
    # Room for later policy gates; accepted and carried, not yet enforced.
    wave: int | None = None
    windows: list[str] | None = None

    @model_validator(mode="after")
    def _known_addons(self) -> ClusterSettings:
        for name in self.addons or []:
            if name not in SUPPORTED_ADDONS:
                raise ValueError(f"unknown add-on {name!r}; supported: {', '.join(SUPPORTED_ADDONS)}")
        if self.maxUnavailable is not None and self.maxUnavailablePercentage is not None:
            raise ValueError("set maxUnavailable or maxUnavailablePercentage, not both")
        if self.upgradeTarget is not None and not (
            self.upgradeTarget == "next-minor" or _MINOR.match(self.upgradeTarget)
        ):
            raise ValueError(
                f"upgradeTarget {self.upgradeTarget!r}: use 'next-minor' or a version like '1.32'"
            )
        thresholds = self.endOfSupportThresholds
        if thresholds is not None and (not thresholds or any(d < 1 or d > 365 for d in thresholds)):
            raise ValueError("endOfSupportThresholds: give one or more whole days between 1 and 365")
        return self


class Defaults(ClusterSettings):
    """Fleet-wide values; unlike a cluster's settings, none of them may be null."""

    approval: Literal["required", "none"] = "none"
    approvers: list[Approver] = Field(default_factory=list)
    rollbackOnFailure: bool = True
    retryAfter: Duration = 24 * 3600
    lockWaitBudget: Duration = 6 * 3600
    approvalTimeout: Duration = 24 * 3600
    addons: list[str] = Field(default_factory=lambda: ["vpc-cni", "coredns", "kube-proxy"])
    resolveConflicts: Literal["PRESERVE", "OVERWRITE"] = "PRESERVE"
    allowForce: bool = False
    upgradeTarget: str = "next-minor"
    endOfSupportThresholds: list[int] = Field(default_factory=lambda: [90, 60, 30, 14, 7])
    autoscalerMustMatch: bool = False
    wave: int = 0
    windows: list[str] = Field(default_factory=list)


class ClusterEntry(ClusterSettings):
    name: str = Field(min_length=1, max_length=100)
    accountId: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")


class ClusterPolicy(_Strict):
    """A cluster's effective policy: its own settings over the fleet defaults."""

    name: str
    accountId: str
    region: str
    approval: Literal["required", "none"]
    approvers: list[Approver]
    rollbackOnFailure: bool
    retryAfter: int
    lockWaitBudget: int
    approvalTimeout: int
    addons: list[str]
    resolveConflicts: Literal["PRESERVE", "OVERWRITE"]
    nodegroups: list[str] | None = None
    maxUnavailable: int | None = None
    maxUnavailablePercentage: int | None = None
    allowForce: bool = False
    upgradeTarget: str = "next-minor"
    endOfSupportThresholds: list[int] = Field(default_factory=lambda: [90, 60, 30, 14, 7])
    autoscalerMustMatch: bool = False
    wave: int
    windows: list[str]

    @property
    def key(self) -> str:
        return cluster_key(self.accountId, self.region, self.name)

    def upgrade_target(self, current: str) -> str | None:
        """The version a control-plane upgrade from `current` should end on (None: nothing to do)."""
        major, minor = (int(x) for x in current.split(".")[:2])
        if self.upgradeTarget == "next-minor":
            return f"{major}.{minor + 1}"
        pinned = tuple(int(x) for x in self.upgradeTarget.split("."))
        return self.upgradeTarget if pinned > (major, minor) else None

    def approver(self, name_or_id: str) -> Approver | None:
        for approver in self.approvers:
            if name_or_id in (approver.name, approver.slackUserId, approver.email):
                return approver
        return None


def cluster_key(account_id: str, region: str, name: str) -> str:
    return f"{account_id}#{region}#{name}"


class FleetPolicy(_Strict):
    version: Literal[1] = 1
    defaults: Defaults = Field(default_factory=Defaults)
    clusters: list[ClusterEntry]

    @model_validator(mode="after")
    def _unique_clusters(self) -> FleetPolicy:
        seen: set[str] = set()
        for entry in self.clusters:
            key = cluster_key(entry.accountId, entry.region, entry.name)
            if key in seen:
                raise ValueError(f"cluster {entry.name} in {entry.accountId}/{entry.region} is listed twice")
            seen.add(key)
        for policy in self.effective():
            if policy.approval == "required" and not policy.approvers:
                raise ValueError(f"cluster {policy.name} requires approval but lists no approvers")
            if policy.allowForce and not policy.approvers:
                # force=true deletes the pods a PDB protects: only after an approver has seen them.
                raise ValueError(f"cluster {policy.name} allows force but lists no approvers to approve it")
        return self

    def effective(self) -> list[ClusterPolicy]:
        merged = []
        base = self.defaults.model_dump()
        for entry in self.clusters:
            values = dict(base)
            own = {k: v for k, v in entry.model_dump().items() if v is not None}
            if {"maxUnavailable", "maxUnavailablePercentage"} & set(own):
                # A cluster that sets one of the two replaces the defaults' choice, not adds to it.
                values.pop("maxUnavailable", None)
                values.pop("maxUnavailablePercentage", None)
            values.update(own)
            merged.append(ClusterPolicy.model_validate(values))
        return merged

    def cluster(self, account_id: str, region: str, name: str) -> ClusterPolicy | None:
        wanted = cluster_key(account_id, region, name)
        return next((p for p in self.effective() if p.key == wanted), None)


def parse_policy(data: Any, *, origin: str = "policy") -> FleetPolicy:
    try:
        return FleetPolicy.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in exc.errors()
        )
        raise PolicyError(f"{origin} is not a valid fleet policy: {problems}") from exc


def load_policy(path: str | Path) -> FleetPolicy:
    """Read a fleet policy from YAML or JSON."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read fleet policy {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise PolicyError(f"{path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path} must hold a mapping with 'defaults' and 'clusters'")
    return parse_policy(data, origin=str(path))


@lru_cache(maxsize=4)
def load_policy_cached(path: str) -> FleetPolicy:
    return load_policy(path)
