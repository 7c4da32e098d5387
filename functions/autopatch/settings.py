"""Runtime configuration, read from the environment once per cold start.

Logic never reads `os.environ`; it receives a `Settings`. The CDK app sets these variables on every
function; the rehearsal sets them for the in-process handlers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ENV_LEDGER_TABLE = "AUTOPATCH_LEDGER_TABLE"
ENV_EVENT_BUS = "AUTOPATCH_EVENT_BUS"
ENV_TOPIC_ARN = "AUTOPATCH_TOPIC_ARN"
ENV_SLACK_WEBHOOK_SECRET_ARN = "AUTOPATCH_SLACK_WEBHOOK_SECRET_ARN"
ENV_POLICY_PATH = "AUTOPATCH_POLICY_PATH"
ENV_CONSOLE_URL = "AUTOPATCH_CONSOLE_URL"

# The approval API and emailed approval links (all optional: without them, approvers decide in
# Slack through the API or with the CLI). Secrets are named by ARN, never given as values.
ENV_APPROVAL_TOPIC_ARN = "AUTOPATCH_APPROVAL_TOPIC_ARN"
ENV_APPROVAL_API_URL = "AUTOPATCH_APPROVAL_API_URL"
ENV_APPROVAL_QUEUE_URL = "AUTOPATCH_APPROVAL_QUEUE_URL"
ENV_SLACK_SIGNING_SECRET_ARN = "AUTOPATCH_SLACK_SIGNING_SECRET_ARN"
ENV_LINK_KEY_SECRET_ARN = "AUTOPATCH_LINK_KEY_SECRET_ARN"
# Optional: a Secrets Manager secret holding `{"token": "xoxb-…", "channel": "C…"}`. Set, each
# operation has one Slack message updated in place; unset, every state is a new webhook message.
ENV_SLACK_BOT_SECRET_ARN = "AUTOPATCH_SLACK_BOT_SECRET_ARN"
# Optional: where the Slack Web API is (the rehearsal points it at its local stand-in).
ENV_SLACK_API_URL = "AUTOPATCH_SLACK_API_URL"
SLACK_API_URL = "https://slack.com/api/"

# Shipped inside the Lambda asset by the CDK app, next to the `autopatch` package.
DEFAULT_POLICY_PATH = str(Path(__file__).resolve().parent.parent / "fleet.json")


@dataclass(frozen=True)
class Settings:
    ledger_table: str
    event_bus: str
    topic_arn: str
    slack_webhook_secret_arn: str
    policy_path: str
    console_url: str = "https://console.aws.amazon.com/states/home"
    # The approval API and emailed approval links.
    approval_topic_arn: str | None = None
    approval_api_url: str | None = None
    approval_queue_url: str | None = None
    slack_signing_secret_arn: str | None = None
    link_key_secret_arn: str | None = None
    slack_bot_secret_arn: str = ""
    slack_api_url: str = SLACK_API_URL

    @classmethod
    def from_env(cls) -> Settings:
        missing = [
            name
            for name in (ENV_LEDGER_TABLE, ENV_EVENT_BUS, ENV_TOPIC_ARN, ENV_SLACK_WEBHOOK_SECRET_ARN)
            if not os.environ.get(name)
        ]
        if missing:
            raise RuntimeError(f"missing configuration: {', '.join(missing)}")
        return cls(
            ledger_table=os.environ[ENV_LEDGER_TABLE],
            event_bus=os.environ[ENV_EVENT_BUS],
            topic_arn=os.environ[ENV_TOPIC_ARN],
            slack_webhook_secret_arn=os.environ[ENV_SLACK_WEBHOOK_SECRET_ARN],
            policy_path=os.environ.get(ENV_POLICY_PATH) or DEFAULT_POLICY_PATH,
            console_url=os.environ.get(ENV_CONSOLE_URL) or _console_url(os.environ.get("AWS_REGION")),
            # The approval API and emailed approval links.
            approval_topic_arn=os.environ.get(ENV_APPROVAL_TOPIC_ARN) or None,
            approval_api_url=(os.environ.get(ENV_APPROVAL_API_URL) or "").rstrip("/") or None,
            approval_queue_url=os.environ.get(ENV_APPROVAL_QUEUE_URL) or None,
            slack_signing_secret_arn=os.environ.get(ENV_SLACK_SIGNING_SECRET_ARN) or None,
            link_key_secret_arn=os.environ.get(ENV_LINK_KEY_SECRET_ARN) or None,
            slack_bot_secret_arn=os.environ.get(ENV_SLACK_BOT_SECRET_ARN, ""),
            slack_api_url=os.environ.get(ENV_SLACK_API_URL) or SLACK_API_URL,
        )


def _console_url(region: str | None) -> str:
    """The Step Functions console of the functions' own region (where the executions are)."""
    if not region:
        return Settings.console_url
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}"


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings.from_env()
