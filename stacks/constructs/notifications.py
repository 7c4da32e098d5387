"""Where Autopatch talks to people: an encrypted SNS topic and the Slack webhook secret."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, SecretValue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from constructs import Construct

from stacks.constructs.nag import acknowledge

# What the secret holds until the operator stores the real Slack incoming-webhook URL in it.
# Nothing secret is ever in the template.
SLACK_WEBHOOK_PLACEHOLDER = "REPLACE_ME"


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        # A customer managed key: the AWS managed SNS key cannot be used by CloudWatch alarms.
        self.key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the Autopatch notification topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="Autopatch for EKS",
            master_key=self.key,
            enforce_ssl=True,
        )
        self.slack_webhook_secret = secretsmanager.Secret(
            self,
            "SlackWebhook",
            description=(
                "Slack incoming-webhook URL for Autopatch messages. Replace the placeholder with "
                "the URL from your Slack app after the first deploy."
            ),
            secret_string_value=SecretValue.unsafe_plain_text(SLACK_WEBHOOK_PLACEHOLDER),
        )
        acknowledge(
            self.slack_webhook_secret,
            "AwsSolutions-SMG4",
            "The secret is a Slack incoming-webhook URL issued by Slack; Secrets Manager has no way to "
            "rotate it. It is replaced by hand when Slack reissues the webhook.",
        )
        # The Slack app's bot token and channel, `{"token": "xoxb-…", "channel": "C…"}`: with it, the
        # approval decider updates the message a person clicked on.
        self.slack_bot_token_secret = secretsmanager.Secret(
            self,
            "SlackBotToken",
            description=(
                'Slack bot token and channel for Autopatch, as {"token": "xoxb-...", "channel": "C..."}. '
                "Replace the placeholder after installing the Slack app."
            ),
            secret_string_value=SecretValue.unsafe_plain_text(SLACK_WEBHOOK_PLACEHOLDER),
        )
        acknowledge(
            self.slack_bot_token_secret,
            "AwsSolutions-SMG4",
            "The bot token is issued by Slack when the app is installed; Secrets Manager has no way to "
            "rotate it. It is replaced by hand when the app is reinstalled.",
        )
