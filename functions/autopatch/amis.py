"""Which EKS-optimized AMI release a managed node group should run, by its `amiType`.

EKS publishes the recommended release of each Amazon Linux AMI family as an SSM public parameter
`/aws/service/eks/optimized-ami/<k8s>/<path>/recommended/release_version` (EKS user guide,
retrieve-ami-id). Bottlerocket and Windows node groups carry release versions in other formats
that the parameters do not give in a comparable form, and a custom AMI (`CUSTOM`) is its owner's:
those groups are reported as not tracked, with the reason, and skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AL2_LAST_KUBERNETES = (1, 32)  # no AL2 AMIs are published for Kubernetes 1.33 and later

# amiType -> the path segment of its SSM parameters (Amazon Linux families only).
RELEASE_PARAMETER_PATHS: dict[str, str] = {
    "AL2023_x86_64_STANDARD": "amazon-linux-2023/x86_64/standard",
    "AL2023_ARM_64_STANDARD": "amazon-linux-2023/arm64/standard",
    "AL2023_x86_64_NVIDIA": "amazon-linux-2023/x86_64/nvidia",
    "AL2023_ARM_64_NVIDIA": "amazon-linux-2023/arm64/nvidia",
    "AL2023_x86_64_NEURON": "amazon-linux-2023/x86_64/neuron",
    "AL2_x86_64": "amazon-linux-2",
    "AL2_ARM_64": "amazon-linux-2-arm64",
    "AL2_x86_64_GPU": "amazon-linux-2-gpu",
}

# amiType prefix -> why it is not tracked by release version.
NOT_TRACKED: dict[str, str] = {
    "CUSTOM": "custom AMI: its owner updates the launch template; it must be on the control plane's "
    "version before the next control-plane upgrade",
    "BOTTLEROCKET_": "Bottlerocket: release versions are not published as EKS-optimized AMI parameters",
    "WINDOWS_": "Windows: release versions are not published as EKS-optimized AMI parameters",
}

_RELEASE = re.compile(r"^(\d+)\.(\d+)\.(\d+)-(\d{8})$")


@dataclass(frozen=True, order=True)
class ReleaseVersion:
    """`1.31.2-20241121`: kubelet version and AMI build date (FIDELITY 1.9)."""

    major: int
    minor: int
    patch: int
    date: str

    @classmethod
    def parse(cls, text: str) -> ReleaseVersion:
        match = _RELEASE.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not an Amazon Linux release version like 1.31.2-20241121")
        return cls(int(match[1]), int(match[2]), int(match[3]), match[4])

    @classmethod
    def is_valid(cls, text: str) -> bool:
        return bool(_RELEASE.match(text.strip()))

    @property
    def kubernetes_minor(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def kubelet(self) -> str:
        return f"v{self.major}.{self.minor}.{self.patch}"

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}-{self.date}"


def not_tracked_reason(ami_type: str) -> str | None:
    """Why a node group of this AMI type is not tracked by release version, or None if it is."""
    if ami_type in RELEASE_PARAMETER_PATHS:
        return None
    for prefix, reason in NOT_TRACKED.items():
        if ami_type.startswith(prefix):
            return reason
    return f"{ami_type}: no EKS-optimized release parameter is known for this AMI type"


def release_parameter(ami_type: str, kubernetes_version: str) -> str | None:
    """The SSM parameter holding the recommended release for (AMI type, Kubernetes minor)."""
    path = RELEASE_PARAMETER_PATHS.get(ami_type)
    if path is None:
        return None
    if ami_type.startswith("AL2_") and _minor_tuple(kubernetes_version) > AL2_LAST_KUBERNETES:
        return None
    return f"/aws/service/eks/optimized-ami/{kubernetes_version}/{path}/recommended/release_version"


def _minor_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)
