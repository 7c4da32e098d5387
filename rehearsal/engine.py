"""The local engine: the real ASL files and the real handlers against emulated AWS and EKS.

moto provides DynamoDB, SNS, Secrets Manager, EventBridge, IAM, Lambda (as a registry) and Step
Functions (which executes the ASL). The engine adds what moto lacks: in-process Lambda invocation,
the simulated clock, the EKS simulator, one fake Kubernetes API per cluster, a rule router that
delivers `PutEvents` to the state machines whose rule patterns match, a local Slack (webhook and
the Web API a bot token posts and updates messages through), and a simulated approver that decides
through the same `decide()` the CLI uses.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import threading
import traceback
import uuid
import zipfile
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
STATEMACHINES = REPO / "statemachines"

# The product's handlers run with the Lambda role's keys: the fake Kubernetes APIs refuse their writes.
LAMBDA_ACCESS_KEY = "AKIAAUTOPATCHLAMBDA0"
LAMBDA_SECRET_KEY = "autopatch-lambda-role-secret"
ENGINE_ACCESS_KEY = "AKIAREHEARSALENGINE0"
ENGINE_SECRET_KEY = "rehearsal-engine-secret"

FUNCTION_PREFIX = "autopatch-"
BUS_NAME = "autopatch"
# Where emailed approval links point in a rehearsal; `Engine.call_approval_api` serves its paths.
APPROVAL_API_URL = "https://approvals.rehearsal.invalid"
SLACK_CHANNEL = "C0REHEARSAL"


def load_catalogue() -> tuple[dict[str, Any], dict[str, Any]]:
    functions = json.loads((STATEMACHINES / "functions.json").read_text())["functions"]
    rules = json.loads((STATEMACHINES / "rules.json").read_text())
    return functions, rules


@dataclass
class LambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "rehearsal"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Invocation:
    function: str
    at: str
    event: dict[str, Any]
    result: Any = None
    error: str | None = None
    error_message: str | None = None


class Engine:
    """Emulated AWS for one rehearsal. Use as a context manager; `run_until_idle()` drives it."""

    def __init__(
        self,
        *,
        clock: Any,
        simulator: Any,
        policy_path: Path,
        account_id: str,
        region: str,
        log: io.TextIOBase | None = None,
        on_invocation: Callable[[Invocation], None] | None = None,
        on_slack_message: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.clock = clock
        self.simulator = simulator
        self.policy_path = policy_path
        self.account_id = account_id
        self.region = region
        self.functions, self.rules = load_catalogue()
        self.invocations: list[Invocation] = []
        self.unexpected_errors: list[str] = []
        self.bus_events: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()
        self.log = log or io.StringIO()
        self._on_invocation = on_invocation
        self._on_slack_message = on_slack_message
        self._invoke_lock = threading.RLock()
        self._handlers: dict[str, Callable[..., Any]] = {}
        self._stack = contextlib.ExitStack()
        self.state_machine_arns: dict[str, str] = {}
        self.env: dict[str, str] = {}
        # The approval API: its queue (delivered to the decider in-process, one message at a
        # time), the run's own signing secret and link key, and the approval emails sent.
        self.approval_queue_url = ""
        self.approvals_topic_arn = ""
        self.slack_signing_secret = ""
        self.link_key = ""
        self.approval_emails: list[dict[str, Any]] = []
        self.undelivered_approval_messages: list[dict[str, Any]] = []
        self._approval_inbox: deque[dict[str, Any]] = deque()
        self._approval_draining = False
        self._approval_lock = threading.Lock()

    # ---- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Engine:
        from moto import mock_aws

        from rehearsal.eks_bridge import eks_routed_to
        from rehearsal.moto_patches import patched_moto
        from rehearsal.slack_sink import SlackSink

        stack = self._stack
        stack.enter_context(
            mock.patch.dict(
                os.environ,
                {
                    "AWS_ACCESS_KEY_ID": ENGINE_ACCESS_KEY,
                    "AWS_SECRET_ACCESS_KEY": ENGINE_SECRET_KEY,
                    "AWS_DEFAULT_REGION": self.region,
                    "AWS_REGION": self.region,
                    "MOTO_ACCOUNT_ID": self.account_id,
                    "POWERTOOLS_TRACE_DISABLED": "true",
                    "POWERTOOLS_SERVICE_NAME": "autopatch",
                    "POWERTOOLS_METRICS_NAMESPACE": "Autopatch",
                    "POWERTOOLS_DEV": "false",
                },
            )
        )
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            os.environ.pop(name, None)  # restored by the patch.dict above
        # moto logs every Fail state and caught error as an ERROR with its internals; the report and
        # the console say what happened in the product's words.
        moto_logger = logging.getLogger("moto")
        quiet = logging.NullHandler()
        stack.callback(setattr, moto_logger, "propagate", moto_logger.propagate)
        stack.callback(moto_logger.removeHandler, quiet)
        stack.callback(moto_logger.setLevel, moto_logger.level)
        moto_logger.setLevel(logging.CRITICAL)
        moto_logger.addHandler(quiet)  # nothing falls through to logging's last-resort stderr
        moto_logger.propagate = False
        stack.enter_context(
            mock_aws(
                config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
            )
        )
        stack.enter_context(patched_moto(self.clock, self._invoke))
        stack.enter_context(eks_routed_to(self.simulator))
        stack.enter_context(self._routed_put_events())
        self._reset_product_caches()
        # A bot token of its own for each rehearsal: only the Secrets Manager secret carries it.
        self._slack_token = f"xoxb-rehearsal-{uuid.uuid4().hex}"
        self.slack = SlackSink(
            on_message=self._slack_message,
            token=self._slack_token,
            channels={SLACK_CHANNEL},
            now=lambda: self.clock.now().timestamp(),
        ).start()
        stack.callback(self.slack.stop)
        self._create_resources()
        # Every function has the same configuration, and runs with the Lambda role's keys (the
        # fake Kubernetes APIs refuse that identity's writes). Set once for the whole rehearsal:
        # changing the process environment around each invocation races with other threads.
        os.environ.update(self.env)
        os.environ["AWS_ACCESS_KEY_ID"] = LAMBDA_ACCESS_KEY
        os.environ["AWS_SECRET_ACCESS_KEY"] = LAMBDA_SECRET_KEY
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stack.close()
        self._reset_product_caches()

    def _reset_product_caches(self) -> None:
        from autopatch import clock as product_clock
        from autopatch.clients import aws, eks, notifier
        from autopatch.policy import load_policy_cached
        from autopatch.services import services
        from autopatch.settings import settings

        for cached in (services, settings, eks.eks_client, notifier._client, aws._client, load_policy_cached):
            cached.cache_clear()
        from autopatch.clients import approvals
        from autopatch.handlers import approval_decider, approval_receiver

        for cached in (approvals._client, approval_receiver._clients, approval_decider._sfn):
            cached.cache_clear()
        with contextlib.suppress(Exception):
            from aws_lambda_powertools.utilities import parameters

            parameters.clear_caches()
        product_clock.set_clock(self.clock.now)

    # ---- AWS resources -------------------------------------------------------------------------
    def _create_resources(self) -> None:
        import boto3

        table = create_ledger_table(boto3.client("dynamodb"), f"autopatch-ledger-{uuid.uuid4().hex[:6]}")
        topic = boto3.client("sns").create_topic(Name="autopatch-notifications")["TopicArn"]
        secrets = boto3.client("secretsmanager")
        secret = secrets.create_secret(Name="autopatch/slack-webhook-url", SecretString=self.slack.url)["ARN"]
        bot_secret = secrets.create_secret(
            Name="autopatch/slack-bot",
            SecretString=json.dumps({"token": self._slack_token, "channel": SLACK_CHANNEL}),
        )["ARN"]
        boto3.client("events").create_event_bus(Name=BUS_NAME)
        role = boto3.client("iam").create_role(
            RoleName="autopatch-rehearsal",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        self.env = {
            "AUTOPATCH_LEDGER_TABLE": table,
            "AUTOPATCH_EVENT_BUS": BUS_NAME,
            "AUTOPATCH_TOPIC_ARN": topic,
            "AUTOPATCH_SLACK_WEBHOOK_SECRET_ARN": secret,
            "AUTOPATCH_SLACK_BOT_SECRET_ARN": bot_secret,
            "AUTOPATCH_SLACK_API_URL": self.slack.api_url,
            "AUTOPATCH_POLICY_PATH": str(self.policy_path),
            "AUTOPATCH_CONSOLE_URL": "https://console.aws.amazon.com/states/home",
        }
        self.env.update(self._create_approval_resources())
        self.ledger_table = table
        self.topic_arn = topic
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("README.txt", "The rehearsal calls the real handlers in-process.")
        lam = boto3.client("lambda")
        arns = {}
        for key, spec in self.functions.items():
            arns[key] = lam.create_function(
                FunctionName=FUNCTION_PREFIX + key,
                Runtime="python3.12",
                Role=role,
                Handler=spec["handler"],
                Code={"ZipFile": code.getvalue()},
                Environment={"Variables": self.env},
            )["FunctionArn"]
        sfn = boto3.client("stepfunctions")
        for name, spec in self.rules["stateMachines"].items():
            definition = (STATEMACHINES / spec["definition"]).read_text()
            for key, arn in arns.items():
                definition = definition.replace(f"${{{key}FunctionArn}}", arn)
            self.state_machine_arns[name] = sfn.create_state_machine(
                name=f"autopatch-{name}", definition=definition, roleArn=role
            )["stateMachineArn"]

    # ---- Lambda, in-process ----------------------------------------------------------------------
    def _handler(self, key: str) -> Callable[..., Any]:
        if key not in self._handlers:
            module_name, attribute = self.functions[key]["handler"].rsplit(".", 1)
            self._handlers[key] = getattr(importlib.import_module(module_name), attribute)
            logging.getLogger("autopatch").handlers[:] = [logging.StreamHandler(self.log)]
        return self._handlers[key]

    def invoke_function(self, key: str, event: dict[str, Any]) -> Any:
        """Invoke a function the way the scheduler would (through moto's Lambda API)."""
        import boto3

        response = boto3.client("lambda").invoke(
            FunctionName=FUNCTION_PREFIX + key, Payload=json.dumps(event)
        )
        return json.loads(response["Payload"].read() or b"null")

    def _invoke(self, function_name: str, payload: bytes) -> tuple[bytes, str | None]:
        key = function_name.removeprefix(FUNCTION_PREFIX)
        event = json.loads(payload or b"{}")
        invocation = Invocation(function=key, at=self.clock.now().isoformat(), event=event)
        with self._invoke_lock:
            # Updates in the simulator move on lazily, when EKS is asked; a handler may read
            # Kubernetes first, so let EKS catch up to now before it runs.
            self.simulator.finish_due_updates()
            handler = self._handler(key)
            stdout = io.StringIO()
            try:
                with contextlib.redirect_stdout(stdout):
                    invocation.result = handler(event, LambdaContext(FUNCTION_PREFIX + key))
                body, error = json.dumps(invocation.result, default=str).encode(), None
            except Exception as exc:
                from autopatch.errors import AutopatchError

                invocation.error, invocation.error_message = type(exc).__name__, str(exc)
                trace = traceback.format_exc()
                if not isinstance(exc, AutopatchError):
                    self.unexpected_errors.append(f"{key}: {trace}")
                self.log.write(trace)
                body = json.dumps(
                    {
                        "errorType": type(exc).__name__,
                        "errorMessage": str(exc),
                        "stackTrace": trace.splitlines(),
                    }
                ).encode()
                error = "Unhandled"
            self.log.write(stdout.getvalue())
        self.invocations.append(invocation)
        if self._on_invocation is not None:
            self._on_invocation(invocation)
        return body, error

    # ---- EventBridge rules -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _routed_put_events(self) -> Iterator[None]:
        """After moto stores a PutEvents batch, start the state machines whose patterns match."""
        from botocore.client import BaseClient

        inner = BaseClient._make_api_call
        engine = self

        def make_api_call(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            engine.calls[f"{service}:{operation_name}"] += 1
            response = inner(client, operation_name, api_params)
            if service == "events" and operation_name == "PutEvents":
                engine._route(api_params.get("Entries", []), response.get("Entries", []))
            if service == "sqs" and operation_name == "SendMessage":
                engine._approval_message_sent(api_params, response)
            if service == "sns" and operation_name == "Publish":
                engine._approval_email_sent(api_params)
            return response

        with mock.patch.object(BaseClient, "_make_api_call", make_api_call):
            yield

    def _route(self, entries: list[dict[str, Any]], results: list[dict[str, Any]]) -> None:
        import boto3
        from moto.events.models import EventPattern

        sfn = boto3.client("stepfunctions")
        for entry, result in zip(entries, results, strict=False):
            if "EventId" not in result or entry.get("EventBusName", "default") not in (
                BUS_NAME,
                self._bus_arn(),
            ):
                continue
            try:
                detail = json.loads(entry.get("Detail") or "{}")
            except json.JSONDecodeError:
                detail = entry.get("Detail")
            event = {
                "version": "0",
                "id": result["EventId"],
                "detail-type": entry.get("DetailType"),
                "source": entry.get("Source"),
                "account": self.account_id,
                "time": self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "region": self.region,
                "resources": entry.get("Resources", []),
                "detail": detail,
            }
            self.bus_events.append(event)
            for rule in self.rules["rules"]:
                if EventPattern.load(json.dumps(rule["eventPattern"])).matches_event(event):  # type: ignore[arg-type]
                    sfn.start_execution(
                        stateMachineArn=self.state_machine_arns[rule["stateMachine"]],
                        name=execution_name(event),
                        input=json.dumps(event),
                    )

    def _bus_arn(self) -> str:
        return f"arn:aws:events:{self.region}:{self.account_id}:event-bus/{BUS_NAME}"

    def put_event(self, source: str, detail_type: str, detail: Any) -> None:
        import boto3

        boto3.client("events").put_events(
            Entries=[
                {
                    "Source": source,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail) if not isinstance(detail, str) else detail,
                    "EventBusName": BUS_NAME,
                }
            ]
        )

    # ---- Slack -----------------------------------------------------------------------------------
    def _slack_message(self, payload: dict[str, Any]) -> None:
        if self._on_slack_message is not None:
            self._on_slack_message(payload)

    # ---- the approval API ------------------------------------------------------------------------
    def _create_approval_resources(self) -> dict[str, str]:
        """The queue, the two secrets (fresh for each run) and the approvals topic; their settings."""
        import boto3

        self.slack_signing_secret = os.urandom(16).hex()
        self.link_key = os.urandom(32).hex()
        secretsmanager = boto3.client("secretsmanager")
        signing = secretsmanager.create_secret(
            Name="autopatch/slack-signing-secret", SecretString=self.slack_signing_secret
        )["ARN"]
        link_key = secretsmanager.create_secret(
            Name="autopatch/approval-link-key", SecretString=self.link_key
        )["ARN"]
        self.approval_queue_url = boto3.client("sqs").create_queue(QueueName="autopatch-approval-decisions")[
            "QueueUrl"
        ]
        self.approvals_topic_arn = boto3.client("sns").create_topic(Name="autopatch-approvals")["TopicArn"]
        return {
            "AUTOPATCH_APPROVAL_QUEUE_URL": self.approval_queue_url,
            "AUTOPATCH_SLACK_SIGNING_SECRET_ARN": signing,
            "AUTOPATCH_LINK_KEY_SECRET_ARN": link_key,
            "AUTOPATCH_APPROVAL_TOPIC_ARN": self.approvals_topic_arn,
            "AUTOPATCH_APPROVAL_API_URL": APPROVAL_API_URL,
        }

    def call_approval_api(
        self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], str]:
        """One request to the approval API (API Gateway HTTP API, payload v2), answered in-process
        by the ApprovalReceiver handler. `path` may carry a query string."""
        result = self.invoke_function("ApprovalReceiver", http_api_event(method, path, body, headers))
        if not isinstance(result, dict) or "statusCode" not in result:
            raise RuntimeError(f"the approval receiver failed: {result}")
        return int(result["statusCode"]), dict(result.get("headers") or {}), str(result.get("body") or "")

    def slack_click(
        self,
        approval_id: str,
        *,
        user_id: str,
        action: str = "approve",
        reason: str | None = None,
        response_url: str | None = None,
        signed_at: float | None = None,
        signing_secret: str | None = None,
    ) -> tuple[int, dict[str, str], str]:
        """What Slack sends when `user_id` presses Approve or Reject on an approval request: the
        interaction payload, signed with the run's signing secret (or another, to test refusals)
        at the simulated now (or `signed_at`), through `call_approval_api`."""
        payload = slack_click_payload(
            approval_id, user_id=user_id, action=action, reason=reason, response_url=response_url
        )
        body, headers = signed_slack_request(
            signing_secret if signing_secret is not None else self.slack_signing_secret,
            payload,
            timestamp=int(signed_at if signed_at is not None else self.clock.now().timestamp()),
        )
        return self.call_approval_api("POST", "/slack/interactions", body, headers)

    def _approval_message_sent(self, params: dict[str, Any], response: dict[str, Any]) -> None:
        """As the SQS event source would: the decider gets each message, on the simulated clock,
        one at a time, in the order they were sent."""
        if not self.approval_queue_url or params.get("QueueUrl") != self.approval_queue_url:
            return
        with self._approval_lock:
            self._approval_inbox.append(
                {"body": params.get("MessageBody", ""), "messageId": response.get("MessageId", "")}
            )
            if self._approval_draining:
                return
            self._approval_draining = True
        self.clock.call_later(0, self._drain_approval_inbox)

    def _drain_approval_inbox(self) -> None:
        while True:
            with self._approval_lock:
                if not self._approval_inbox:
                    self._approval_draining = False
                    return
                message = self._approval_inbox.popleft()
            record = {
                "messageId": message["messageId"],
                "receiptHandle": f"rehearsal-{message['messageId']}",
                "body": message["body"],
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{self.region}:{self.account_id}:autopatch-approval-decisions",
                "awsRegion": self.region,
            }
            result = self.invoke_function("ApprovalDecider", {"Records": [record]})
            if not isinstance(result, dict) or result.get("batchItemFailures") or "errorType" in result:
                # In AWS: retried, then the dead-letter queue. Kept here for the report and tests.
                self.undelivered_approval_messages.append({**message, "result": result})

    def _approval_email_sent(self, params: dict[str, Any]) -> None:
        if not self.approvals_topic_arn or params.get("TopicArn") != self.approvals_topic_arn:
            return
        approver = (params.get("MessageAttributes") or {}).get("approver", {}).get("StringValue")
        self.approval_emails.append(
            {"approver": approver, "subject": params.get("Subject"), "text": params.get("Message", "")}
        )

    # ---- reading results -------------------------------------------------------------------------
    def executions(self) -> list[dict[str, Any]]:
        import boto3

        sfn = boto3.client("stepfunctions")
        found = []
        for arn in self.state_machine_arns.values():
            for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
                for execution in page["executions"]:
                    found.append(sfn.describe_execution(executionArn=execution["executionArn"]))
        return found

    def ledger_items(self) -> list[dict[str, Any]]:
        import boto3

        table = boto3.resource("dynamodb").Table(self.ledger_table)
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = table.scan(**kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def create_ledger_table(dynamodb: Any, name: str) -> str:
    """The ledger's key schema, as the CDK app declares it (pk/sk strings, on demand)."""
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def execution_name(event: dict[str, Any]) -> str:
    """Readable and unique: `<cluster>-<component>-<event id prefix>`."""
    detail: dict[str, Any] = event["detail"] if isinstance(event.get("detail"), dict) else {}
    cluster = str(detail.get("clusterName", "event"))
    component: dict[str, Any] = detail["component"] if isinstance(detail.get("component"), dict) else {}
    name = f"{cluster}-{component.get('name', 'x')}-{str(event['id'])[:8]}"
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in name)
    return cleaned[:80]


