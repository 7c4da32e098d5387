"""Kubernetes access for the functions that read clusters.

EKS access entries map the shared reader role to the Kubernetes group `autopatch-readers`, which
`deploy/rbac/autopatch-reader.yaml` binds to a read-only ClusterRole. (AmazonEKSViewPolicy does
not cover nodes, so a custom ClusterRole is needed.) An access entry is a resource of the cluster's
own account and region, so the stack creates entries only for the fleet clusters that live where
the stack is deployed, and only when asked to (context `createAccessEntries=true`).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Annotations, Stack, Token
from aws_cdk import aws_eks as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from stacks.constructs.fleet import FleetCluster

KUBERNETES_GROUP = "autopatch-readers"


class KubernetesAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        reader_role: iam.IRole,
        clusters: Sequence[FleetCluster],
        create_access_entries: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_entries: dict[str, eks.CfnAccessEntry] = {}
        if not create_access_entries:
            return
        stack = Stack.of(self)
        if Token.is_unresolved(stack.account) or Token.is_unresolved(stack.region):
            raise ValueError(
                "createAccessEntries=true needs a stack bound to an account and region "
                "(run cdk with credentials, or set CDK_DEFAULT_ACCOUNT and CDK_DEFAULT_REGION)"
            )
        elsewhere = []
        for cluster in clusters:
            if (cluster.account, cluster.region) != (stack.account, stack.region):
                elsewhere.append(f"{cluster.name} ({cluster.account}/{cluster.region})")
                continue
            self.access_entries[cluster.name] = eks.CfnAccessEntry(
                self,
                f"{cluster.name}AccessEntry",
                cluster_name=cluster.name,
                principal_arn=reader_role.role_arn,
                type="STANDARD",
                kubernetes_groups=[KUBERNETES_GROUP],
            )
        if elsewhere:
            Annotations.of(self).add_warning_v2(
                "autopatch:accessEntriesElsewhere",
                "No access entry created for clusters outside this stack's account/region: "
                f"{', '.join(elsewhere)}. Create one there for the reader role, group {KUBERNETES_GROUP}.",
            )
