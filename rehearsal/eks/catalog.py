"""The EKS add-on catalogue and Kubernetes version calendar the simulator serves.

Both come from JSON files under `scenarios/data/`, built from AWS documentation tables (each file
names its sources). The configuration schemas returned by DescribeAddonConfiguration are written
here: they are shaped like the real draft-06 schemas (`additionalProperties: false` at every level)
but list only the keys the rehearsal uses.

The compatibility of aws-ebs-csi-driver and eks-pod-identity-agent with Kubernetes versions is an
inference, not published data: see each add-on's `compatibilityNote` in the catalogue file.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parents[2] / "scenarios" / "data"
ADDON_CATALOG_FILE = DATA_DIR / "addon_catalog.json"
KUBERNETES_VERSIONS_FILE = DATA_DIR / "kubernetes_versions.json"

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
