"""The Lambda functions of `statemachines/functions.json`, their shared defaults and their permissions.

Every function gets the same defaults (runtime, architecture, memory, timeout, JSON logs, tracing,
environment) from `_FunctionDefaults`, its own log group, and the permissions listed for it in
`FUNCTION_ACCESS` and nothing more. The functions that read Kubernetes share one role, so that a
single EKS access entry per cluster lets all of them in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.constructs.definitions import CatalogError, FunctionSpec
from stacks.constructs.fleet import FleetCluster
from stacks.constructs.nag import acknowledge

# Where the bundle puts the validated fleet policy (the asset is unpacked in /var/task).
POLICY_PATH_IN_LAMBDA = "/var/task/fleet.json"

# The EKS resource each action can be scoped to. "*" marks actions without resource-level
# permissions (Service Authorization Reference, Amazon EKS).
_EKS_ACTION_RESOURCES: dict[str, tuple[str, ...]] = {
    "eks:DescribeCluster": ("cluster",),
    "eks:ListAddons": ("cluster",),
    "eks:ListUpdates": ("cluster", "addon"),
    "eks:DescribeUpdate": ("cluster", "addon"),
    "eks:DescribeAddon": ("addon",),
    "eks:UpdateAddon": ("addon",),
    "eks:ListClusters": ("*",),
    "eks:DescribeAddonVersions": ("*",),
    "eks:DescribeAddonConfiguration": ("*",),
}


@dataclass(frozen=True)
class FunctionAccess:
    """What a function may do besides reading and writing the ledger (which every function does)."""

    eks_actions: tuple[str, ...] = ()
    notifies: bool = False  # publish to the topic and read the Slack webhook secret
    puts_events: bool = False  # put events on the Autopatch bus
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

FUNCTION_ACCESS: dict[str, FunctionAccess] = {
    "Validate": FunctionAccess(),
    "Claim": FunctionAccess(),
    "Lock": FunctionAccess(),
    "ReleaseLock": FunctionAccess(),
    "Preflight": FunctionAccess(eks_actions=_CHECKS),
    "Recheck": FunctionAccess(eks_actions=_CHECKS),
    "Verify": FunctionAccess(eks_actions=_CHECKS),
    "RequestApproval": FunctionAccess(notifies=True),
    "Apply": FunctionAccess(eks_actions=_CHANGE_ADDON),
    "Rollback": FunctionAccess(eks_actions=_CHANGE_ADDON),
    "Poll": FunctionAccess(eks_actions=("eks:DescribeUpdate", "eks:DescribeAddon")),
    "Notify": FunctionAccess(notifies=True, puts_events=True),
    "ReleaseWatcher": FunctionAccess(
        eks_actions=(
            "eks:ListClusters",
            "eks:DescribeCluster",
            "eks:ListAddons",
            "eks:DescribeAddon",
            "eks:DescribeAddonVersions",
        ),
        puts_events=True,
        timeout_seconds=300,
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
            self.functions[key] = self._new_function(spec, code=code, role=role, environment=environment)

        # Grant each role the union of what its functions need, once.
        for role in {id(r): r for r in self.roles.values()}.values():
            keys = [key for key, r in self.roles.items() if r is role]
            access = [FUNCTION_ACCESS[key] for key in keys]
            ledger_table.grant_read_write_data(role)
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
            eks_actions = sorted({action for a in access for action in a.eks_actions})
            if eks_actions:
                self._grant_eks(role, eks_actions)
            acknowledge(
                role.node.find_child("DefaultPolicy"),
                "AwsSolutions-IAM5",
                "Added by Lambda active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords "
                "have no resource-level permissions.",
                findings=["Resource::*"],
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

    def _grant_eks(self, role: iam.Role, actions: Sequence[str]) -> None:
        unknown = [action for action in actions if action not in _EKS_ACTION_RESOURCES]
        if unknown:
            raise ValueError(f"no resource scoping known for {', '.join(unknown)}")
        on_clusters = [a for a in actions if "cluster" in _EKS_ACTION_RESOURCES[a]]
        on_addons = [a for a in actions if "addon" in _EKS_ACTION_RESOURCES[a]]
        on_anything = [a for a in actions if "*" in _EKS_ACTION_RESOURCES[a]]
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
                "public EKS catalogue (add-on versions and schemas) or list cluster names.",
                findings=["Resource::*"],
            )
