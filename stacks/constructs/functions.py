"""The Lambda functions of `statemachines/functions.json`, their shared defaults and their permissions.

Every function gets the same defaults (runtime, architecture, memory, timeout, JSON logs, tracing,
environment) from `_FunctionDefaults`, its own log group, and the permissions listed for it in
`FUNCTION_ACCESS` and nothing more. The functions that read Kubernetes share one role, so that a
single EKS access entry per cluster lets all of them in (that role holds the union of what they need).
EKS permissions are scoped to the fleet's clusters, their add-ons and their managed node groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.constructs.approvals import ApprovalResources
from stacks.constructs.definitions import CatalogError, FunctionSpec
from stacks.constructs.fleet import (
    FleetCluster,
    eks_ami_parameters_arn,
    eks_ami_parameters_arn_as_nag_sees_it,
)
from stacks.constructs.nag import acknowledge

# Where the bundle puts the validated fleet policy (the asset is unpacked in /var/task).
POLICY_PATH_IN_LAMBDA = "/var/task/fleet.json"

# The EKS resource each action can be scoped to. "*" marks actions without resource-level
# permissions (Service Authorization Reference, Amazon EKS).
_EKS_ACTION_RESOURCES: dict[str, tuple[str, ...]] = {
    "eks:DescribeCluster": ("cluster",),
    "eks:ListAddons": ("cluster",),
    "eks:ListNodegroups": ("cluster",),
    "eks:ListUpdates": ("cluster", "addon", "nodegroup"),
    "eks:DescribeUpdate": ("cluster", "addon", "nodegroup"),
    "eks:DescribeAddon": ("addon",),
    "eks:UpdateAddon": ("addon",),
    "eks:DescribeNodegroup": ("nodegroup",),
    "eks:UpdateNodegroupVersion": ("nodegroup",),
    "eks:UpdateNodegroupConfig": ("nodegroup",),
    "eks:ListInsights": ("cluster",),
    "eks:DescribeInsight": ("cluster",),
    "eks:UpdateClusterVersion": ("cluster",),
    "eks:ListClusters": ("*",),
    "eks:DescribeAddonVersions": ("*",),
    "eks:DescribeAddonConfiguration": ("*",),
    "eks:DescribeClusterVersions": ("*",),
}


# What the approval receiver may read of an approval item (autopatch.clients.approvals has the same
# list): enough to show the confirmation page, never the task token.
APPROVAL_VIEW_ATTRIBUTES = (
    "pk",
    "sk",
    "cluster",
    "component",
    "fromVersion",
    "toVersion",
    "status",
    "decision",
    "decidedBy",
    "decidedAt",
)


@dataclass(frozen=True)
class FunctionAccess:
    """What a function may do. Every function reads and writes the whole ledger unless `ledger` says
    less: "approval_views" (GetItem of approval summaries and used links, never the task token),
    "approvals" (approval, used-link and cluster items: get, query, put, update; no scan, no delete)."""

    # EKS actions on the fleet's clusters and add-ons (or on "*" where IAM has no resource type).
    eks_actions: tuple[str, ...] = ()
    # EKS actions on the fleet's managed node groups (and on the cluster, where IAM allows both).
    nodegroup_actions: tuple[str, ...] = ()
    reads_subnets: bool = False  # ec2:DescribeSubnets: free IPs for a node group roll's surge
    reads_ami_releases: bool = False  # ssm:GetParameter on the public EKS optimized AMI parameters
    notifies: bool = False  # publish to the topic and read the Slack webhook secret
    puts_events: bool = False  # put events on the Autopatch bus
    ledger: Literal["all", "approval_views", "approvals"] = "all"
    # The approval API's receiver: read the Slack signing secret and the link key, send to the queue.
    receives_approvals: bool = False
    # Its decider: SendTaskSuccess/SendTaskFailure on the workflows, read the Slack bot token.
    decides_approvals: bool = False
    # Approval requests by email: publish to the approvals topic, read the link key.
    emails_approvals: bool = False
    # Update the operation's Slack message in place (chat.postMessage / chat.update): read the bot token.
    updates_slack: bool = False
    timeout_seconds: int = 60


_CHECKS = (
    "eks:DescribeCluster",
    "eks:DescribeAddon",
    "eks:DescribeAddonVersions",
    "eks:DescribeAddonConfiguration",
    "eks:ListUpdates",
    "eks:DescribeUpdate",
)
# No iam:PassRole: UpdateAddon leaves the add-on's service account role unchanged when it is omitted.
_CHANGE_ADDON = ("eks:UpdateAddon", "eks:DescribeAddon", "eks:DescribeCluster", "eks:DescribeUpdate")
# Preflight and recheck of a node group: its state, the updates in flight on it.
_CHECK_NODEGROUP = ("eks:DescribeNodegroup", "eks:ListUpdates", "eks:DescribeUpdate")
# No iam:PassRole: neither update passes a role (the node role stays the group's own).
_CHANGE_NODEGROUP = ("eks:UpdateNodegroupVersion", "eks:UpdateNodegroupConfig", "eks:DescribeNodegroup")
# Preflight and recheck of a control-plane hop: upgrade insights, the version catalogue, the node
# groups that must be on the cluster's version first.
_CHECK_CONTROL_PLANE = (
    "eks:ListInsights",
    "eks:DescribeInsight",
    "eks:DescribeClusterVersions",
    "eks:ListNodegroups",
)

FUNCTION_ACCESS: dict[str, FunctionAccess] = {
    "Validate": FunctionAccess(),
    "Claim": FunctionAccess(),
    "Lock": FunctionAccess(),
    "ReleaseLock": FunctionAccess(),
    "Preflight": FunctionAccess(
        eks_actions=_CHECKS + _CHECK_CONTROL_PLANE, nodegroup_actions=_CHECK_NODEGROUP, reads_subnets=True
    ),
    "Recheck": FunctionAccess(
        eks_actions=_CHECKS + _CHECK_CONTROL_PLANE, nodegroup_actions=_CHECK_NODEGROUP, reads_subnets=True
    ),
    # After a hop: every node group and add-on of the cluster is looked at.
    "Verify": FunctionAccess(
        eks_actions=(*_CHECKS, "eks:ListNodegroups", "eks:ListAddons"),
        nodegroup_actions=("eks:DescribeNodegroup",),
        updates_slack=True,
    ),
    "RequestApproval": FunctionAccess(notifies=True, emails_approvals=True, updates_slack=True),
    # Verifies, acknowledges, queues: no ledger beyond what the confirmation page shows.
    "ApprovalReceiver": FunctionAccess(ledger="approval_views", receives_approvals=True),
    "ApprovalDecider": FunctionAccess(ledger="approvals", decides_approvals=True, updates_slack=True),
    # No `force`: an upgrade that insights block is reported, not pushed through.
    # Apply and Verify move the operation's Slack message to "applying" and "verifying" (bot token only).
    "Apply": FunctionAccess(
        eks_actions=(*_CHANGE_ADDON, "eks:UpdateClusterVersion"),
        nodegroup_actions=_CHANGE_NODEGROUP,
        updates_slack=True,
    ),
    # Add-ons only: a node group cannot be rolled back to an older release.
    "Rollback": FunctionAccess(eks_actions=_CHANGE_ADDON),
    "Poll": FunctionAccess(
        eks_actions=("eks:DescribeUpdate", "eks:DescribeAddon"), nodegroup_actions=("eks:DescribeUpdate",)
    ),
    "Notify": FunctionAccess(notifies=True, puts_events=True, updates_slack=True),
    "ReleaseWatcher": FunctionAccess(
        eks_actions=(
            "eks:ListClusters",
            "eks:DescribeCluster",
            "eks:ListAddons",
            "eks:DescribeAddon",
            "eks:DescribeAddonVersions",
            "eks:ListNodegroups",
        ),
        nodegroup_actions=("eks:DescribeNodegroup",),
        reads_ami_releases=True,
        puts_events=True,
        timeout_seconds=300,
    ),
    "EndOfSupportWatcher": FunctionAccess(
        eks_actions=("eks:ListClusters", "eks:DescribeCluster", "eks:DescribeClusterVersions"),
        puts_events=True,
        timeout_seconds=300,
    ),
    "HealthTranslator": FunctionAccess(
        eks_actions=("eks:DescribeCluster", "eks:DescribeClusterVersions"), puts_events=True
    ),
    # Plans a hop's add-on and node group steps: what is installed, what it could move to.
    "Upgrade": FunctionAccess(
        eks_actions=(
            "eks:DescribeCluster",
            "eks:ListAddons",
            "eks:DescribeAddon",
            "eks:DescribeAddonVersions",
            "eks:ListNodegroups",
        ),
        nodegroup_actions=("eks:DescribeNodegroup",),
    ),
}


@dataclass(frozen=True)
class _FunctionDefaults:
    """The settings every Autopatch function shares."""

    runtime: lambda_.Runtime = lambda_.Runtime.PYTHON_3_12
    architecture: lambda_.Architecture = lambda_.Architecture.ARM_64
    memory_size: int = 512
    tracing: lambda_.Tracing = lambda_.Tracing.ACTIVE
    logging_format: lambda_.LoggingFormat = lambda_.LoggingFormat.JSON
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


_DEFAULTS = _FunctionDefaults()
# The settings RequestApproval needs to email approval links (the API's URL is added once the API exists).
_MAIL_SETTINGS = ("AUTOPATCH_APPROVAL_TOPIC_ARN", "AUTOPATCH_LINK_KEY_SECRET_ARN")


class AutopatchFunctions(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specs: Mapping[str, FunctionSpec],
        code: lambda_.Code,
        ledger_table: dynamodb.ITable,
        topic: sns.ITopic,
        slack_webhook_secret: secretsmanager.ISecret,
        event_bus: events.IEventBus,
        clusters: Sequence[FleetCluster],
        approvals: ApprovalResources,
        slack_bot_token_secret: secretsmanager.ISecret,
    ) -> None:
        super().__init__(scope, construct_id)
        missing = sorted(set(specs) - set(FUNCTION_ACCESS))
        if missing:
            raise CatalogError(
                f"functions.json lists {', '.join(missing)} but stacks/constructs/functions.py "
                "defines no permissions for them (FUNCTION_ACCESS)"
            )
        self._clusters = list(clusters)
        environment = {
            "AUTOPATCH_LEDGER_TABLE": ledger_table.table_name,
            "AUTOPATCH_EVENT_BUS": event_bus.event_bus_name,
            "AUTOPATCH_TOPIC_ARN": topic.topic_arn,
            "AUTOPATCH_SLACK_WEBHOOK_SECRET_ARN": slack_webhook_secret.secret_arn,
            "AUTOPATCH_POLICY_PATH": POLICY_PATH_IN_LAMBDA,
        }
        approval_environment = {
            "AUTOPATCH_APPROVAL_QUEUE_URL": approvals.queue.queue_url,
            "AUTOPATCH_SLACK_SIGNING_SECRET_ARN": approvals.slack_signing_secret.secret_arn,
            "AUTOPATCH_LINK_KEY_SECRET_ARN": approvals.link_key.secret_arn,
            "AUTOPATCH_APPROVAL_TOPIC_ARN": approvals.topic.topic_arn,
        }
        self._ledger_table = ledger_table

        # One role shared by every function that reads Kubernetes: one access entry per cluster.
        self.kubernetes_reader_role = self._new_role(
            "KubernetesReaderRole",
            "Autopatch functions that read Kubernetes (one EKS access entry per cluster maps it)",
        )
        self.roles: dict[str, iam.Role] = {}
        self.functions: dict[str, lambda_.Function] = {}
        for key, spec in specs.items():
            role = (
                self.kubernetes_reader_role
                if spec.kubernetes
                else self._new_role(f"{key}Role", f"Autopatch {key} function")
            )
            self.roles[key] = role
            own = FUNCTION_ACCESS[key]
            self.functions[key] = self._new_function(
                spec,
                code=code,
                role=role,
                environment={
                    **environment,
                    # Each approval setting only where it is used (the names are not secrets).
                    **{
                        name: value
                        for name, value in approval_environment.items()
                        if (own.receives_approvals and "TOPIC" not in name)
                        or (own.emails_approvals and name in _MAIL_SETTINGS)
                    },
                    **(
                        {"AUTOPATCH_SLACK_BOT_SECRET_ARN": slack_bot_token_secret.secret_arn}
                        if own.updates_slack
                        else {}
                    ),
                },
            )

        # Grant each role the union of what its functions need, once.
        for role in {id(r): r for r in self.roles.values()}.values():
            keys = [key for key, r in self.roles.items() if r is role]
            access = [FUNCTION_ACCESS[key] for key in keys]
            self._grant_ledger(role, {a.ledger for a in access})
            if any(a.receives_approvals for a in access):
                approvals.slack_signing_secret.grant_read(role)
                approvals.link_key.grant_read(role)
                approvals.queue.grant_send_messages(role)
            if any(a.updates_slack for a in access):
                slack_bot_token_secret.grant_read(role)
            if any(a.emails_approvals for a in access):
                approvals.topic.grant_publish(role)
                approvals.link_key.grant_read(role)
                acknowledge(
                    role.node.find_child("DefaultPolicy"),
                    "AwsSolutions-IAM5",
                    "Publishing to the KMS-encrypted approvals topic needs kms:GenerateDataKey*; the "
                    "grant is limited to that topic's own key.",
                    findings=["Action::kms:GenerateDataKey*"],
                )
            if any(a.notifies for a in access):
                topic.grant_publish(role)
                slack_webhook_secret.grant_read(role)
                acknowledge(
                    role.node.find_child("DefaultPolicy"),
                    "AwsSolutions-IAM5",
                    "Publishing to the KMS-encrypted topic needs kms:GenerateDataKey*; the grant is "
                    "limited to the topic's own key.",
                    findings=["Action::kms:GenerateDataKey*"],
                )
            if any(a.puts_events for a in access):
                event_bus.grant_put_events_to(role)
            self._grant_eks(role, access)
            if any(a.reads_subnets for a in access):
                self._grant_subnet_read(role)
            if any(a.reads_ami_releases for a in access):
                self._grant_ami_release_read(role)
            acknowledge(
                role.node.find_child("DefaultPolicy"),
                "AwsSolutions-IAM5",
                "Added by Lambda active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
                "have no resource-level permissions.",
                findings=["Resource::*"],
            )

    def _grant_ledger(self, role: iam.Role, needs: set[str]) -> None:
        table = self._ledger_table
        if "all" in needs:
            table.grant_read_write_data(role)
            return
        if "approvals" in needs:
            # No condition on sort keys exists in IAM: CLUSTER#* covers the operation records and
            # the Slack message references next to them (and, unavoidably, the cluster's other items).
            iam.Grant.add_to_principal(
                grantee=role,
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:Query",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:ConditionCheckItem",
                ],
                resource_arns=[table.table_arn],
                conditions={
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APPROVAL#*", "LINK#*", "CLUSTER#*"]}
                },
            )
        if "approval_views" in needs:
            iam.Grant.add_to_principal(
                grantee=role,
                actions=["dynamodb:GetItem"],
                resource_arns=[table.table_arn],
                conditions={
                    "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APPROVAL#*", "LINK#*"]},
                    "ForAllValues:StringEquals": {"dynamodb:Attributes": list(APPROVAL_VIEW_ATTRIBUTES)},
                    "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
                },
            )

    def allow_task_responses(self, state_machines: Iterable[sfn.IStateMachine]) -> None:
        """The approval decider resumes (or stops) the workflows waiting on a task token, and
        nothing else of Step Functions (no heartbeat, no execution control)."""
        arns = [machine.state_machine_arn for machine in state_machines]
        for key, role in self.roles.items():
            if FUNCTION_ACCESS[key].decides_approvals:
                iam.Grant.add_to_principal(
                    grantee=role,
                    actions=["states:SendTaskSuccess", "states:SendTaskFailure"],
                    resource_arns=arns,
                )

    def _new_role(self, construct_id: str, description: str) -> iam.Role:
        # No AWS managed policy: log writing is granted on each function's own log group.
        return iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=description,
        )

    def _new_function(
        self,
        spec: FunctionSpec,
        *,
        code: lambda_.Code,
        role: iam.Role,
        environment: Mapping[str, str],
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{spec.key}Logs",
            retention=_DEFAULTS.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            spec.key,
            description=spec.description or f"Autopatch {spec.key}",
            code=code,
            handler=spec.handler,
            runtime=_DEFAULTS.runtime,
            architecture=_DEFAULTS.architecture,
            memory_size=_DEFAULTS.memory_size,
            timeout=Duration.seconds(FUNCTION_ACCESS[spec.key].timeout_seconds),
            tracing=_DEFAULTS.tracing,
            logging_format=_DEFAULTS.logging_format,
            log_group=log_group,
            role=role,
            environment=dict(environment),
        )
        acknowledge(
            function,
            "AwsSolutions-L1",
            "Pinned to python3.12 on purpose: the bundle is built from cp312 aarch64 wheels "
            "(stacks/bundling.py), so the runtime and the wheel tags change together.",
        )
        return function

    def _grant_eks(self, role: iam.Role, access: Sequence[FunctionAccess]) -> None:
        """Each action on the resource types it needs: clusters, add-ons, node groups, or "*"."""
        by_type: dict[str, set[str]] = {"cluster": set(), "addon": set(), "nodegroup": set(), "*": set()}
        for entry in access:
            for action in entry.eks_actions:
                types = set(_eks_resource_types(action)) - {"nodegroup"}
                if not types:
                    raise ValueError(f"{action} acts on node groups only: list it in nodegroup_actions")
                for resource_type in types:
                    by_type[resource_type].add(action)
            for action in entry.nodegroup_actions:
                types = set(_eks_resource_types(action))
                if "nodegroup" not in types:
                    raise ValueError(f"{action} does not act on node groups: list it in eks_actions")
                for resource_type in types & {"cluster", "nodegroup"}:
                    by_type[resource_type].add(action)
        on_clusters, on_addons, on_nodegroups, on_anything = (
            sorted(by_type[t]) for t in ("cluster", "addon", "nodegroup", "*")
        )
        if self._clusters and on_clusters:
            iam.Grant.add_to_principal(
                grantee=role,
                actions=on_clusters,
                resource_arns=[cluster.cluster_arn for cluster in self._clusters],
            )
        if self._clusters and on_addons:
            iam.Grant.add_to_principal(
                grantee=role,
                actions=on_addons,
                resource_arns=[cluster.addons_arn for cluster in self._clusters],
            )
            acknowledge(
                role.node.find_child("DefaultPolicy"),
                "AwsSolutions-IAM5",
                "An add-on ARN ends in an ID that EKS assigns when the add-on is installed; the "
                "wildcard covers only the add-ons of one fleet cluster.",
                findings=[f"Resource::{cluster.addons_arn_as_nag_sees_it}" for cluster in self._clusters],
            )
        if self._clusters and on_nodegroups:
            iam.Grant.add_to_principal(
                grantee=role,
                actions=on_nodegroups,
                resource_arns=[cluster.nodegroups_arn for cluster in self._clusters],
            )
            acknowledge(
                role.node.find_child("DefaultPolicy"),
                "AwsSolutions-IAM5",
                "A node group ARN ends in the group's name and a UUID that EKS assigns when the group "
                "is created; the wildcard covers only the managed node groups of one fleet cluster.",
                findings=[f"Resource::{cluster.nodegroups_arn_as_nag_sees_it}" for cluster in self._clusters],
            )
        if on_anything:
            # Kept apart from the scoped statements so the acknowledgment below covers only these.
            catalog = iam.Policy(
                role,
                "EksCatalogRead",
                statements=[iam.PolicyStatement(actions=on_anything, resources=["*"])],
                roles=[role],
            )
            acknowledge(
                catalog,
                "AwsSolutions-IAM5",
                f"{', '.join(on_anything)} have no resource-level permissions in IAM; they read the "
                "public EKS catalogue (add-on versions and schemas, Kubernetes versions and their "
                "support dates) or list cluster names.",
                findings=["Resource::*"],
            )

    def _grant_subnet_read(self, role: iam.Role) -> None:
        # A policy of its own, so that the acknowledgment below covers this statement only.
        subnets = iam.Policy(
            role,
            "SubnetRead",
            statements=[iam.PolicyStatement(actions=["ec2:DescribeSubnets"], resources=["*"])],
            roles=[role],
        )
        acknowledge(
            subnets,
            "AwsSolutions-IAM5",
            "ec2:DescribeSubnets has no resource-level permissions in IAM; preflight and recheck read "
            "the free IP addresses of a node group's subnets before a roll adds nodes to them.",
            findings=["Resource::*"],
        )

    def _grant_ami_release_read(self, role: iam.Role) -> None:
        regions = sorted({cluster.region for cluster in self._clusters})
        if not regions:
            return
        iam.Grant.add_to_principal(
            grantee=role,
            actions=["ssm:GetParameter"],
            resource_arns=[eks_ami_parameters_arn(region) for region in regions],
        )
        acknowledge(
            role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",
            "The AWS-owned public parameters of the EKS optimized AMIs are named by Kubernetes version "
            "and AMI family (/aws/service/eks/optimized-ami/<version>/<family>/...); the wildcard covers "
            "only that read-only tree in the fleet's regions, where the watcher finds new releases.",
            findings=[f"Resource::{eks_ami_parameters_arn_as_nag_sees_it(region)}" for region in regions],
        )


def _eks_resource_types(action: str) -> tuple[str, ...]:
    if action not in _EKS_ACTION_RESOURCES:
        raise ValueError(f"no resource scoping known for {action}")
    return _EKS_ACTION_RESOURCES[action]
