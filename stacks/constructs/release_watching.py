"""Release watching: EventBridge Scheduler runs the release watcher on a fixed rate.

AWS publishes no event for a new add-on version, AMI release or Kubernetes version, so the watcher polls
and announces what it finds on the Autopatch bus.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from stacks.constructs.nag import acknowledge
from stacks.constructs.workflows import arn_logical_id, dead_letter_queue


@dataclass(frozen=True)
class ScheduledFunction:
    dead_letter_queue: sqs.Queue
    role: iam.Role
    schedule: scheduler.Schedule


def schedule_function(
    scope: Construct,
    function: lambda_.IFunction,
    *,
    what: str,
    description: str,
    rate: Duration,
    max_event_age: Duration,
) -> ScheduledFunction:
    """An EventBridge Scheduler schedule that invokes `function` at `rate`, with a dead-letter queue
    and a role of its own (so that the grant's finding can be acknowledged on exactly that role).
    `what` names the function in the resources' descriptions."""
    dead_letters = dead_letter_queue(scope, "ScheduleDeadLetters")
    acknowledge(
        dead_letters,
        "AwsSolutions-SQS3",
        f"This queue is the dead-letter queue of the {what} schedule; it needs no DLQ.",
    )
    role = iam.Role(
        scope,
        "ScheduleRole",
        assumed_by=iam.ServicePrincipal(
            "scheduler.amazonaws.com",
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ),
        description=f"EventBridge Scheduler invoking the Autopatch {what}",
    )
    schedule = scheduler.Schedule(
        scope,
        "Schedule",
        description=description,
        schedule=scheduler.ScheduleExpression.rate(rate),
        target=scheduler_targets.LambdaInvoke(
            function,
            role=role,
            dead_letter_queue=dead_letters,
            retry_attempts=2,
            max_event_age=max_event_age,
        ),
    )
    acknowledge(
        role.node.find_child("DefaultPolicy"),
        "AwsSolutions-IAM5",
        f"Added by the Lambda target's grant: the wildcard covers versions and aliases of the {what} "
        "function only.",
        findings=[f"Resource::<{arn_logical_id(function)}.Arn>:*"],
    )
    return ScheduledFunction(dead_letters, role, schedule)


class ReleaseWatching(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, watcher: lambda_.IFunction, rate: Duration
    ) -> None:
        super().__init__(scope, construct_id)
        scheduled = schedule_function(
            self,
            watcher,
            what="release watcher",
            description="Autopatch: look for new EKS add-on versions and AMI releases and announce them",
            rate=rate,
            # A run that cannot start within the hour is skipped: the next one covers it.
            max_event_age=Duration.hours(1),
        )
        self.dead_letter_queue, self.role, self.schedule = (
            scheduled.dead_letter_queue,
            scheduled.role,
            scheduled.schedule,
        )
