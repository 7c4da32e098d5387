"""The EKS add-on catalogue and Kubernetes version calendar the simulator serves.

Both come from JSON files under `scenarios/data/`, built from AWS documentation tables (each file
names its sources). The configuration schemas returned by DescribeAddonConfiguration are written
here: they are shaped like the real draft-06 schemas (`additionalProperties: false` at every level)
but list only the keys the rehearsal uses.

The compatibility of aws-ebs-csi-driver and eks-pod-identity-agent with Kubernetes versions is an
inference, not published data: see each add-on's `compatibilityNote` in the catalogue file.

The EKS-optimized AMI releases (`ami_releases.json`, from the amazon-eks-ami changelog) back managed
node group updates and the SSM public parameters that recommend a release.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "data"
ADDON_CATALOG_FILE = DATA_DIR / "addon_catalog.json"
KUBERNETES_VERSIONS_FILE = DATA_DIR / "kubernetes_versions.json"
AMI_RELEASES_FILE = DATA_DIR / "ami_releases.json"

ADDON_VERSION_PATTERN = re.compile(r"^v(\d+)\.(\d+)\.(\d+)-eksbuild\.(\d+)$")


def parse_addon_version(version: str) -> tuple[int, int, int, int]:
    """`v1.19.2-eksbuild.5` -> (1, 19, 2, 5); raises ValueError for anything else."""
    match = ADDON_VERSION_PATTERN.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not an EKS add-on version like v1.19.2-eksbuild.5")
    major, minor, patch, build = (int(part) for part in match.groups())
    return major, minor, patch, build


def addon_minor(version: str) -> tuple[int, int]:
    major, minor, _, _ = parse_addon_version(version)
    return major, minor


@dataclass(frozen=True)
class Compatibility:
    cluster_version: str
    platform_versions: tuple[str, ...]
    default_version: bool


@dataclass(frozen=True)
class AddonVersion:
    addon_version: str
    compatibilities: tuple[Compatibility, ...]
    requires_configuration: bool

    def compatibility_with(self, cluster_version: str) -> Compatibility | None:
        return next((c for c in self.compatibilities if c.cluster_version == cluster_version), None)

    def is_compatible_with(self, cluster_version: str) -> bool:
        return self.compatibility_with(cluster_version) is not None


@dataclass(frozen=True)
class CatalogAddon:
    name: str
    type: str
    owner: str
    publisher: str
    versions: tuple[AddonVersion, ...]  # newest first

    def version(self, addon_version: str) -> AddonVersion | None:
        return next((v for v in self.versions if v.addon_version == addon_version), None)

    def versions_for(self, cluster_version: str) -> list[AddonVersion]:
        """Versions compatible with a Kubernetes minor, newest first."""
        return [v for v in self.versions if v.is_compatible_with(cluster_version)]

    def default_version_for(self, cluster_version: str) -> str | None:
        for version in self.versions_for(cluster_version):
            compatibility = version.compatibility_with(cluster_version)
            if compatibility is not None and compatibility.default_version:
                return version.addon_version
        return None


@dataclass(frozen=True)
class AddonCatalog:
    addons: dict[str, CatalogAddon]
    sources: tuple[str, ...]
    retrieved: str

    def get(self, addon_name: str) -> CatalogAddon | None:
        return self.addons.get(addon_name)

    def names(self) -> list[str]:
        return sorted(self.addons)


def _parse_version(raw: dict[str, Any]) -> AddonVersion:
    return AddonVersion(
        addon_version=raw["addonVersion"],
        compatibilities=tuple(
            Compatibility(
                cluster_version=c["clusterVersion"],
                platform_versions=tuple(c["platformVersions"]),
                default_version=bool(c["defaultVersion"]),
            )
            for c in raw["compatibilities"]
        ),
        requires_configuration=bool(raw.get("requiresConfiguration", False)),
    )


def _parse_addon(name: str, raw: dict[str, Any]) -> CatalogAddon:
    versions = sorted(
        (_parse_version(v) for v in raw["versions"]),
        key=lambda v: parse_addon_version(v.addon_version),
        reverse=True,
    )
    return CatalogAddon(
        name=name,
        type=raw["type"],
        owner=raw["owner"],
        publisher=raw["publisher"],
        versions=tuple(versions),
    )


def load_addon_catalog(path: Path = ADDON_CATALOG_FILE) -> AddonCatalog:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return AddonCatalog(
        addons={name: _parse_addon(name, body) for name, body in raw["addons"].items()},
        sources=tuple(raw["source"]),
        retrieved=raw["retrieved"],
    )


@cache
def default_addon_catalog() -> AddonCatalog:
    """The repository's catalogue, read once per process (it never changes at run time)."""
    return load_addon_catalog()


