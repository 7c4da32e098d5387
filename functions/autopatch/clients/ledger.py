"""The DynamoDB ledger: locks, claims, operations, approvals, announcements, rejected events.

Keys (one table, `pk`/`sk`, TTL attribute `expiresAt`):
- `CLUSTER#<account>#<region>#<name>` / `LOCK`: the per-cluster lease.
- `CLUSTER#…` / `TARGET#<kind>#<component>#<target>`: the claim of a target (who holds it, how it
  ended). A conditional write here is what makes 20 identical events start one update.
- `CLUSTER#…` / `OP#<kind>#<component>#<target>#<execution>`: the operation record (audit trail).
- `CLUSTER#…` / `ANNOUNCED#<kind>#<component>#<target>`: what the watcher announced, and when.
- `CLUSTER#…` / `SLACK#<execution>`: the operation's Slack message (`channel`, `ts`), updated in place.
- `APPROVAL#<id>` / `APPROVAL`: task token, operation key, approvers, decision.
- `INVALID#<date>` / `<execution>`: rejected events.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

from autopatch import clock
from autopatch.models import HOLDING_STATUSES, Operation

RECORD_TTL = timedelta(days=400)
APPROVAL_TTL = timedelta(days=30)


def cluster_pk(cluster_key: str) -> str:
    return f"CLUSTER#{cluster_key}"


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class Ledger:
    def __init__(self, table_name: str, *, resource: Any = None) -> None:
        self.table = (resource or boto3.resource("dynamodb")).Table(table_name)

    # ---- rejected events -----------------------------------------------------------------------
    def record_invalid_event(self, execution: str, event: Any, problems: list[str]) -> None:
        now = clock.now()
        excerpt = json.dumps(event, default=str)[:4000]
        self.table.put_item(
            Item={
                "pk": f"INVALID#{now.date().isoformat()}",
                "sk": execution,
                "receivedAt": clock.iso(now),
                "problems": problems[:20],
                "event": excerpt,
                "expiresAt": clock.epoch(now + RECORD_TTL),
            }
        )

    # ---- claims ---------------------------------------------------------------------------------
    def claim_target(self, op: Operation) -> tuple[bool, dict[str, Any] | None]:
        """Claim (cluster, component, target) for this execution unless it is running or done."""
        now = clock.now()
        try:
            self.table.put_item(
                Item={
                    "pk": cluster_pk(op.cluster.key),
                    "sk": f"TARGET#{op.target_key}",
                    "status": "running",
                    "holder": op.id,
                    "claimedAt": clock.iso(now),
                    "opKey": op.op_sort_key,
                },
                # A retried Claim task of the same execution finds its own claim and keeps it.
                ConditionExpression="attribute_not_exists(pk) OR NOT (#s IN (:a, :b)) OR holder = :me",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":a": HOLDING_STATUSES[0],
                    ":b": HOLDING_STATUSES[1],
                    ":me": op.id,
                },
            )
            return True, None
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False, self.get_target(op.cluster.key, op.target_key)

    def get_target(self, cluster_key: str, target_key: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"pk": cluster_pk(cluster_key), "sk": f"TARGET#{target_key}"})
        return item.get("Item")

    def finish_target(self, op: Operation) -> None:
        """Record how the claim ended, if this execution holds it."""
        try:
            self.table.update_item(
                Key={"pk": cluster_pk(op.cluster.key), "sk": f"TARGET#{op.target_key}"},
                UpdateExpression="SET #s = :s, reason = :r, finishedAt = :t",
                ConditionExpression="holder = :me",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":s": op.status,
                    ":r": op.reason or "",
                    ":t": clock.iso(clock.now()),
                    ":me": op.id,
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    # ---- operation records ----------------------------------------------------------------------
    def save_operation(self, op: Operation) -> None:
        now = clock.now()
        self.table.put_item(
            Item={
                "pk": cluster_pk(op.cluster.key),
                "sk": op.op_sort_key,
                "status": op.status,
                "reason": op.reason or "",
                "cluster": op.cluster.name,
                "component": f"{op.component.kind}/{op.component.name}",
                "fromVersion": op.fromVersion,
                "toVersion": op.toVersion,
                "updatedAt": clock.iso(now),
                "record": op.model_dump_json(),
                "expiresAt": clock.epoch(now + RECORD_TTL),
            }
        )

    def operations(self, cluster_key: str, prefix: str = "OP#") -> list[Operation]:
        items = self._query(cluster_pk(cluster_key), prefix)
        return [Operation.model_validate_json(item["record"]) for item in items if "record" in item]

    def all_operation_items(self) -> list[dict[str, Any]]:
        """Every operation record (a scan: for reports and the CLI, not for the workflows)."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = self.table.scan(**kwargs)
            items.extend(i for i in page.get("Items", []) if str(i.get("sk", "")).startswith("OP#"))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key

        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"KeyConditionExpression": Key("pk").eq(pk) & Key("sk").begins_with(prefix)}
        while True:
            page = self.table.query(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ---- the per-cluster lease ------------------------------------------------------------------
    def acquire_lock(self, cluster_key: str, holder: str, lease_seconds: int) -> dict[str, Any] | None:
        """Take or renew the lease. Returns None on success, else the current holder's item."""
        now = clock.now()
        try:
            self.table.put_item(
                Item={
                    "pk": cluster_pk(cluster_key),
                    "sk": "LOCK",
                    "holder": holder,
                    "leaseUntil": clock.epoch(now + timedelta(seconds=lease_seconds)),
                    "since": clock.iso(now),
                    "expiresAt": clock.epoch(now + timedelta(days=7)),
                },
                ConditionExpression="attribute_not_exists(pk) OR leaseUntil < :now OR holder = :me",
                ExpressionAttributeValues={":now": clock.epoch(now), ":me": holder},
            )
            return None
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            item = self.table.get_item(Key={"pk": cluster_pk(cluster_key), "sk": "LOCK"}).get("Item")
            return item or {"holder": "unknown"}

    def renew_lock(self, cluster_key: str, holder: str, lease_seconds: int) -> bool:
        now = clock.now()
        try:
            self.table.update_item(
                Key={"pk": cluster_pk(cluster_key), "sk": "LOCK"},
                UpdateExpression="SET leaseUntil = :until",
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={
                    ":until": clock.epoch(now + timedelta(seconds=lease_seconds)),
                    ":me": holder,
                },
            )
            return True
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False

    def release_lock(self, cluster_key: str, holder: str) -> bool:
        try:
            self.table.delete_item(
                Key={"pk": cluster_pk(cluster_key), "sk": "LOCK"},
                ConditionExpression="holder = :me",
                ExpressionAttributeValues={":me": holder},
            )
            return True
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False

    def lock_holder(self, cluster_key: str) -> dict[str, Any] | None:
        return self.table.get_item(Key={"pk": cluster_pk(cluster_key), "sk": "LOCK"}).get("Item")

    # ---- approvals ------------------------------------------------------------------------------
    def put_approval(self, approval_id: str, item: dict[str, Any]) -> None:
        now = clock.now()
        self.table.put_item(
            Item={
                "pk": f"APPROVAL#{approval_id}",
                "sk": "APPROVAL",
                "status": "pending",
                "createdAt": clock.iso(now),
                "expiresAt": clock.epoch(now + APPROVAL_TTL),
                **item,
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def link_approval(self, cluster_key: str, execution: str, approval_id: str) -> None:
        """Let the run find its own approval (its state holds no approval id while it waits)."""
        self.table.put_item(
            Item={
                "pk": cluster_pk(cluster_key),
                "sk": f"APPROVAL#{execution}#{approval_id}",
                "approvalId": approval_id,
                "expiresAt": clock.epoch(clock.now() + APPROVAL_TTL),
            }
        )

    def approvals_of_execution(self, cluster_key: str, execution: str) -> list[dict[str, Any]]:
        links = self._query(cluster_pk(cluster_key), f"APPROVAL#{execution}#")
        found = (self.get_approval(str(link["approvalId"])) for link in links)
        return [item for item in found if item is not None]

    def note_approval_request(self, approval_id: str, notifications: list[dict[str, Any]]) -> None:
        """Keep what the request sent; decide() hands it back to the workflow with the decision."""
        self.table.update_item(
            Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"},
            UpdateExpression="SET requestNotifications = :n",
            ExpressionAttributeValues={":n": json.dumps(notifications)},
        )

    def get_approval(self, approval_id: str) -> dict[str, Any] | None:
        return self.table.get_item(Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"}).get("Item")

    def close_approval(
        self, approval_id: str, *, decision: str, by: str, at: datetime, reason: str | None
    ) -> bool:
        """Record the decision if the approval is still pending (the first decision wins)."""
        try:
            self.table.update_item(
                Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"},
                UpdateExpression="SET #s = :decided, decision = :d, decidedBy = :by, decidedAt = :at, "
                "decisionReason = :r",
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":decided": "decided",
                    ":pending": "pending",
                    ":d": decision,
                    ":by": by,
                    ":at": clock.iso(at),
                    ":r": reason or "",
                },
            )
            return True
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False

    def void_late_decision(self, approval_id: str, *, decision: str, by: str, at: datetime) -> None:
        """The workflow stopped waiting before the decision reached it: say so, keep who tried."""
        self.table.update_item(
            Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"},
            UpdateExpression="SET #s = :expired, lateDecision = :d, lateDecisionBy = :by, "
            "lateDecisionAt = :at REMOVE decision, decidedBy, decidedAt, decisionReason",
            ConditionExpression="#s = :decided AND decidedBy = :by",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":expired": "expired",
                ":decided": "decided",
                ":d": decision,
                ":by": by,
                ":at": clock.iso(at),
            },
        )

    def expire_approval(self, approval_id: str) -> None:
        self.table.update_item(
            Key={"pk": f"APPROVAL#{approval_id}", "sk": "APPROVAL"},
            UpdateExpression="SET #s = :expired",
            ConditionExpression="#s = :pending",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":expired": "expired", ":pending": "pending"},
        )

    # ---- the operation's Slack message ----------------------------------------------------------
    def slack_message(self, cluster_key: str, op_id: str) -> dict[str, Any] | None:
        """Where the operation's message is (`channel`, `ts`) and the state it last showed."""
        key = {"pk": cluster_pk(cluster_key), "sk": f"SLACK#{op_id}"}
        return self.table.get_item(Key=key).get("Item")

    def save_slack_message(
        self, cluster_key: str, op_id: str, channel: str, ts: str, *, state: str = ""
    ) -> None:
        now = clock.now()
        self.table.put_item(
            Item={
                "pk": cluster_pk(cluster_key),
                "sk": f"SLACK#{op_id}",
                "channel": channel,
                "ts": ts,
                "state": state,
                "updatedAt": clock.iso(now),
                "expiresAt": clock.epoch(now + RECORD_TTL),
            }
        )

    # ---- announcements --------------------------------------------------------------------------
    def get_announced(self, cluster_key: str, target_key: str) -> dict[str, Any] | None:
        key = {"pk": cluster_pk(cluster_key), "sk": f"ANNOUNCED#{target_key}"}
        return self.table.get_item(Key=key).get("Item")

    def record_announced(self, cluster_key: str, target_key: str, event_id: str) -> None:
        now = clock.now()
        self.table.put_item(
            Item={
                "pk": cluster_pk(cluster_key),
                "sk": f"ANNOUNCED#{target_key}",
                "announcedAt": clock.iso(now),
                "eventId": event_id,
                "expiresAt": clock.epoch(now + RECORD_TTL),
            }
        )

    def announced_under(self, cluster_key: str, prefix: str) -> list[dict[str, Any]]:
        """Every announcement of the cluster whose target key starts with `prefix` (one query)."""
        return self._query(cluster_pk(cluster_key), f"ANNOUNCED#{prefix}")
