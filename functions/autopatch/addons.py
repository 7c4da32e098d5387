"""What each managed add-on runs in the cluster, and how its versions compare."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_VERSION = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(?:-eksbuild\.(\d+))?$")


@dataclass(frozen=True)
class KubeObject:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


# The objects an add-on installs that the product reads: workloads to verify, and the objects whose
# customer-edited fields must survive an update.
ADDON_OBJECTS: dict[str, tuple[KubeObject, ...]] = {
    "coredns": (
        KubeObject("Deployment", "kube-system", "coredns"),
        KubeObject("ConfigMap", "kube-system", "coredns"),
        KubeObject("PodDisruptionBudget", "kube-system", "coredns"),
    ),
    "vpc-cni": (KubeObject("DaemonSet", "kube-system", "aws-node"),),
    "kube-proxy": (
        KubeObject("DaemonSet", "kube-system", "kube-proxy"),
        KubeObject("ConfigMap", "kube-system", "kube-proxy-config"),
    ),
    "aws-ebs-csi-driver": (
        KubeObject("Deployment", "kube-system", "ebs-csi-controller"),
        KubeObject("DaemonSet", "kube-system", "ebs-csi-node"),
    ),
    "eks-pod-identity-agent": (KubeObject("DaemonSet", "kube-system", "eks-pod-identity-agent"),),
}

WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")

# Add-ons EKS moves by at most one minor version per update (FIDELITY 2.29-2.32).
ONE_MINOR_PER_STEP = ("vpc-cni", "eks-pod-identity-agent")


@dataclass(frozen=True, order=True)
class AddonVersion:
    major: int
    minor: int
    patch: int
    build: int
    text: str = field(default="", compare=False)

    @classmethod
    def parse(cls, text: str) -> AddonVersion:
        match = _VERSION.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not an EKS add-on version like v1.11.4-eksbuild.2")
        major, minor, patch, build = (int(g) if g else 0 for g in match.groups())
        return cls(major, minor, patch, build, text.strip())

    @classmethod
    def is_valid(cls, text: str) -> bool:
        return bool(_VERSION.match(text.strip()))

    def minor_distance(self, other: AddonVersion) -> int:
        if self.major != other.major:
            return 99
        return abs(self.minor - other.minor)


def compare(a: str, b: str) -> int:
    """-1, 0 or 1 as add-on version `a` is older than, equal to or newer than `b`."""
    va, vb = AddonVersion.parse(a), AddonVersion.parse(b)
    return (va > vb) - (va < vb)