# ---- Kubernetes versions ----------------------------------------------------------------------


@dataclass(frozen=True)
class KubernetesVersion:
    version: str
    eks_release: date
    end_of_standard_support: date
    end_of_extended_support: date


def load_kubernetes_versions(path: Path = KUBERNETES_VERSIONS_FILE) -> list[KubernetesVersion]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [
        KubernetesVersion(
            version=entry["version"],
            eks_release=date.fromisoformat(entry["eks_release"]),
            end_of_standard_support=date.fromisoformat(entry["end_of_standard_support"]),
            end_of_extended_support=date.fromisoformat(entry["end_of_extended_support"]),
        )
        for entry in raw["versions"]
    ]


# ---- EKS-optimized AMI releases (managed node groups, SSM public parameters) ------------------

RELEASE_VERSION_PATTERN = re.compile(r"^(\d+)\.(\d+)\.(\d+)-(\d{8})$")
SSM_PARAMETER_PATTERN = re.compile(
    r"^/aws/service/eks/optimized-ami/(?P<minor>\d+\.\d+)/(?P<path>.+)/recommended/(?P<field>release_version|image_id)$"
)


def parse_release_version(text: str) -> tuple[int, int, int, str]:
    """`1.31.2-20241121` -> (1, 31, 2, "20241121"); raises ValueError for anything else (FIDELITY 1.9)."""
    match = RELEASE_VERSION_PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a release version like 1.31.2-20241121")
    return int(match[1]), int(match[2]), int(match[3]), match[4]


def release_minor(release_version: str) -> str:
    major, minor, _, _ = parse_release_version(release_version)
    return f"{major}.{minor}"


def release_kubelet(release_version: str) -> str:
    """`1.31.2-20241121` -> `1.31.2`."""
    major, minor, patch, _ = parse_release_version(release_version)
    return f"{major}.{minor}.{patch}"


def release_order(release_version: str) -> tuple[int, int, str, int]:
    """Sort key: newer Kubernetes minor first, then the newer AMI build, then the kubelet patch."""
    major, minor, patch, built = parse_release_version(release_version)
    return major, minor, built, patch


def minor_key(minor: str) -> tuple[int, int]:
    major, _, rest = minor.partition(".")
    return int(major), int(rest)


@dataclass(frozen=True)
class AmiType:
    name: str  # the node group amiType, e.g. AL2023_x86_64_STANDARD
    family: str  # AL2 or AL2023
    architecture: str  # x86_64 or arm64
    ssm_path: str  # the segment of /aws/service/eks/optimized-ami/<k8s>/<ssm_path>/recommended/...
    ami_name: str  # pattern with {minor} and {date}

    @property
    def kubernetes_arch(self) -> str:
        return "arm64" if self.architecture == "arm64" else "amd64"


@dataclass(frozen=True)
class AmiRelease:
    tag: str  # v20241121
    date: date  # from the tag: the release counts as published from 00:00 UTC that day
    release_versions: Mapping[str, str]  # Kubernetes minor -> release version
    families: tuple[str, ...]

    @property
    def published_at(self) -> datetime:
        return datetime(self.date.year, self.date.month, self.date.day, tzinfo=UTC)


@dataclass(frozen=True)
class FamilyLimits:
    min_kubernetes: str | None
    max_kubernetes: str | None

    def serves(self, minor: str) -> bool:
        if self.min_kubernetes is not None and minor_key(minor) < minor_key(self.min_kubernetes):
            return False
        return self.max_kubernetes is None or minor_key(minor) <= minor_key(self.max_kubernetes)


