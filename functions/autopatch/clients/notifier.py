"""Telling people: Slack (incoming webhook, Block Kit), SNS (email, Chatbot) and our event bus."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import boto3

from autopatch import clock
from autopatch.models import EVENT_SOURCE, Notification
from autopatch.observability import logger
from autopatch.settings import Settings

SLACK_TIMEOUT_SECONDS = 5


@lru_cache(maxsize=8)
def _client(service: str) -> Any:
    return boto3.client(service)


def _webhook_url(secret_arn: str) -> str | None:
    """The Slack webhook URL from Secrets Manager (cached for 5 minutes), or None if unset."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(secret_arn, max_age=300)
    except parameters.exceptions.GetParameterError as exc:
        logger.warning("Slack webhook secret unreadable", extra={"error": str(exc)})
        return None
    url = str(value or "").strip()
    if url.startswith("{"):
        url = str(json.loads(url).get("url", ""))
    return url if url.startswith(("https://", "http://127.0.0.1", "http://localhost")) else None


@dataclass
class Notifier:
    topic_arn: str
    event_bus: str
    slack_secret_arn: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Notifier:
        return cls(settings.topic_arn, settings.event_bus, settings.slack_webhook_secret_arn)

    def slack(self, payload: dict[str, Any], *, status: str, summary: str) -> Notification:
        from slack_sdk.webhook import WebhookClient

        url = _webhook_url(self.slack_secret_arn)
        if url is None:
            return self._record("slack", status, summary, False, "Slack webhook not configured")
        try:
            response = WebhookClient(url, timeout=SLACK_TIMEOUT_SECONDS).send_dict(payload)
        except OSError as exc:
            return self._record("slack", status, summary, False, f"Slack unreachable: {exc}")
        ok = response.status_code == 200
        return self._record(
            "slack", status, summary, ok, None if ok else f"Slack said {response.status_code}"
        )

    def sns(self, subject: str, text: str, *, status: str, attributes: dict[str, str]) -> Notification:
        _client("sns").publish(
            TopicArn=self.topic_arn,
            Subject=subject[:99],
            Message=text,
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v} for k, v in attributes.items() if v
            },
        )
        return self._record("sns", status, subject, True)

    def event(self, detail_type: str, detail: dict[str, Any], *, status: str) -> Notification:
        response = _client("events").put_events(
            Entries=[
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, default=str),
                    "EventBusName": self.event_bus,
                }
            ]
        )
        ok = response.get("FailedEntryCount", 0) == 0
        return self._record("eventbridge", status, detail_type, ok)

    @staticmethod
    def _record(
        channel: Any, status: str, summary: str, delivered: bool, detail: str | None = None
    ) -> Notification:
        return Notification(
            channel=channel,
            at=clock.now(),
            status=status,
            summary=summary,
            delivered=delivered,
            detail=detail,
        )
