"""Release watching: EventBridge Scheduler runs the release watcher on a fixed rate.

AWS publishes no event for a new add-on version, AMI release or Kubernetes version, so the watcher polls
and announces what it finds on the Autopatch bus.
"""

from __future__ import annotations

from aws_cdk import Aws, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as scheduler_targets
from constructs import Construct

from stacks.constructs.nag import acknowledge
from stacks.constructs.workflows import arn_logical_id, dead_letter_queue


class ReleaseWatching(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, watcher: lambda_.IFunction, rate: Duration
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = dead_letter_queue(self, "ScheduleDeadLetters")
        acknowledge(
            self.dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the release-watcher schedule; it needs no DLQ.",
        )
        # Our own role (not the one the target would create at stack level) so that the finding below
        # can be acknowledged on exactly this role.
        self.role = iam.Role(
            self,
            "ScheduleRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            ),
            description="EventBridge Scheduler invoking the Autopatch release watcher",
        )
        self.schedule = scheduler.Schedule(
            self,
            "Schedule",
            description="Autopatch: look for new EKS add-on versions and AMI releases and announce them",
            schedule=scheduler.ScheduleExpression.rate(rate),
            target=scheduler_targets.LambdaInvoke(
                watcher,
                role=self.role,
                dead_letter_queue=self.dead_letter_queue,
                retry_attempts=2,
                # A run that cannot start within the hour is skipped: the next one covers it.
                max_event_age=Duration.hours(1),
            ),
        )
        acknowledge(
            self.role.node.find_child("DefaultPolicy"),
            "AwsSolutions-IAM5",
            "Added by the Lambda target's grant: the wildcard covers versions and aliases of the "
            "release watcher function only.",
            findings=[f"Resource::<{arn_logical_id(watcher)}.Arn>:*"],
        )