class AmiReleaseCatalog:
    """The releases one simulator knows. A scenario may publish more while it runs, so each
    simulator gets its own copy (`default_ami_releases()` returns a fresh one)."""

    def __init__(
        self,
        releases: list[AmiRelease],
        ami_types: dict[str, AmiType],
        families: dict[str, FamilyLimits],
        sources: tuple[str, ...],
        retrieved: str,
    ) -> None:
        self.releases = sorted(releases, key=lambda r: (r.date, r.tag))
        self.ami_types = ami_types
        self.families = families
        self.sources = sources
        self.retrieved = retrieved

    def publish(self, release: AmiRelease) -> None:
        if any(r.tag == release.tag for r in self.releases):
            raise ValueError(f"AMI release {release.tag} is already known")
        unknown = set(release.families) - set(self.families)
        if unknown:
            raise ValueError(
                f"unknown AMI families {sorted(unknown)}; expected some of {sorted(self.families)}"
            )
        for minor, version in release.release_versions.items():
            if release_minor(version) != minor:
                raise ValueError(f"release version {version} is not for Kubernetes {minor}")
        self.releases = sorted([*self.releases, release], key=lambda r: (r.date, r.tag))

    def ami_type(self, name: str) -> AmiType | None:
        return self.ami_types.get(name)

    def offers(self, release: AmiRelease, minor: str, family: str) -> bool:
        limits = self.families.get(family)
        return (
            minor in release.release_versions
            and family in release.families
            and limits is not None
            and limits.serves(minor)
        )

    def published(self, release_version: str, family: str, at: datetime) -> AmiRelease | None:
        """The release that carries `release_version` for `family`, if published by `at`."""
        try:
            minor = release_minor(release_version)
        except ValueError:
            return None
        for release in self.releases:
            if (
                release.release_versions.get(minor) == release_version
                and release.published_at <= at
                and self.offers(release, minor, family)
            ):
                return release
        return None

    def recommended(self, minor: str, family: str, at: datetime) -> str | None:
        """The release version of the newest release published by `at` for this minor and family."""
        for release in reversed(self.releases):
            if release.published_at <= at and self.offers(release, minor, family):
                return release.release_versions[minor]
        return None

    def ami_name(self, ami_type: AmiType, release_version: str) -> str:
        _, _, _, built = parse_release_version(release_version)
        return ami_type.ami_name.format(minor=release_minor(release_version), date=built)

    def ami_id(self, ami_type: AmiType, release_version: str) -> str:
        """A stand-in AMI id, the same for the same AMI name on every run."""
        return derived_ami_id(self.ami_name(ami_type, release_version))

    def ssm_parameter(self, name: str, at: datetime) -> str | None:
        """`/aws/service/eks/optimized-ami/<k8s>/<path>/recommended/{release_version|image_id}`."""
        match = SSM_PARAMETER_PATTERN.match(name)
        if match is None:
            return None
        ami_type = next((t for t in self.ami_types.values() if t.ssm_path == match["path"]), None)
        if ami_type is None:
            return None
        release_version = self.recommended(match["minor"], ami_type.family, at)
        if release_version is None:
            return None
        if match["field"] == "release_version":
            return release_version
        return self.ami_id(ami_type, release_version)


def derived_ami_id(seed: str) -> str:
    return "ami-" + hashlib.sha256(seed.encode()).hexdigest()[:17]


def load_ami_releases(path: Path = AMI_RELEASES_FILE) -> AmiReleaseCatalog:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return AmiReleaseCatalog(
        releases=[
            AmiRelease(
                tag=entry["tag"],
                date=date.fromisoformat(entry["date"]),
                release_versions=dict(entry["release_versions"]),
                families=tuple(entry["families"]),
            )
            for entry in raw["releases"]
        ],
        ami_types={
            name: AmiType(
                name=name,
                family=body["family"],
                architecture=body["architecture"],
                ssm_path=body["ssm_path"],
                ami_name=body["ami_name"],
            )
            for name, body in raw["ami_types"].items()
        },
        families={
            name: FamilyLimits(body.get("min_kubernetes"), body.get("max_kubernetes"))
            for name, body in raw["families"].items()
        },
        sources=tuple(raw["source"]),
        retrieved=raw["retrieved"],
    )


@cache
def _ami_releases_file() -> AmiReleaseCatalog:
    return load_ami_releases()


def default_ami_releases() -> AmiReleaseCatalog:
    """A fresh copy of the repository's releases (the file is read once per process)."""
    base = _ami_releases_file()
    return AmiReleaseCatalog(
        list(base.releases), dict(base.ami_types), dict(base.families), base.sources, base.retrieved
    )


# ---- configuration schemas (DescribeAddonConfiguration) --------------------------------------

_QUANTITIES: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"cpu": {"type": "string"}, "memory": {"type": "string"}},
}
_RESOURCES: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "limits": {"$ref": "#/definitions/Quantities"},
        "requests": {"$ref": "#/definitions/Quantities"},
    },
}
_STRING_MAP: dict[str, Any] = {"type": "object", "additionalProperties": {"type": "string"}}
_TOLERATIONS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "key": {"type": "string"},
            "operator": {"type": "string", "enum": ["Exists", "Equal"]},
            "value": {"type": "string"},
            "effect": {"type": "string", "enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
            "tolerationSeconds": {"type": "integer"},
        },
    },
}