# ---- approval API requests, as API Gateway and Slack make them -------------------------------------
def http_api_event(
    method: str, path: str, body: str = "", headers: dict[str, str] | None = None, *, base64_body: bool = True
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event for `method path?query`. Form bodies
    arrive base64-encoded, as API Gateway passes them."""
    import base64
    from urllib.parse import parse_qsl

    raw_path, _, query = path.partition("?")
    encode = base64_body and bool(body)
    return {
        "version": "2.0",
        "routeKey": f"{method.upper()} {raw_path}",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "queryStringParameters": dict(parse_qsl(query, keep_blank_values=True)) or None,
        "requestContext": {
            "http": {
                "method": method.upper(),
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": f"{method.upper()} {raw_path}",
            "stage": "$default",
        },
        "body": base64.b64encode(body.encode()).decode() if encode else body,
        "isBase64Encoded": encode,
    }


def slack_click_payload(
    approval_id: str,
    *,
    user_id: str,
    action: str = "approve",
    reason: str | None = None,
    response_url: str | None = None,
) -> dict[str, Any]:
    """The `block_actions` payload of a click on an approval request's Approve or Reject button."""
    return {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_id.lower(), "team_id": "T0REHEARSAL"},
        "api_app_id": "A0AUTOPATCH",
        "trigger_id": uuid.uuid4().hex,
        "response_url": response_url or "",
        "actions": [
            {
                "type": "button",
                "block_id": f"approval:{approval_id}",
                "action_id": action,
                "value": approval_id,
                "action_ts": "0",
            }
        ],
        "state": {
            "values": {f"reason:{approval_id}": {"reason": {"type": "plain_text_input", "value": reason}}}
        },
    }


def signed_slack_request(
    secret: str, payload: dict[str, Any], *, timestamp: int
) -> tuple[str, dict[str, str]]:
    """The form body Slack posts (`payload=<json>`) and its signature headers (v0, HMAC-SHA256)."""
    from urllib.parse import urlencode

    from slack_sdk.signature import SignatureVerifier

    body = urlencode({"payload": json.dumps(payload)})
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature or "",
    }
