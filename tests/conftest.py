"""Shared test pieces: a Lambda context, a settable clock, moto with a ledger table, recording fakes."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from autopatch import clock
from autopatch.clients.ledger import Ledger
from autopatch.models import Notification, Operation
from botocore.exceptions import ClientError
from moto import mock_aws

from rehearsal.engine import create_ledger_table

EVENTS = Path(__file__).resolve().parent / "events"
REGION = "eu-west-1"
ACCOUNT = "111122223333"
LEDGER_TABLE = "autopatch-ledger-test"


@dataclass
class LambdaContext:
    function_name: str = "autopatch-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:autopatch-test"
    aws_request_id: str = "3f1c5c8e-0c55-4a38-9d6c-2a0f5a7f9b11"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


class FakeClock:
    """The product's "now", moved by the test."""

    def __init__(self, start: datetime) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture
def fake_clock() -> Iterator[FakeClock]:
    fake = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    clock.set_clock(fake.now)
    yield fake
    clock.set_clock(lambda: datetime.now(UTC))


@pytest.fixture(scope="session")
def fake_aws_session() -> boto3.session.Session:
    """One session for every test: building the DynamoDB resource model again each time is slow."""
    return boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, fake_aws_session: boto3.session.Session) -> Iterator[Ledger]:
    """moto with fake credentials, and an empty ledger table."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        dynamodb = fake_aws_session.resource("dynamodb")
        create_ledger_table(dynamodb.meta.client, LEDGER_TABLE)
        yield Ledger(LEDGER_TABLE, resource=dynamodb)


class RecordingSfn:
    """Step Functions' task-token calls, recorded."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("success", kwargs))
        return {}

    def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("failure", kwargs))
        return {}


class TimedOutSfn(RecordingSfn):
    """The workflow stopped waiting: every task-token call fails as Step Functions fails it."""

    def _timed_out(self, operation: str) -> ClientError:
        error = {
            "Error": {"Code": "TaskTimedOut", "Message": "Task Timed Out: 'Provided task does not exist'"}
        }
        return ClientError(error, operation)

    def send_task_success(self, **kwargs: Any) -> dict[str, Any]:
        super().send_task_success(**kwargs)
        raise self._timed_out("SendTaskSuccess")

    def send_task_failure(self, **kwargs: Any) -> dict[str, Any]:
        super().send_task_failure(**kwargs)
        raise self._timed_out("SendTaskFailure")


class RecordingNotifier:
    """Slack, SNS and EventBridge, kept in memory."""

    def __init__(self, now: Callable[[], Any]) -> None:
        self.now = now
        self.sent: list[Any] = []

    def _note(self, channel: str, status: str, summary: str) -> Notification:
        return Notification(channel=channel, at=self.now(), status=status, summary=summary, delivered=True)

    def slack(self, payload: dict[str, Any], *, status: str, summary: str) -> Notification:
        self.sent.append(payload)
        return self._note("slack", status, summary)

    def post_or_update(
        self, op: Any, payload: dict[str, Any], *, status: str, summary: str, ledger: Any, **_: Any
    ) -> Notification:
        """As the real notifier does without a bot token: a new message per state."""
        return self.slack(payload, status=status, summary=summary)

    def has_bot_token(self) -> bool:
        return False

    def respond(self, response_url: str, payload: dict[str, Any], **_: Any) -> Notification:
        self.sent.append({"response_url": response_url, **payload})
        return self._note("slack", "response", response_url)

    def sns(self, subject: str, text: str, *, status: str, attributes: dict[str, str]) -> Notification:
        self.sent.append({"subject": subject, "text": text, "attributes": attributes})
        return self._note("sns", status, subject)

    def event(self, detail_type: str, detail: dict[str, Any], *, status: str) -> Notification:
        self.sent.append({"detail-type": detail_type, "detail": detail})
        return self._note("eventbridge", status, detail_type)


@pytest.fixture
def load_event() -> Callable[[str], Any]:
    """A sample event from tests/events/, by file name without `.json`."""
    return lambda name: json.loads((EVENTS / f"{name}.json").read_text(encoding="utf-8"))


@pytest.fixture
def make_operation() -> Callable[..., Operation]:
    """An add-on operation on `prod` (coredns v1.11.4-eksbuild.22 → .24); keywords override fields."""

    def build(**overrides: Any) -> Operation:
        values: dict[str, Any] = {
            "id": "exec-1",
            "executionArn": f"arn:aws:states:{REGION}:{ACCOUNT}:execution:autopatch-addon-update:exec-1",
            "eventId": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "cluster": {"name": "prod", "accountId": ACCOUNT, "region": REGION},
            "component": {"kind": "addon", "name": "coredns"},
            "fromVersion": "v1.11.4-eksbuild.22",
            "toVersion": "v1.11.4-eksbuild.24",
            "detectedAt": "2026-03-02T08:55:00Z",
            "startedAt": "2026-03-02T09:00:00Z",
        }
        values.update(overrides)
        return Operation.model_validate(values)

    return build
