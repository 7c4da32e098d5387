"""Telling people: Slack (Block Kit), SNS (email, Chatbot) and our event bus.

Slack has two ways in. With a bot token (`AUTOPATCH_SLACK_BOT_SECRET_ARN`), each operation has one
message, posted with `chat.postMessage` and then updated in place with `chat.update` as the run
moves; the ledger keeps where it is. Without one, each state is a new message through the incoming
webhook. Both secrets live in Secrets Manager only, read through Powertools Parameters (cached for
five minutes). Nothing here raises on a Slack failure: the Notification says it was not delivered,
and why, and never carries the token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3

from autopatch import clock
from autopatch.models import EVENT_SOURCE, Notification
from autopatch.observability import logger
from autopatch.settings import SLACK_API_URL, Settings

if TYPE_CHECKING:
    from autopatch.clients.ledger import Ledger
    from autopatch.models import Operation

SLACK_TIMEOUT_SECONDS = 5
SECRET_MAX_AGE = 300
# Where Slack sends a `response_url`; 127.0.0.1 is the rehearsal's stand-in.
RESPONSE_URL_PREFIXES = ("https://hooks.slack.com/", "http://127.0.0.1:", "http://127.0.0.1/")
# chat.update cannot find the message (deleted, or too old): post a new one instead.
MESSAGE_GONE = ("message_not_found", "cant_update_message", "edit_window_closed")


@lru_cache(maxsize=8)
def _client(service: str) -> Any:
    return boto3.client(service)


def _webhook_url(secret_arn: str) -> str | None:
    """The Slack webhook URL from Secrets Manager (cached for 5 minutes), or None if unset."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE)
    except parameters.exceptions.GetParameterError as exc:
        logger.warning("Slack webhook secret unreadable", extra={"error": str(exc)})
        return None
    url = str(value or "").strip()
    if url.startswith("{"):
        url = str(json.loads(url).get("url", ""))
    return url if url.startswith(("https://", "http://127.0.0.1", "http://localhost")) else None


@dataclass(frozen=True)
class SlackBot:
    """The bot token and the channel it posts to. The token is kept out of repr and messages."""

    token: str = field(repr=False)
    channel: str


def _slack_bot(secret_arn: str) -> SlackBot | None:
    """The bot token and channel from Secrets Manager (cached for 5 minutes), or None if unset."""
    if not secret_arn:
        return None
    from aws_lambda_powertools.utilities import parameters

    try:
        value = parameters.get_secret(secret_arn, max_age=SECRET_MAX_AGE)
    except parameters.exceptions.GetParameterError as exc:
        logger.warning("Slack bot secret unreadable", extra={"error": str(exc)})
        return None
    try:
        data = json.loads(str(value or ""))
    except ValueError:
        data = None
    token = str(data.get("token") or "").strip() if isinstance(data, dict) else ""
    channel = str(data.get("channel") or "").strip() if isinstance(data, dict) else ""
    if not token or not channel:
        # Say what is wrong with the secret, never what is in it.
        logger.warning("Slack bot secret is not {token, channel} JSON: using the webhook")
        return None
    return SlackBot(token, channel)


def _response_url_allowed(url: str) -> bool:
    return url.startswith(RESPONSE_URL_PREFIXES)


