"""The workflows: one state machine per entry of rules.json's `stateMachines`, and the rules that start them.

The ASL file stays the only definition of a workflow: it is read as it is and its `${...}`
placeholders are filled by CloudFormation from `DefinitionSubstitutions`. A placeholder the stack
cannot fill fails synth.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from aws_cdk import CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.constructs.definitions import PLACEHOLDER, CatalogError, WorkflowCatalog
from stacks.constructs.nag import acknowledge

# rules.json writes patterns as EventBridge does; EventPattern takes the same fields in snake case.
_PATTERN_FIELDS = {
    "account": "account",
    "detail": "detail",
    "detail-type": "detail_type",
    "id": "id",
    "region": "region",
    "resources": "resources",
    "source": "source",
    "time": "time",
    "version": "version",
}


def pascal_case(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("_", "-").split("-"))


def event_pattern(pattern: Mapping[str, Any], *, rule_name: str) -> events.EventPattern:
    unknown = sorted(set(pattern) - set(_PATTERN_FIELDS))
    if unknown:
        raise CatalogError(f"rule {rule_name}: unsupported event pattern fields {', '.join(unknown)}")
    return events.EventPattern(**{_PATTERN_FIELDS[key]: value for key, value in pattern.items()})


def arn_logical_id(function: lambda_.IFunction) -> str:
    return Stack.of(function).get_logical_id(cast(CfnElement, function.node.default_child))


class Workflows(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        catalog: WorkflowCatalog,
        functions: Mapping[str, lambda_.IFunction],
        event_bus: events.IEventBus,
        ledger_table: dynamodb.ITable,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        target_retry_attempts: int = 8,
    ) -> None:
        super().__init__(scope, construct_id)
        values: dict[str, str] = {
            catalog.functions[key].arn_placeholder: function.function_arn
            for key, function in functions.items()
        }
        values["LedgerTableName"] = ledger_table.table_name
        values["EventBusName"] = event_bus.event_bus_name
        function_by_placeholder = {
            catalog.functions[key].arn_placeholder: function for key, function in functions.items()
        }

        self.state_machines: dict[str, sfn.StateMachine] = {}
        for name, spec in catalog.state_machines.items():
            definition = spec.read_definition()
            used = sorted(set(PLACEHOLDER.findall(definition)))
            unknown = [placeholder for placeholder in used if placeholder not in values]
            if unknown:
                raise CatalogError(
                    f"state machine {name}: {spec.definition_path.name} uses "
                    f"{', '.join('${' + u + '}' for u in unknown)}, which the stack does not provide "
                    "(functions.json lists the functions)"
                )
            self.state_machines[name] = self._state_machine(
                name,
                definition=definition,
                substitutions={placeholder: values[placeholder] for placeholder in used},
                invoked=[function_by_placeholder[p] for p in used if p in function_by_placeholder],
                log_retention=log_retention,
            )

        self.rules: dict[str, events.Rule] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for rule in catalog.rules:
            dead_letters = dead_letter_queue(self, f"{pascal_case(rule.name)}DeadLetters")
            acknowledge(
                dead_letters,
                "AwsSolutions-SQS3",
                f"This queue is the dead-letter queue of the {rule.name} rule's target; it needs no DLQ.",
            )
            self.dead_letter_queues[rule.name] = dead_letters
            self.rules[rule.name] = events.Rule(
                self,
                f"{pascal_case(rule.name)}Rule",
                description=f"Autopatch: {rule.name} starts the {rule.state_machine} workflow",
                event_bus=event_bus,
                event_pattern=event_pattern(rule.event_pattern, rule_name=rule.name),
                targets=[
                    targets.SfnStateMachine(
                        self.state_machines[rule.state_machine],
                        dead_letter_queue=dead_letters,
                        retry_attempts=target_retry_attempts,
                        max_event_age=Duration.hours(24),
                    )
                ],
            )

    def _state_machine(
        self,
        name: str,
        *,
        definition: str,
        substitutions: Mapping[str, str],
        invoked: list[lambda_.IFunction],
        log_retention: logs.RetentionDays,
    ) -> sfn.StateMachine:
        log_group = logs.LogGroup(
            self,
            f"{pascal_case(name)}Logs",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        state_machine = sfn.StateMachine(
            self,
            pascal_case(name),
            state_machine_type=sfn.StateMachineType.STANDARD,
            # The file's own text; CloudFormation fills the placeholders at deploy time.
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=dict(substitutions),
            logs=sfn.LogOptions(
                destination=log_group,
                level=sfn.LogLevel.ALL,
                # Execution data holds approval task tokens; the ledger keeps those, logs must not.
                include_execution_data=False,
            ),
            tracing_enabled=True,
        )
        for function in invoked:
            function.grant_invoke(state_machine.role)
        policy = state_machine.role.node.find_child("DefaultPolicy")
        acknowledge(
            policy,
            "AwsSolutions-IAM5",
            "CloudWatch Logs delivery actions (logs:CreateLogDelivery and friends) and X-Ray "
            "tracing actions have no resource-level permissions.",
            findings=["Resource::*"],
        )
        if invoked:
            acknowledge(
                policy,
                "AwsSolutions-IAM5",
                "Added by grant_invoke: the wildcard covers versions and aliases of the one function "
                "the workflow invokes, nothing else.",
                findings=[f"Resource::<{arn_logical_id(function)}.Arn>:*" for function in invoked],
            )
        return state_machine


def dead_letter_queue(scope: Construct, construct_id: str) -> sqs.Queue:
    """An encrypted, TLS-only queue that keeps undeliverable events for 14 days."""
    return sqs.Queue(
        scope,
        construct_id,
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
