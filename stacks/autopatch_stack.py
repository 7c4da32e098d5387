"""The Autopatch stack: assembles the capabilities; each construct builds its own part."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autopatch.policy import FleetPolicy
from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.constructs.alarms import Alarms
from stacks.constructs.approvals import ApprovalApi, ApprovalResources, approver_emails
from stacks.constructs.definitions import CatalogError, load_catalog
from stacks.constructs.end_of_support import EndOfSupportWatching
from stacks.constructs.fleet import fleet_clusters
from stacks.constructs.functions import AutopatchFunctions
from stacks.constructs.kubernetes_access import KubernetesAccess
from stacks.constructs.ledger import Ledger
from stacks.constructs.notifications import Notifications
from stacks.constructs.release_watching import ReleaseWatching
from stacks.constructs.workflows import Workflows, pascal_case

EVENT_BUS_NAME = "autopatch"
WATCHER_FUNCTION = "ReleaseWatcher"
END_OF_SUPPORT_WATCHER_FUNCTION = "EndOfSupportWatcher"
HEALTH_TRANSLATOR_FUNCTION = "HealthTranslator"
APPROVAL_RECEIVER_FUNCTION = "ApprovalReceiver"
APPROVAL_DECIDER_FUNCTION = "ApprovalDecider"
REQUEST_APPROVAL_FUNCTION = "RequestApproval"


class AutopatchStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        policy: FleetPolicy,
        code: lambda_.Code,
        statemachines_dir: Path,
        watcher_rate: Duration,
        create_access_entries: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        catalog = load_catalog(statemachines_dir)
        for required in (
            WATCHER_FUNCTION,
            END_OF_SUPPORT_WATCHER_FUNCTION,
            HEALTH_TRANSLATOR_FUNCTION,
            APPROVAL_RECEIVER_FUNCTION,
            APPROVAL_DECIDER_FUNCTION,
            REQUEST_APPROVAL_FUNCTION,
        ):
            if required not in catalog.functions:
                raise CatalogError(f"functions.json must list the {required} function")
        clusters = fleet_clusters(policy)

        self.ledger = ledger = Ledger(self, "Ledger")
        self.notifications = notifications = Notifications(self, "Notifications")
        self.event_bus = event_bus = events.EventBus(self, "EventBus", event_bus_name=EVENT_BUS_NAME)
        self.approval_resources = approval_resources = ApprovalResources(
            self, "ApprovalResources", approvers=approver_emails(policy)
        )
        self.functions = functions = AutopatchFunctions(
            self,
            "Functions",
            specs=catalog.functions,
            code=code,
            ledger_table=ledger.table,
            topic=notifications.topic,
            slack_webhook_secret=notifications.slack_webhook_secret,
            event_bus=event_bus,
            clusters=clusters,
            approvals=approval_resources,
            slack_bot_token_secret=notifications.slack_bot_token_secret,
        )
        self.workflows = workflows = Workflows(
            self,
            "Workflows",
            catalog=catalog,
            functions=functions.functions,
            event_bus=event_bus,
            ledger_table=ledger.table,
        )
        functions.allow_task_responses(workflows.state_machines.values())
        self.approval_api = approval_api = ApprovalApi(
            self,
            "ApprovalApi",
            receiver=functions.functions[APPROVAL_RECEIVER_FUNCTION],
            decider=functions.functions[APPROVAL_DECIDER_FUNCTION],
            queue=approval_resources.queue,
            url_users=[functions.functions[REQUEST_APPROVAL_FUNCTION]],
        )
        watcher = functions.functions[WATCHER_FUNCTION]
        self.release_watching = release_watching = ReleaseWatching(
            self, "ReleaseWatching", watcher=watcher, rate=watcher_rate
        )
        self.end_of_support_watching = end_of_support = EndOfSupportWatching(
            self,
            "EndOfSupportWatching",
            watcher=functions.functions[END_OF_SUPPORT_WATCHER_FUNCTION],
            translator=functions.functions[HEALTH_TRANSLATOR_FUNCTION],
        )
        self.alarms = Alarms(
            self,
            "Alarms",
            topic=notifications.topic,
            state_machines=workflows.state_machines,
            watcher=watcher,
            dead_letter_queues={
                **workflows.dead_letter_queues,
                "release-watcher-schedule": release_watching.dead_letter_queue,
                "end-of-support-watcher-schedule": end_of_support.schedule_dead_letter_queue,
                "aws-health-rule": end_of_support.health_dead_letter_queue,
                "approval-decisions": approval_resources.dead_letter_queue,
            },
            other_functions={
                "end-of-support-watcher": functions.functions[END_OF_SUPPORT_WATCHER_FUNCTION],
                "health-translator": functions.functions[HEALTH_TRANSLATOR_FUNCTION],
            },
        )
        self.kubernetes_access = KubernetesAccess(
            self,
            "KubernetesAccess",
            reader_role=functions.kubernetes_reader_role,
            clusters=clusters,
            create_access_entries=create_access_entries,
        )

        CfnOutput(self, "EventBusName", value=event_bus.event_bus_name)
        for name, state_machine in workflows.state_machines.items():
            CfnOutput(
                self,
                f"{pascal_case(name)}StateMachineArn",
                value=state_machine.state_machine_arn,
                description=f"The {name} workflow",
            )
        CfnOutput(self, "TopicArn", value=notifications.topic.topic_arn)
        CfnOutput(
            self,
            "SlackWebhookSecretArn",
            value=notifications.slack_webhook_secret.secret_arn,
            description="Put the Slack incoming-webhook URL in this secret",
        )
        CfnOutput(self, "LedgerTableName", value=ledger.table.table_name)
        CfnOutput(
            self,
            "ApprovalApiUrl",
            value=approval_api.url,
            description="The approval API; Slack's interactivity request URL is <this>/slack/interactions",
        )
        CfnOutput(
            self,
            "SlackSigningSecretArn",
            value=approval_resources.slack_signing_secret.secret_arn,
            description="Put the Slack app's signing secret in this secret",
        )
        CfnOutput(
            self,
            "SlackBotTokenSecretArn",
            value=notifications.slack_bot_token_secret.secret_arn,
            description='Put {"token": "xoxb-...", "channel": "C..."} of the Slack app in this secret',
        )
        CfnOutput(self, "ApprovalsTopicArn", value=approval_resources.topic.topic_arn)
        CfnOutput(
            self,
            "KubernetesReaderRoleArn",
            value=functions.kubernetes_reader_role.role_arn,
            description="Map this role to the Kubernetes group autopatch-readers (deploy/rbac/)",
        )
