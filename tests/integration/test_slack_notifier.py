"""Slack through the real notifier, against the local Slack stand-in: one message per operation,
updated in place with a bot token; a new webhook message per state without one; replies through a
`response_url`; refusals recorded, never raised, and the token never written anywhere."""

from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from autopatch.clients.ledger import Ledger
from autopatch.clients.notifier import Notifier
from autopatch.logic.approval import decision_outcome, request_approval
from autopatch.logic.notify import notify_outcome, operation_of_approval, tell_decision, tell_progress
from autopatch.models import Notification, Operation
from autopatch.policy import parse_policy

from rehearsal.slack_sink import SlackSink, approval_id_of
from tests.conftest import ACCOUNT, REGION, FakeClock

TOKEN = "xoxb-1111-2222-notifier-test-token"
CHANNEL = "C0123ABC"
CONSOLE = "https://console.example"
POLICY = parse_policy(
    {
        "defaults": {"approval": "none"},
        "clusters": [
            {
                "name": "prod",
                "accountId": ACCOUNT,
                "region": REGION,
                "approval": "required",
                "approvers": [{"name": "alice"}, {"name": "bob"}],
            }
        ],
    }
)


@pytest.fixture
def sink(fake_clock: FakeClock) -> Iterator[SlackSink]:
    server = SlackSink(token=TOKEN, channels={CHANNEL}, now=lambda: fake_clock.now().timestamp()).start()
    yield server
    server.stop()


@pytest.fixture
def secrets(aws: Ledger) -> Iterator[Callable[..., str]]:
    """Create a secret; Powertools' cache is emptied around each test."""
    from aws_lambda_powertools.utilities import parameters

    parameters.clear_caches()
    client = boto3.client("secretsmanager", region_name=REGION)
    yield lambda name, value: client.create_secret(Name=name, SecretString=value)["ARN"]
    parameters.clear_caches()


@pytest.fixture
def make_notifier(aws: Ledger, sink: SlackSink, secrets: Callable[..., str]) -> Callable[..., Notifier]:
    sns = boto3.client("sns", region_name=REGION)
    topic = sns.create_topic(Name="autopatch-notifications")["TopicArn"]
    boto3.client("events", region_name=REGION).create_event_bus(Name="autopatch")
    webhook = secrets("slack-webhook", sink.url)

    names = iter(range(1, 100))

    def build(
        *,
        token: str | None = TOKEN,
        channel: str = CHANNEL,
        api_url: str | None = None,
        webhook_url: bool = True,
    ) -> Notifier:
        bot = (
            secrets(f"slack-bot-{next(names)}", json.dumps({"token": token, "channel": channel}))
            if token
            else ""
        )
        hook = webhook if webhook_url else f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:absent-AbCdEf"
        return Notifier(topic, "autopatch", hook, bot, api_url or sink.api_url)

    return build


def payload(text: str) -> dict[str, Any]:
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}


def approval_op(make_operation: Callable[..., Operation]) -> Operation:
    return make_operation(approval={"required": True})


# ---- with a bot token: one message, updated in place ----------------------------------------------


