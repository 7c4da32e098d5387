"""Alarms that page the team through the notification topic when the automation itself fails."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks.constructs.workflows import pascal_case

_PERIOD = Duration.minutes(5)


class Alarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topic: sns.ITopic,
        state_machines: Mapping[str, sfn.StateMachine],
        watcher: lambda_.IFunction,
        dead_letter_queues: Mapping[str, sqs.IQueue],
        other_functions: Mapping[str, lambda_.IFunction] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._action = cloudwatch_actions.SnsAction(topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        for name, state_machine in state_machines.items():
            self._add(
                f"{pascal_case(name)}ExecutionsFailed",
                state_machine.metric_failed(period=_PERIOD, statistic="Sum"),
                f"An execution of the {name} workflow failed; see its execution history.",
            )
        self._add(
            "ReleaseWatcherErrors",
            watcher.metric_errors(period=_PERIOD, statistic="Sum"),
            "The release watcher failed; new versions are not being announced.",
        )
        for name, function in (other_functions or {}).items():
            self._add(
                f"{pascal_case(name)}Errors",
                function.metric_errors(period=_PERIOD, statistic="Sum"),
                f"The {name} function failed; see its logs.",
            )
        for name, queue in dead_letter_queues.items():
            self._add(
                f"{pascal_case(name)}DeadLetters",
                queue.metric_approximate_number_of_messages_visible(period=_PERIOD, statistic="Maximum"),
                f"Events for {name} could not be delivered and wait in its dead-letter queue.",
                threshold=0,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            )

    def _add(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        description: str,
        *,
        threshold: float = 1,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"Autopatch: {description}",
        )
        alarm.add_alarm_action(self._action)
        self.alarms[construct_id] = alarm
