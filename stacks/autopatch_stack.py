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
        for required in (WATCHER_FUNCTION, END_OF_SUPPORT_WATCHER_FUNCTION, HEALTH_TRANSLATOR_FUNCTION):
            if required not in catalog.functions:
                raise CatalogError(f"functions.json must list the {required} function")
        clusters = fleet_clusters(policy)

        self.ledger = ledger = Ledger(self, "Ledger")
        self.notifications = notifications = Notifications(self, "Notifications")
        self.event_bus = event_bus = events.EventBus(self, "EventBus", event_bus_name=EVENT_BUS_NAME)
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
        )
        self.workflows = workflows = Workflows(
            self,
            "Workflows",
            catalog=catalog,
            functions=functions.functions,
            event_bus=event_bus,
            ledger_table=ledger.table,
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
            "KubernetesReaderRoleArn",
            value=functions.kubernetes_reader_role.role_arn,
            description="Map this role to the Kubernetes group autopatch-readers (deploy/rbac/)",
        )