def test_the_first_state_is_posted_and_the_next_updates_that_message_in_place(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    notifier, op = make_notifier(), make_operation()

    first = notifier.post_or_update(op, payload("applying"), status="applying", summary="s", ledger=aws)
    second = notifier.post_or_update(op, payload("patched"), status="succeeded", summary="s", ledger=aws)

    assert first.delivered and second.delivered
    (posted, updated) = sink.messages
    assert (posted["method"], posted["channel"], posted["text"]) == ("chat.postMessage", CHANNEL, "applying")
    assert (updated["method"], updated["ts"], updated["text"]) == ("chat.update", posted["ts"], "patched")
    saved = aws.slack_message(op.cluster.key, op.id) or {}
    assert {k: saved.get(k) for k in ("sk", "channel", "ts", "state")} == {
        "sk": f"SLACK#{op.id}",
        "channel": CHANNEL,
        "ts": posted["ts"],
        "state": "succeeded",
    }
    assert second.detail == f"updated in place (ts {posted['ts']})"


def test_each_operation_has_a_message_of_its_own(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    notifier = make_notifier()

    for op in (make_operation(id="exec-1"), make_operation(id="exec-2"), make_operation(id="exec-1")):
        notifier.post_or_update(op, payload(op.id), status="applying", summary="s", ledger=aws)

    assert [m["method"] for m in sink.messages] == ["chat.postMessage", "chat.postMessage", "chat.update"]
    assert sink.messages[2]["ts"] == sink.messages[0]["ts"] != sink.messages[1]["ts"]


def test_a_message_deleted_in_slack_is_posted_again(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    op = make_operation()
    aws.save_slack_message(op.cluster.key, op.id, CHANNEL, "1700000000.000001", state="applying")

    note = make_notifier().post_or_update(op, payload("patched"), status="succeeded", summary="s", ledger=aws)

    assert note.delivered and "message_not_found" in (note.detail or "")
    (posted,) = sink.messages
    assert posted["method"] == "chat.postMessage"
    assert aws.slack_message(op.cluster.key, op.id)["ts"] == posted["ts"]  # type: ignore[index]


def test_a_step_of_an_upgrade_posts_nothing(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    child = make_operation(id="exec-1-kube-proxy", parent="exec-1")

    note = make_notifier().post_or_update(child, payload("x"), status="applying", summary="s", ledger=aws)

    assert not note.delivered and "upgrade" in (note.detail or "")
    assert sink.messages == []


def test_the_whole_run_reads_as_one_message_updated_in_place(
    aws: Ledger,
    sink: SlackSink,
    fake_clock: FakeClock,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    notifier, op = make_notifier(), approval_op(make_operation)
    aws.claim_target(op)

    request_approval(op, "task-token", ledger=aws, policy=POLICY, notifier=notifier, console_url=CONSOLE)
    approval_id = op.approval.id
    assert approval_id is not None and approval_id_of(sink.messages[0]) == approval_id
    item = aws.get_approval(approval_id) or {}
    aws.save_operation(op)
    outcome = decision_outcome(item, approval_id, verdict="approved", by="alice", at="2026-03-02T09:10:00Z")
    told = tell_decision(
        operation_of_approval(aws, item),  # type: ignore[arg-type]
        outcome,
        ledger=aws,
        notifier=notifier,
        console_url=CONSOLE,
    )
    op.absorb_decision(outcome)
    op.update.id = "update-1"
    tell_progress(op, "applying", ledger=aws, notifier=notifier, console_url=CONSOLE)
    tell_progress(op, "verifying", ledger=aws, notifier=notifier, console_url=CONSOLE)
    tell_progress(op, "verifying", ledger=aws, notifier=notifier, console_url=CONSOLE)  # a retried verify
    op.end("succeeded", "updated", "coredns runs v1.11.4-eksbuild.24.")
    notify_outcome(op, ledger=aws, notifier=notifier, console_url=CONSOLE)

    assert [n.delivered for n in told] == [True]
    ts = sink.messages[0]["ts"]
    history = sink.history(ts)
    assert history == sink.messages
    assert [m["method"] for m in history] == ["chat.postMessage"] + ["chat.update"] * 4
    assert [
        m["text"].removeprefix("prod: coredns v1.11.4-eksbuild.22 → v1.11.4-eksbuild.24 ") for m in history
    ] == [
        "Approval needed: prod coredns v1.11.4-eksbuild.22 → v1.11.4-eksbuild.24",
        "approved by alice",
        "applying",
        "verifying",
        "patched",
    ]
    assert [approval_id_of(m) for m in history] == [approval_id, None, None, None, None]
    assert "Approved by alice." in json.dumps(history[-1]["blocks"])
    slack = [n for n in op.notifications if n.channel == "slack"]
    assert all(n.delivered for n in slack)


def test_a_decision_made_where_slack_was_not_told_is_shown_before_the_run_goes_on(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    notifier, op = make_notifier(), approval_op(make_operation)
    request_approval(op, "task-token", ledger=aws, policy=POLICY, notifier=notifier, console_url=CONSOLE)
    # decided from a shell: nothing told Slack
    op.absorb_decision({"approvalId": op.approval.id, "decision": "approved", "by": "bob"})

    tell_progress(op, "applying", ledger=aws, notifier=notifier, console_url=CONSOLE)

    assert [m["method"] for m in sink.messages] == ["chat.postMessage", "chat.update", "chat.update"]
    assert sink.messages[1]["text"].endswith("approved by bob")
    assert sink.messages[2]["text"].endswith("applying")


# ---- without a bot token: a new webhook message per state -----------------------------------------


def test_without_a_bot_token_every_state_is_a_new_webhook_message(
    aws: Ledger,
    sink: SlackSink,
    fake_clock: FakeClock,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    notifier, op = make_notifier(token=None), approval_op(make_operation)

    request_approval(op, "task-token", ledger=aws, policy=POLICY, notifier=notifier, console_url=CONSOLE)
    op.absorb_decision({"approvalId": op.approval.id, "decision": "approved", "by": "alice"})
    op.update.id = "update-1"
    tell_progress(op, "applying", ledger=aws, notifier=notifier, console_url=CONSOLE)  # never per step
    op.end("succeeded", "updated")
    notify_outcome(op, ledger=aws, notifier=notifier, console_url=CONSOLE)

    assert [m["method"] for m in sink.messages] == ["webhook", "webhook"]
    assert approval_id_of(sink.messages[0]) == op.approval.id
    assert sink.messages[1]["text"].endswith("patched")
    assert len({m["ts"] for m in sink.messages}) == 2
    assert aws.slack_message(op.cluster.key, op.id) is None
    assert not notifier.has_bot_token()


def test_a_decision_replaces_the_clicked_message_through_its_response_url(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    notifier, op = make_notifier(token=None), approval_op(make_operation)
    request_approval(op, "task-token", ledger=aws, policy=POLICY, notifier=notifier, console_url=CONSOLE)
    clicked = sink.messages[0]["ts"]
    outcome = {
        "approvalId": op.approval.id,
        "decision": "rejected",
        "by": "bob",
        "reason": "not during the sale",
    }

    (note,) = tell_decision(
        op,
        outcome,
        ledger=aws,
        notifier=notifier,
        console_url=CONSOLE,
        response_url=sink.response_url(clicked),
    )

    assert note.delivered and note.status == "rejected"
    reply = sink.messages[-1]
    assert (reply["method"], reply["ts"], reply["replace_original"]) == ("response_url", clicked, True)
    assert reply["text"].endswith("rejected by bob")
    assert "Rejected by bob: not during the sale." in json.dumps(reply["blocks"])
    assert approval_id_of(reply) is None  # the buttons are gone
    assert op.approval.decision is None  # the caller's record is not changed


def test_without_a_response_url_or_bot_token_a_decision_is_a_new_webhook_message(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    op = approval_op(make_operation)

    (note,) = tell_decision(
        op,
        {"decision": "approved", "by": "alice"},
        ledger=aws,
        notifier=make_notifier(token=None),
        console_url=CONSOLE,
    )

    assert note.delivered
    (message,) = sink.messages
    assert message["method"] == "webhook" and message["text"].endswith("approved by alice")


def test_a_response_url_that_is_not_slack_is_not_called(
    sink: SlackSink, make_notifier: Callable[..., Notifier]
) -> None:
    note = make_notifier().respond("https://attacker.example/hook", {"text": "x", "replace_original": True})

    assert not note.delivered and note.detail == "response_url is not a Slack URL"
    assert sink.messages == []


def test_an_ephemeral_reply_goes_through_the_response_url(
    sink: SlackSink, make_notifier: Callable[..., Notifier]
) -> None:
    note = make_notifier().respond(
        sink.response_url(), {"response_type": "ephemeral", "text": "already approved"}
    )

    assert note.delivered
    assert sink.messages == [
        {
            "method": "response_url",
            "channel": None,
            "ts": None,
            "response_type": "ephemeral",
            "text": "already approved",
        }
    ]


# ---- refusals are recorded, never raised; the token is never written --------------------------------


@pytest.mark.parametrize(
    ("token", "channel", "error"),
    [("xoxb-wrong-token", CHANNEL, "invalid_auth"), (TOKEN, "C0NOWHERE", "channel_not_found")],
)
def test_a_refused_bot_call_is_recorded_not_raised(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
    token: str,
    channel: str,
    error: str,
) -> None:
    notifier = make_notifier(token=token, channel=channel, webhook_url=False)

    note = notifier.post_or_update(make_operation(), payload("x"), status="applying", summary="s", ledger=aws)

    assert not note.delivered
    assert note.detail == f"chat.postMessage said {error}; webhook: Slack webhook not configured"
    assert sink.messages == []


def test_a_refused_bot_call_falls_back_to_the_webhook_but_a_progress_update_does_not(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
) -> None:
    notifier, op = make_notifier(token="xoxb-revoked"), make_operation()

    final = notifier.post_or_update(op, payload("patched"), status="succeeded", summary="s", ledger=aws)
    progress = tell_progress(op, "applying", ledger=aws, notifier=notifier, console_url=CONSOLE)

    assert final.delivered and final.detail == "chat.postMessage said invalid_auth; webhook: sent"
    assert [m["method"] for m in sink.messages] == ["webhook"]
    (note,) = progress.notifications
    assert not note.delivered and note.detail == "chat.postMessage said invalid_auth"


def test_the_sink_refuses_a_call_without_a_token_and_reads_form_bodies(sink: SlackSink) -> None:
    def call(headers: dict[str, str]) -> dict[str, Any]:
        body = urllib.parse.urlencode(
            {"channel": CHANNEL, "text": "hi", "blocks": json.dumps(payload("hi")["blocks"])}
        )
        request = urllib.request.Request(
            sink.api_url + "chat.postMessage", data=body.encode(), headers=headers
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())  # type: ignore[no-any-return]

    assert call({}) == {"ok": False, "error": "not_authed"}
    answer = call({"Authorization": f"Bearer {TOKEN}"})
    assert answer["ok"] is True and answer["channel"] == CHANNEL and answer["message"]["text"] == "hi"
    assert sink.messages[0]["blocks"] == payload("hi")["blocks"]


def test_an_unreachable_slack_is_recorded_and_the_step_goes_on(
    aws: Ledger, make_notifier: Callable[..., Notifier], make_operation: Callable[..., Operation]
) -> None:
    notifier, op = make_notifier(api_url="http://127.0.0.1:9/api/"), make_operation()

    progress = tell_progress(op, "applying", ledger=aws, notifier=notifier, console_url=CONSOLE)

    (note,) = progress.notifications
    assert not note.delivered and (note.detail or "").startswith("Slack unreachable")


def test_a_failing_progress_update_never_fails_the_step(
    aws: Ledger, make_operation: Callable[..., Operation], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        def has_bot_token(self) -> bool:
            return True

        def post_or_update(self, *args: Any, **kwargs: Any) -> Notification:
            raise RuntimeError("boom")

    op = make_operation()

    assert tell_progress(op, "verifying", ledger=aws, notifier=Broken(), console_url=CONSOLE) is op
    assert "Slack progress update failed" in caplog.text


def test_the_token_is_never_logged_or_recorded(
    aws: Ledger,
    sink: SlackSink,
    make_notifier: Callable[..., Notifier],
    make_operation: Callable[..., Operation],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # What the product and slack-sdk log, down to DEBUG. (botocore's own DEBUG wire log shows every
    # secret it reads; nobody runs it in Lambda, and it is not ours to filter.)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="slack_sdk")
    caplog.set_level(logging.DEBUG, logger="autopatch")
    op = approval_op(make_operation)
    notes: list[Notification] = []
    good, bad = make_notifier(), make_notifier(token="xoxb-a-revoked-token-000", webhook_url=False)
    unreachable = make_notifier(api_url="http://127.0.0.1:9/api/")

    request_approval(op, "task-token", ledger=aws, policy=POLICY, notifier=good, console_url=CONSOLE)
    for notifier in (good, bad, unreachable):
        notes.append(notifier.post_or_update(op, payload("x"), status="applying", summary="s", ledger=aws))
    notes += tell_decision(
        op, {"decision": "approved", "by": "alice"}, ledger=aws, notifier=bad, console_url=CONSOLE
    )

    written = caplog.text + json.dumps([n.model_dump(mode="json") for n in [*op.notifications, *notes]])
    written += json.dumps(sink.messages) + json.dumps(aws.table.scan()["Items"], default=str)
    assert "Sending a request" in caplog.text  # slack-sdk's own debug lines were captured too
    for secret in (TOKEN, "xoxb-a-revoked-token-000"):
        assert secret not in written
    assert repr(good.slack_bot()).count("xoxb") == 0


# ---- SNS: plain text for email, attributes to filter on ---------------------------------------------


def test_sns_subscribers_can_filter_on_cluster_status_and_approver(
    aws: Ledger, make_notifier: Callable[..., Notifier], make_operation: Callable[..., Operation]
) -> None:
    notifier = make_notifier()
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="alice-approved")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    boto3.client("sns", region_name=REGION).subscribe(
        TopicArn=notifier.topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"FilterPolicy": json.dumps({"approver": ["alice"], "status": ["succeeded"]})},
    )
    approved = make_operation(id="exec-1", approval={"required": True, "decision": "approved", "by": "alice"})
    unattended = make_operation(id="exec-2")
    for op in (approved, unattended):
        notify_outcome(op.end("succeeded", "updated"), ledger=aws, notifier=notifier, console_url=CONSOLE)

    (received,) = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    body = json.loads(received["Body"])
    attributes = {k: v["Value"] for k, v in body["MessageAttributes"].items()}
    assert attributes == {
        "cluster": "prod",
        "status": "succeeded",
        "component": "coredns",
        "reason": "updated",
        "approver": "alice",
    }
    assert body["Subject"] == "prod: coredns v1.11.4-eksbuild.22 → v1.11.4-eksbuild.24 patched"
    text = body["Message"]
    assert "Approved by alice." in text and f"Execution: {approved.executionArn}" in text
    assert "<http" not in text and ":white_check_mark:" not in text  # plain text, not Slack markup
