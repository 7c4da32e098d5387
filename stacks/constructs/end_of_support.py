"""End-of-support watching: a daily schedule for the watcher, and the AWS Health rule on the default bus.

The end-of-support watcher reads each fleet cluster's version against the EKS version catalogue once a
day. AWS Health puts EKS planned lifecycle events (end of standard or extended support) on the account's
default bus only, in its own shape; a rule there hands them to the translator, which puts our own
`EKS Version End Of Support Approaching` events on the Autopatch bus.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.constructs.nag import acknowledge
from stacks.constructs.release_watching import schedule_function
from stacks.constructs.workflows import dead_letter_queue

# The AWS Health events the translator reads (FIDELITY 5.10-5.13). The category is left out on
# purpose: it is `scheduledChange`, but public samples carry other values (5.14), and the translator
# checks and reports what it gets rather than having EventBridge drop it unseen.
HEALTH_EVENT_PATTERN: dict[str, Any] = {
    "source": ["aws.health"],
    "detail-type": ["AWS Health Event"],
    "detail": {"service": ["EKS"], "eventTypeCode": ["AWS_EKS_PLANNED_LIFECYCLE_EVENT"]},
}


class EndOfSupportWatching(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        watcher: lambda_.IFunction,
        translator: lambda_.IFunction,
        target_retry_attempts: int = 8,
    ) -> None:
        super().__init__(scope, construct_id)

        # ---- the daily schedule -------------------------------------------------------------------
        scheduled = schedule_function(
            self,
            watcher,
            what="end-of-support watcher",
            description="Autopatch: announce control-plane upgrades as end-of-support dates come near",
            rate=Duration.days(1),
            # A run that cannot start within six hours is skipped: tomorrow's covers it (a pass
            # sends the tightest threshold reached, so nothing is lost by a skipped day).
            max_event_age=Duration.hours(6),
        )
        self.schedule_dead_letter_queue = scheduled.dead_letter_queue
        self.schedule_role = scheduled.role
        self.schedule = scheduled.schedule

        # ---- AWS Health on the default bus --------------------------------------------------------
        self.health_dead_letter_queue = dead_letter_queue(self, "HealthDeadLetters")
        acknowledge(
            self.health_dead_letter_queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter queue of the AWS Health rule's target; it needs no DLQ.",
        )
        # No event_bus: the rule is on the account's default bus, the only one Health delivers to.
        self.health_rule = events.Rule(
            self,
            "HealthRule",
            description="Autopatch: AWS Health EKS planned lifecycle events to the end-of-support translator",
            event_pattern=events.EventPattern(
                source=HEALTH_EVENT_PATTERN["source"],
                detail_type=HEALTH_EVENT_PATTERN["detail-type"],
                detail=HEALTH_EVENT_PATTERN["detail"],
            ),
            targets=[
                targets.LambdaFunction(
                    translator,
                    dead_letter_queue=self.health_dead_letter_queue,
                    retry_attempts=target_retry_attempts,
                    max_event_age=Duration.hours(24),
                )
            ],
        )
