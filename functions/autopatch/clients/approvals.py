"""The AWS side of the approval API: its secrets, its queue, its ledger reads, the approvals topic.

Ledger items added here (same table, `pk`/`sk`, TTL `expiresAt`):
- `LINK#<nonce>` / `LINK`: an emailed link that was used (approval, approver, when). Written with a
  condition, so a link decides at most once, even while its approval is still pending.

The receiver reads the ledger only through `ApprovalViews`: a projected GetItem that never asks for
the task token (its IAM policy allows those attributes only).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError

from autopatch import clock

SECRET_MAX_AGE = 300
# A used link is remembered a day past its expiry: an expired link is refused by its signature
# check anyway, so the record only has to outlive the link.
LINK_RECORD_GRACE = timedelta(days=1)
# What the receiver may read of an approval item (the stack's policy lists the same names).
APPROVAL_VIEW_ATTRIBUTES = (
    "pk",
    "sk",
    "cluster",
    "component",
    "fromVersion",
    "toVersion",
    "status",
    "decision",
    "decidedBy",
    "decidedAt",
)


@lru_cache(maxsize=4)
def _client(service: str) -> Any:
    return boto3.client(service)


def read_secret(arn: str | None) -> str:
    """A secret's value through Powertools Parameters (cached for five minutes); "" if unset."""
    if not arn:
        return ""
    from aws_lambda_powertools.utilities import parameters

    return str(parameters.get_secret(arn, max_age=SECRET_MAX_AGE) or "")


class SqsDecisionQueue:
    """Where the receiver puts each accepted request for the decider."""

    def __init__(self, queue_url: str, *, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    def send(self, body: dict[str, Any]) -> None:
        (self._client or _client("sqs")).send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(body))


class ApprovalViews:
    """Read-only: what the confirmation page shows, and whether a link was used."""

    def __init__(self, table: Any) -> None:
        self.table = table

    def summary(self, approval_id: str) -> dict[str, Any] | None:
        names = {f"#a{i}": name for i, name in enumerate(APPROVAL_VIEW_ATTRIBUTES)}
        response = self.table.get_item(
            Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"},
            ProjectionExpression=", ".join(names),
            ExpressionAttributeNames=names,
        )
        return response.get("Item")

    def link_used(self, nonce: str) -> bool:
        response = self.table.get_item(
            Key={"pk": f"LINK#{nonce}", "sk": "LINK"},
            ProjectionExpression="#pk",
            ExpressionAttributeNames={"#pk": "pk"},
        )
        return "Item" in response


class LinkUses(ApprovalViews):
    """The decider's side: record a link as used, once."""

    def use(self, nonce: str, *, approval_id: str, approver: str, link_expires_at: datetime) -> bool:
        """True if this is the link's first use; False if it was used before (nothing written)."""
        try:
            self.table.put_item(
                Item={
                    "pk": f"LINK#{nonce}",
                    "sk": "LINK",
                    "approvalId": approval_id,
                    "approver": approver,
                    "usedAt": clock.iso(clock.now()),
                    "expiresAt": clock.epoch(link_expires_at + LINK_RECORD_GRACE),
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise


class ApprovalMail:
    """One email per approver through the approvals topic; each subscription's filter policy on
    the `approver` attribute lets only that approver's message through."""

    def __init__(self, topic_arn: str, api_url: str, link_key_secret_arn: str, *, client: Any = None) -> None:
        self.topic_arn = topic_arn
        self.api_url = api_url.rstrip("/")
        self.link_key_secret_arn = link_key_secret_arn
        self._client = client

    def link_key(self) -> str:
        return read_secret(self.link_key_secret_arn)

    def publish(self, *, approver: str, subject: str, text: str) -> str:
        response = (self._client or _client("sns")).publish(
            TopicArn=self.topic_arn,
            Subject=subject[:99],
            Message=text,
            MessageAttributes={"approver": {"DataType": "String", "StringValue": approver}},
        )
        return str(response.get("MessageId", ""))


def clear_clients() -> None:
    _client.cache_clear()