@dataclass
class Notifier:
    topic_arn: str
    event_bus: str
    slack_secret_arn: str
    slack_bot_secret_arn: str = ""
    slack_api_url: str = SLACK_API_URL

    @classmethod
    def from_settings(cls, settings: Settings) -> Notifier:
        return cls(
            settings.topic_arn,
            settings.event_bus,
            settings.slack_webhook_secret_arn,
            settings.slack_bot_secret_arn,
            settings.slack_api_url,
        )

    # ---- Slack ---------------------------------------------------------------------------------
    def slack_bot(self) -> SlackBot | None:
        return _slack_bot(self.slack_bot_secret_arn)

    def has_bot_token(self) -> bool:
        """True when each operation's message can be updated in place."""
        return self.slack_bot() is not None

    def slack(self, payload: dict[str, Any], *, status: str, summary: str) -> Notification:
        """A new message through the incoming webhook."""
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

    def post_or_update(
        self,
        op: Operation,
        payload: dict[str, Any],
        *,
        status: str,
        summary: str,
        ledger: Ledger,
        webhook_fallback: bool = True,
    ) -> Notification:
        """The operation's one message: updated in place if it was posted, else posted and
        remembered in the ledger. Without a bot token, a new webhook message. If the Slack API
        refuses (a revoked token, a missing channel), the webhook carries it instead unless
        `webhook_fallback` is False (progress updates: never a new message per step)."""
        if op.parent is not None:
            return self._record(
                "slack", status, summary, False, f"a step of {op.parent}: told in the upgrade's message"
            )
        bot = self.slack_bot()
        if bot is None:
            if not webhook_fallback:
                return self._record("slack", status, summary, False, "no Slack bot token: not updated")
            return self.slack(payload, status=status, summary=summary)
        try:
            ok, detail = self._post_or_update(bot, op, payload, status=status, ledger=ledger)
        except Exception as exc:  # never out of the notifier, never with the token
            ok, detail = False, _scrub(f"Slack API call failed: {type(exc).__name__}: {exc}", bot)
        if ok or not webhook_fallback:
            return self._record("slack", status, summary, ok, detail)
        fallback = self.slack(payload, status=status, summary=summary)
        fallback.detail = f"{detail}; webhook: {fallback.detail or 'sent'}"
        return fallback

    def _post_or_update(
        self, bot: SlackBot, op: Operation, payload: dict[str, Any], *, status: str, ledger: Ledger
    ) -> tuple[bool, str]:
        from slack_sdk import WebClient
        from slack_sdk.errors import SlackApiError

        client = WebClient(bot.token, base_url=self.slack_api_url, timeout=SLACK_TIMEOUT_SECONDS)
        text, blocks = payload.get("text", ""), payload.get("blocks")
        try:
            ref = ledger.slack_message(op.cluster.key, op.id)
        except Exception as exc:
            logger.warning("Slack message reference unreadable", extra={"error": str(exc)})
            ref = None
        gone = ""
        if ref:
            channel, ts = str(ref["channel"]), str(ref["ts"])
            try:
                client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
                self._remember(ledger, op, channel, ts, status)
                return True, f"updated in place (ts {ts})"
            except SlackApiError as exc:
                error = _slack_error(exc)
                if error not in MESSAGE_GONE:
                    return False, f"chat.update said {error}"
                gone = f"message {ts} gone ({error}); "
            except OSError as exc:
                return False, _scrub(f"Slack unreachable: {exc}", bot)
        try:
            response = client.chat_postMessage(channel=bot.channel, text=text, blocks=blocks)
        except SlackApiError as exc:
            return False, f"{gone}chat.postMessage said {_slack_error(exc)}"
        except OSError as exc:
            return False, _scrub(f"{gone}Slack unreachable: {exc}", bot)
        channel, ts = str(response.get("channel") or bot.channel), str(response.get("ts") or "")
        saved = self._remember(ledger, op, channel, ts, status)
        return True, f"{gone}posted (ts {ts})" + ("" if saved else "; its reference was not saved")

    @staticmethod
    def _remember(ledger: Ledger, op: Operation, channel: str, ts: str, status: str) -> bool:
        try:
            ledger.save_slack_message(op.cluster.key, op.id, channel, ts, state=status)
        except Exception as exc:
            logger.warning("Slack message reference not saved", extra={"error": str(exc)})
            return False
        return True

    def respond(
        self, response_url: str, payload: dict[str, Any], *, status: str = "response", summary: str = ""
    ) -> Notification:
        """POST to an interaction's `response_url` (an ephemeral reply, or `replace_original`)."""
        from slack_sdk.webhook import WebhookClient

        summary = summary or str(payload.get("text", ""))[:200]
        if not _response_url_allowed(response_url):
            return self._record("slack", status, summary, False, "response_url is not a Slack URL")
        try:
            response = WebhookClient(response_url, timeout=SLACK_TIMEOUT_SECONDS).send_dict(payload)
        except OSError as exc:
            return self._record("slack", status, summary, False, f"Slack unreachable: {exc}")
        ok = response.status_code == 200
        return self._record(
            "slack", status, summary, ok, None if ok else f"response_url said {response.status_code}"
        )

    # ---- SNS and the bus -------------------------------------------------------------------------
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


def _slack_error(exc: Any) -> str:
    """The error code of a Slack API refusal ("not_authed", "channel_not_found", …)."""
    response = getattr(exc, "response", None)
    try:
        return str(response.get("error") or "unknown_error") if response is not None else "unknown_error"
    except Exception:
        return "unknown_error"


def _scrub(text: str, bot: SlackBot) -> str:
    return text.replace(bot.token, "xoxb-***")[:500]
