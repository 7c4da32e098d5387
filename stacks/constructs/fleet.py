"""The fleet's clusters as IAM sees them: ARNs to scope EKS permissions to."""

from __future__ import annotations

from dataclasses import dataclass

from autopatch.policy import FleetPolicy
from aws_cdk import Aws

# How cdk-nag writes the partition pseudo parameter in an IAM5 finding (intrinsics flattened to <...>).
_NAG_PARTITION = "<AWS::Partition>"


@dataclass(frozen=True)
class FleetCluster:
    name: str
    account: str
    region: str

    def _eks_arn(self, resource: str, *, partition: str = Aws.PARTITION) -> str:
        return f"arn:{partition}:eks:{self.region}:{self.account}:{resource}"

    @property
    def cluster_arn(self) -> str:
        return self._eks_arn(f"cluster/{self.name}")

    @property
    def addons_arn(self) -> str:
        """Every add-on of the cluster: add-on ARNs end in an ID that EKS assigns at install time."""
        return self._eks_arn(f"addon/{self.name}/*")

    @property
    def addons_arn_as_nag_sees_it(self) -> str:
        """`addons_arn` as cdk-nag writes it in an IAM5 finding."""
        return self._eks_arn(f"addon/{self.name}/*", partition=_NAG_PARTITION)

    @property
    def nodegroups_arn(self) -> str:
        """Every node group of the cluster: `nodegroup/<cluster>/<name>/<uuid>`, the UUID assigned by EKS."""
        return self._eks_arn(f"nodegroup/{self.name}/*")

    @property
    def nodegroups_arn_as_nag_sees_it(self) -> str:
        """`nodegroups_arn` as cdk-nag writes it in an IAM5 finding."""
        return self._eks_arn(f"nodegroup/{self.name}/*", partition=_NAG_PARTITION)


def eks_ami_parameters_arn(region: str, *, partition: str = Aws.PARTITION) -> str:
    """The public SSM parameters of the EKS optimized AMIs in a region (public parameters have no account)."""
    return f"arn:{partition}:ssm:{region}::parameter/aws/service/eks/optimized-ami/*"


def eks_ami_parameters_arn_as_nag_sees_it(region: str) -> str:
    return eks_ami_parameters_arn(region, partition=_NAG_PARTITION)


def fleet_clusters(policy: FleetPolicy) -> list[FleetCluster]:
    return [
        FleetCluster(name=cluster.name, account=cluster.accountId, region=cluster.region)
        for cluster in policy.effective()
    ]