def _schema(title: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "http://json-schema.org/draft-06/schema#",
        "$ref": f"#/definitions/{title}",
        "definitions": {
            "Quantities": _QUANTITIES,
            "Resources": _RESOURCES,
            title: {
                "type": "object",
                "additionalProperties": False,
                "properties": properties,
                "title": title,
            },
        },
    }


# One schema per add-on for every version (one exception below): the rehearsal never depends on
# other per-version differences. vpc-cni has no nodeSelector (a DaemonSet runs on every node), which
# reproduces the real "$.nodeSelector: is not defined in the schema" rejection (FIDELITY 2.37).
CONFIGURATION_SCHEMAS: dict[str, dict[str, Any]] = {
    "coredns": _schema(
        "Coredns",
        {
            "replicaCount": {"type": "integer", "minimum": 1},
            "resources": {"$ref": "#/definitions/Resources"},
            "tolerations": _TOLERATIONS,
            "nodeSelector": _STRING_MAP,
            "corefile": {"type": "string"},
        },
    ),
    "vpc-cni": _schema(
        "VpcCni",
        {
            "env": _STRING_MAP,
            "init": {"type": "object", "additionalProperties": False, "properties": {"env": _STRING_MAP}},
            "nodeAgent": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "enablePolicyEventLogs": {"type": "string", "enum": ["true", "false"]},
                    "enableCloudWatchLogs": {"type": "string", "enum": ["true", "false"]},
                    "healthProbeBindAddr": {"type": "string"},
                    "metricsBindAddr": {"type": "string"},
                    "resources": {"$ref": "#/definitions/Resources"},
                },
            },
            "resources": {"$ref": "#/definitions/Resources"},
        },
    ),
    "kube-proxy": _schema(
        "KubeProxy",
        {
            "resources": {"$ref": "#/definitions/Resources"},
            "mode": {"type": "string", "enum": ["iptables", "ipvs"]},
            "ipvs": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "scheduler": {"type": "string", "enum": ["rr", "lc", "dh", "sh", "sed", "nq"]},
                    "minSyncPeriod": {"type": "string"},
                    "syncPeriod": {"type": "string"},
                },
            },
            "iptables": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"minSyncPeriod": {"type": "string"}, "syncPeriod": {"type": "string"}},
            },
        },
    ),
    "aws-ebs-csi-driver": _schema(
        "AwsEbsCsiDriver",
        {
            "controller": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "replicaCount": {"type": "integer", "minimum": 1},
                    "resources": {"$ref": "#/definitions/Resources"},
                    "tolerations": _TOLERATIONS,
                },
            },
            "node": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "resources": {"$ref": "#/definitions/Resources"},
                    "tolerations": _TOLERATIONS,
                },
            },
            # Creates a default StorageClass on a real cluster. The simulated Kubernetes API has no
            # StorageClass kind, so the simulator accepts the key but creates nothing for it.
            "defaultStorageClass": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"enabled": {"type": "boolean"}},
            },
        },
    ),
    "eks-pod-identity-agent": _schema(
        "EksPodIdentityAgent",
        {
            "agent": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"additionalArgs": _STRING_MAP},
            },
            "resources": {"$ref": "#/definitions/Resources"},
            "tolerations": _TOLERATIONS,
        },
    ),
}

# addon_versions.json (aws-ebs-csi-driver rules): "Version >= 1.31.0 supports defaultStorageClass.enabled".
DEFAULT_STORAGE_CLASS_SINCE = (1, 31)

# DescribeAddonConfiguration's podIdentityConfiguration: the add-ons whose Pods call AWS APIs (the CNI
# for ENIs and IP addresses, the EBS CSI controller for volumes) name the policy their role needs.
POD_IDENTITY_CONFIGURATION: dict[str, list[dict[str, Any]]] = {
    "vpc-cni": [
        {
            "serviceAccount": "aws-node",
            "recommendedManagedPolicies": ["arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"],
        }
    ],
    "aws-ebs-csi-driver": [
        {
            "serviceAccount": "ebs-csi-controller-sa",
            "recommendedManagedPolicies": ["arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"],
        }
    ],
}


def configuration_schema(addon_name: str, addon_version: str | None = None) -> dict[str, Any]:
    """The schema DescribeAddonConfiguration returns for `addon_version` (any version if None)."""
    schema = CONFIGURATION_SCHEMAS[addon_name]
    if (
        addon_name == "aws-ebs-csi-driver"
        and addon_version is not None
        and addon_minor(addon_version) < DEFAULT_STORAGE_CLASS_SINCE
    ):
        schema = copy.deepcopy(schema)
        del schema["definitions"]["AwsEbsCsiDriver"]["properties"]["defaultStorageClass"]
    return schema
