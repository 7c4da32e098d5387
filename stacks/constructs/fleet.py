"""The fleet's clusters as IAM sees them: ARNs to scope EKS permissions to."""

from __future__ import annotations

from dataclasses import dataclass

from autopatch.policy import FleetPolicy
from aws_cdk import Aws


@dataclass(frozen=True)
class FleetCluster:
    name: str
    account: str
    region: str

    @property
    def cluster_arn(self) -> str:
        return f"arn:{Aws.PARTITION}:eks:{self.region}:{self.account}:cluster/{self.name}"

    @property
    def addons_arn(self) -> str:
        """Every add-on of the cluster: add-on ARNs end in an ID that EKS assigns at install time."""
        return f"arn:{Aws.PARTITION}:eks:{self.region}:{self.account}:addon/{self.name}/*"

    @property
    def addons_arn_as_nag_sees_it(self) -> str:
        """`addons_arn` as cdk-nag writes it in an IAM5 finding (intrinsics flattened to `<...>`)."""
        return f"arn:<AWS::Partition>:eks:{self.region}:{self.account}:addon/{self.name}/*"


def fleet_clusters(policy: FleetPolicy) -> list[FleetCluster]:
    return [
        FleetCluster(name=cluster.name, account=cluster.accountId, region=cluster.region)
        for cluster in policy.effective()
    ]
