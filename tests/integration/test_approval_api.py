"""The approval API against the moto ledger: signed Slack clicks and emailed links in, decide() out.

Each request goes through `receive` (the receiver: verify, acknowledge, queue) and, when it was
queued, through `decide_from_queue` (the decider). Refusals are checked where a person meets them
(the HTTP answer or the ephemeral Slack reply) and where an operator does (the metric emitted as
CloudWatch EMF on stdout), with the ledger and the waiting workflow untouched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from autopatch.clients.approvals import ApprovalViews, LinkUses
from autopatch.clients.ledger import Ledger
from autopatch.links import sign_link
from autopatch.logic.approval import Decision, request_approval
from autopatch.logic.approval_api import DeciderOutcome, decide_from_queue, receive
from autopatch.models import Operation
from autopatch.policy import parse_policy

from rehearsal.engine import http_api_event, signed_slack_request, slack_click_payload
from tests.conftest import FakeClock, RecordingNotifier, RecordingSfn

ACCOUNT = "111122223333"
REGION = "eu-west-1"
TASK_TOKEN = "AQCEAAAAKgAAAAMAAAAA-task-token-that-resumes-the-workflow"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
LINK_KEY = "link-key-generated-by-secrets-manager-0123456789"
RESPONSE_URL = "https://hooks.slack.com/actions/T0/1/abc"
API = "https://approvals.example"

POLICY = parse_policy(
    {
        "clusters": [
            {
                "name": "prod",
                "accountId": ACCOUNT,
                "region": REGION,
                "approval": "required",
                "approvalTimeout": "24h",
                "approvers": [
                    {"name": "alice", "slackUserId": "U0ALICE", "email": "alice@example.com"},
                    {"name": "bob", "slackUserId": "U0BOB", "email": "bob@example.com"},
                    {"name": "carol"},
                ],
            },
            {
                "name": "staging",
                "accountId": ACCOUNT,
                "region": REGION,
                "approvers": [{"name": "mallory", "slackUserId": "U0MALLORY", "email": "m@example.com"}],
            },
        ]
    }
)


# ---- fakes and helpers ------------------------------------------------------------------------------
class RecordingQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, body: dict[str, Any]) -> None:
        self.sent.append(json.loads(json.dumps(body)))


class RecordingMail:
    api_url = API

    def __init__(self) -> None:
        self.published: list[dict[str, str]] = []

    def link_key(self) -> str:
        return LINK_KEY

    def publish(self, *, approver: str, subject: str, text: str) -> str:
        self.published.append({"approver": approver, "subject": subject, "text": text})
        return f"msg-{len(self.published)}"


class Slack:
    """What the decider tells Slack: message updates (`tell`) and replies to one person."""

    def __init__(self) -> None:
        self.told: list[tuple[dict[str, Any], Decision, str | None]] = []
        self.replies: list[tuple[str, dict[str, Any]]] = []

    def tell(self, item: dict[str, Any], decision: Decision, response_url: str | None) -> None:
        self.told.append((item, decision, response_url))

    def respond(self, url: str, payload: dict[str, Any]) -> None:
        self.replies.append((url, payload))


class Api:
    """The approval API wired to the moto ledger: the receiver, its queue, the decider."""

    def __init__(self, ledger: Ledger, fake_clock: FakeClock) -> None:
        self.ledger = ledger
        self.clock = fake_clock
        self.queue = RecordingQueue()
        self.sfn = RecordingSfn()
        self.slack = Slack()
        self.outcomes: list[DeciderOutcome] = []

    def request(self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None) -> Any:
        before = len(self.queue.sent)
        response = receive(
            http_api_event(method, path, body, headers),
            signing_secret=SIGNING_SECRET,
            link_key=LINK_KEY,
            queue=self.queue,
            now=self.clock.now(),
            approvals=ApprovalViews(self.ledger.table),
        )
        for message in self.queue.sent[before:]:
            self.outcomes.append(
                decide_from_queue(
                    json.dumps(message),
                    ledger=self.ledger,
                    policy=POLICY,
                    sfn=self.sfn,
                    tell=self.slack.tell,
                    respond=self.slack.respond,
                )
            )
        return response

    def click(
        self,
        approval_id: str,
        user: str,
        action: str = "approve",
        *,
        reason: str | None = None,
        signed_at: float | None = None,
        secret: str = SIGNING_SECRET,
    ) -> Any:
        payload = slack_click_payload(
            approval_id, user_id=user, action=action, reason=reason, response_url=RESPONSE_URL
        )
        timestamp = int(signed_at if signed_at is not None else self.clock.now().timestamp())
        body, headers = signed_slack_request(secret, payload, timestamp=timestamp)
        return self.request("POST", "/slack/interactions", body, headers)

    def post_link(self, token: str, decision: str = "approve", **extra: str) -> Any:
        form = urlencode({"token": token, "decision": decision, **extra})
        return self.request(
            "POST", "/approvals/decide", form, {"Content-Type": "application/x-www-form-urlencoded"}
        )


def refusals(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The `reason` of every ApprovalRequestsRefused data point flushed to stdout (CloudWatch EMF)."""
    found = []
    for line in capsys.readouterr().out.splitlines():
        try:
            blob = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(blob, dict) or "_aws" not in blob:
            continue
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        if [m["Name"] for m in directive["Metrics"]] == ["ApprovalRequestsRefused"]:
            assert directive["Namespace"] == "Autopatch"
            assert ["service", "reason"] in directive["Dimensions"] or ["reason", "service"] in directive[
                "Dimensions"
            ]
            assert blob["ApprovalRequestsRefused"] == [1.0] or blob["ApprovalRequestsRefused"] == 1.0
            found.append(blob["reason"])
    return found


def scan(ledger: Ledger) -> list[dict[str, Any]]:
    items = ledger.table.scan()["Items"]
    return sorted(items, key=lambda i: (i["pk"], i["sk"]))


@pytest.fixture
def api(aws: Ledger, fake_clock: FakeClock) -> Api:
    return Api(aws, fake_clock)


@pytest.fixture
def pending(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> Iterator[tuple[str, RecordingMail]]:
    """A prod operation waiting for approval; the approval id and the emails its request sent."""
    op = make_operation()
    op.approval.required = True
    op.approval.timeoutSeconds = 24 * 3600
    mail = RecordingMail()
    request_approval(
        op,
        TASK_TOKEN,
        ledger=aws,
        policy=POLICY,
        notifier=RecordingNotifier(fake_clock.now),
        console_url="https://console.example",
        approval_mail=mail,
    )
    aws.save_operation(op)
    assert op.approval.id is not None
    yield op.approval.id, mail


def token_from(email_text: str) -> str:
    (link,) = re.findall(r"https://\S+", email_text)
    assert link.startswith(f"{API}/approvals/confirm?token=")
    return parse_qs(urlsplit(link).query)["token"][0]


# ---- Slack --------------------------------------------------------------------------------------------
def test_a_signed_slack_approval_resumes_the_workflow_and_updates_the_message(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str]
) -> None:
    approval_id, _ = pending

    response = api.click(approval_id, "U0ALICE", reason="looks good")

    # Slack is answered at once, with nothing for it to show
    assert (response["statusCode"], response["body"]) == (200, "")
    # the decision went through decide(): the workflow resumes with alice's approval
    ((kind, call),) = api.sfn.calls
    assert kind == "success"
    assert call["taskToken"] == TASK_TOKEN
    assert json.loads(call["output"])["decision"] == "approved"
    assert json.loads(call["output"])["by"] == "alice"
    item = api.ledger.get_approval(approval_id)
    assert item is not None
    assert (item["status"], item["decision"], item["decidedBy"], item["decisionReason"]) == (
        "decided",
        "approved",
        "alice",
        "looks good",
    )
    # and the message is updated, through the interaction's response_url when there is no bot token
    ((told_item, decision, url),) = api.slack.told
    assert (decision.decision, decision.by, url) == ("approved", "alice", RESPONSE_URL)
    assert told_item["opKey"].startswith("OP#addon#coredns#")
    assert api.slack.replies == []
    assert refusals(capsys) == []


def test_a_reject_click_carries_the_reason_typed_in_the_message(
    api: Api, pending: tuple[str, RecordingMail]
) -> None:
    approval_id, _ = pending

    api.click(approval_id, "U0BOB", "reject", reason="freeze until Monday")

    ((kind, call),) = api.sfn.calls
    assert kind == "failure"
    assert call["error"] == "ApprovalRejected"
    assert json.loads(call["cause"])["reason"] == "freeze until Monday"
    assert api.slack.told[0][1].by == "bob"


def test_the_queued_message_names_the_request_and_never_a_secret(
    api: Api, pending: tuple[str, RecordingMail]
) -> None:
    approval_id, _ = pending

    api.click(approval_id, "U0ALICE")

    (message,) = api.queue.sent
    assert message == {
        "source": "slack",
        "approvalId": approval_id,
        "decision": "approve",
        "slackUserId": "U0ALICE",
        "responseUrl": RESPONSE_URL,
        "receivedAt": "2026-03-02T09:00:00Z",
    }


@pytest.mark.parametrize(
    ("how", "reason", "message"),
    [
        ("bad signature", "slack_bad_signature", "Refused: the Slack signature is not valid."),
        ("stale timestamp", "slack_stale", "signed 301 s ago"),
        ("no signature", "slack_unsigned", "carries no Slack signature"),
    ],
)
def test_slack_requests_that_fail_verification_are_refused_and_change_nothing(
    api: Api,
    pending: tuple[str, RecordingMail],
    capsys: pytest.CaptureFixture[str],
    how: str,
    reason: str,
    message: str,
) -> None:
    approval_id, _ = pending
    before = scan(api.ledger)
    capsys.readouterr()

    if how == "bad signature":
        response = api.click(approval_id, "U0ALICE", secret="not-the-signing-secret")
    elif how == "stale timestamp":
        response = api.click(approval_id, "U0ALICE", signed_at=api.clock.now().timestamp() - 301)
    else:
        payload = slack_click_payload(approval_id, user_id="U0ALICE", response_url=RESPONSE_URL)
        response = api.request("POST", "/slack/interactions", urlencode({"payload": json.dumps(payload)}))

    assert response["statusCode"] == 401
    assert message in response["body"]
    assert api.queue.sent == []  # nothing for the decider: the workflow keeps waiting
    assert api.sfn.calls == []
    assert scan(api.ledger) == before
    assert refusals(capsys) == [reason]


def test_a_request_signed_just_inside_five_minutes_is_accepted(
    api: Api, pending: tuple[str, RecordingMail]
) -> None:
    approval_id, _ = pending

    response = api.click(approval_id, "U0ALICE", signed_at=api.clock.now().timestamp() - 299)

    assert response["statusCode"] == 200
    assert api.sfn.calls[0][0] == "success"


def test_a_click_by_someone_who_is_not_an_approver_of_the_cluster_is_refused_ephemerally(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str]
) -> None:
    approval_id, _ = pending
    before = scan(api.ledger)
    capsys.readouterr()

    # mallory approves staging, not prod
    response = api.click(approval_id, "U0MALLORY")

    assert response["statusCode"] == 200  # Slack is acknowledged; the person is answered by the decider
    ((url, reply),) = api.slack.replies
    assert url == RESPONSE_URL
    assert reply == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": "You are not an approver for prod: nothing was decided.",
    }
    assert api.sfn.calls == []
    assert api.slack.told == []
    assert scan(api.ledger) == before
    assert refusals(capsys) == ["not_approver"]


def test_a_second_click_is_told_who_decided_first_and_changes_nothing(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str]
) -> None:
    approval_id, _ = pending
    api.click(approval_id, "U0ALICE")
    after_first = scan(api.ledger)
    capsys.readouterr()

    api.clock.advance(minutes=2)
    api.click(approval_id, "U0BOB", "reject")

    ((_, reply),) = api.slack.replies
    assert reply["response_type"] == "ephemeral"
    assert reply["text"] == "Already approved by alice at 2026-03-02T09:00:00Z."
    assert [kind for kind, _ in api.sfn.calls] == ["success"]  # the first decision stands
    assert scan(api.ledger) == after_first
    assert refusals(capsys) == ["already_decided"]


def test_other_interactions_are_acknowledged_and_ignored(
    api: Api, pending: tuple[str, RecordingMail]
) -> None:
    approval_id, _ = pending
    payload = slack_click_payload(approval_id, user_id="U0ALICE")
    payload["actions"][0]["action_id"] = "open_console"
    body, headers = signed_slack_request(SIGNING_SECRET, payload, timestamp=int(api.clock.now().timestamp()))

    response = api.request("POST", "/slack/interactions", body, headers)

    assert response["statusCode"] == 200
    assert api.queue.sent == []


# ---- emailed links ------------------------------------------------------------------------------------
def test_each_approver_with_an_email_gets_a_link_of_their_own(
    pending: tuple[str, RecordingMail], fake_clock: FakeClock
) -> None:
    from autopatch.links import verify_link

    approval_id, mail = pending

    # carol has no email; alice and bob each get one message, tagged for their own subscription
    assert [m["approver"] for m in mail.published] == ["alice", "bob"]
    for message in mail.published:
        claims = verify_link(LINK_KEY, token_from(message["text"]), fake_clock.now())
        assert (claims.approval_id, claims.approver) == (approval_id, message["approver"])
        assert claims.expires_at == fake_clock.now() + timedelta(hours=24)
        assert TASK_TOKEN not in message["text"]
        assert message["subject"] == "Approval needed: prod coredns v1.11.4-eksbuild.24"
        assert "Opening the link decides nothing" in message["text"]


def test_the_confirmation_page_shows_the_change_and_decides_nothing(
    api: Api, pending: tuple[str, RecordingMail]
) -> None:
    approval_id, mail = pending
    token = token_from(mail.published[0]["text"])
    before = scan(api.ledger)

    response = api.request("GET", f"/approvals/confirm?token={token}")

    assert response["statusCode"] == 200
    page = response["body"]
    for shown in ("prod", "addon/coredns", "v1.11.4-eksbuild.22 → v1.11.4-eksbuild.24", "alice", approval_id):
        assert shown in page
    assert '<form method="post" action="decide">' in page
    assert response["headers"]["Referrer-Policy"] == "no-referrer"
    assert api.queue.sent == [] and api.sfn.calls == []
    assert scan(api.ledger) == before


def test_the_confirmation_page_escapes_what_it_shows(api: Api, pending: tuple[str, RecordingMail]) -> None:
    approval_id, _ = pending
    token = sign_link(
        LINK_KEY, approval_id, '<script>alert("x")</script>', api.clock.now() + timedelta(hours=1)
    )

    page = api.request("GET", f"/approvals/confirm?token={token}")["body"]

    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_the_confirmation_form_decides_once_through_decide(
    api: Api, pending: tuple[str, RecordingMail]
) -> None:
    approval_id, mail = pending
    token = token_from(mail.published[1]["text"])  # bob's

    response = api.post_link(token, "approve", approval=approval_id, reason="ok from the train")

    assert response["statusCode"] == 202
    assert (
        "bob, your decision to <strong>approve</strong> prod addon/coredns was received" in response["body"]
    )
    ((kind, call),) = api.sfn.calls
    assert kind == "success"
    assert (json.loads(call["output"])["by"], json.loads(call["output"])["reason"]) == (
        "bob",
        "ok from the train",
    )
    assert api.slack.told[0][1].by == "bob"
    (used,) = [i for i in scan(api.ledger) if i["pk"].startswith("LINK#")]
    assert (used["approvalId"], used["approver"]) == (approval_id, "bob")
    assert int(used["expiresAt"]) == int((api.clock.now() + timedelta(hours=48)).timestamp())


def test_opening_the_decision_address_with_get_decides_nothing(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str]
) -> None:
    _, mail = pending
    token = token_from(mail.published[0]["text"])
    before = scan(api.ledger)
    capsys.readouterr()

    response = api.request("GET", f"/approvals/decide?token={token}&decision=approve")

    assert response["statusCode"] == 405
    assert response["headers"]["Allow"] == "POST"
    assert "Opening this address decides nothing" in response["body"]
    assert api.queue.sent == [] and api.sfn.calls == []
    assert scan(api.ledger) == before
    assert refusals(capsys) == ["decide_not_post"]


@pytest.mark.parametrize("route", ["GET /approvals/confirm", "POST /approvals/decide"])
def test_an_expired_link_is_refused(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str], route: str
) -> None:
    _, mail = pending
    token = token_from(mail.published[0]["text"])
    api.clock.advance(hours=24)
    before = scan(api.ledger)
    capsys.readouterr()

    if route.startswith("GET"):
        response = api.request("GET", f"/approvals/confirm?token={token}")
    else:
        response = api.post_link(token)

    assert response["statusCode"] == 410
    assert "This link cannot be used: the link expired at 2026-03-03T09:00:00Z." in response["body"]
    assert api.queue.sent == [] and api.sfn.calls == []
    assert scan(api.ledger) == before
    assert refusals(capsys) == ["link_expired"]


def test_a_link_for_another_approval_is_refused(
    api: Api,
    pending: tuple[str, RecordingMail],
    capsys: pytest.CaptureFixture[str],
    make_operation: Callable[..., Operation],
) -> None:
    approval_id, _ = pending
    # alice has a link for a second approval (another target of prod)...
    other = make_operation(id="exec-2", toVersion="v1.11.4-eksbuild.28")
    other.approval.required = True
    request_approval(
        other,
        "another-task-token",
        ledger=api.ledger,
        policy=POLICY,
        notifier=RecordingNotifier(api.clock.now),
        console_url="https://console.example",
        approval_mail=(mail := RecordingMail()),
    )
    token_for_other = token_from(mail.published[0]["text"])
    before = scan(api.ledger)
    capsys.readouterr()

    # ...and submits it as a decision on the first one
    response = api.post_link(token_for_other, approval=approval_id)

    assert response["statusCode"] == 403
    assert f"This link is for approval {other.approval.id}, not {approval_id}" in response["body"]
    assert api.queue.sent == [] and api.sfn.calls == []
    assert scan(api.ledger) == before
    assert refusals(capsys) == ["link_other_approval"]


def test_a_forged_link_is_refused(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str]
) -> None:
    approval_id, _ = pending
    forged = sign_link("a-guessed-key", approval_id, "alice", api.clock.now() + timedelta(hours=1))
    capsys.readouterr()

    response = api.post_link(forged)

    assert response["statusCode"] == 403
    assert "signature is not valid" in response["body"]
    assert api.queue.sent == []
    assert refusals(capsys) == ["link_bad_signature"]


def test_a_used_link_is_refused_when_submitted_again(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str]
) -> None:
    _, mail = pending
    token = token_from(mail.published[0]["text"])
    api.post_link(token)
    after_first = scan(api.ledger)
    capsys.readouterr()

    response = api.post_link(token, "reject")

    assert response["statusCode"] == 409
    assert "Already approved by alice at 2026-03-02T09:00:00Z." in response["body"]
    assert [kind for kind, _ in api.sfn.calls] == ["success"]
    assert scan(api.ledger) == after_first
    assert refusals(capsys) == ["already_decided"]


def test_a_used_link_is_refused_even_while_its_approval_is_pending(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str]
) -> None:
    approval_id, mail = pending
    token = token_from(mail.published[0]["text"])
    from autopatch.links import verify_link

    claims = verify_link(LINK_KEY, token, api.clock.now())
    assert LinkUses(api.ledger.table).use(
        claims.nonce, approval_id=approval_id, approver="alice", link_expires_at=claims.expires_at
    )
    before = scan(api.ledger)
    capsys.readouterr()

    response = api.post_link(token)

    assert response["statusCode"] == 409
    assert "This link was already used; a link decides once." in response["body"]
    assert api.sfn.calls == []
    assert scan(api.ledger) == before
    assert api.ledger.get_approval(approval_id)["status"] == "pending"
    assert refusals(capsys) == ["link_replayed"]


def test_the_decider_refuses_a_link_replayed_past_the_receiver(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str]
) -> None:
    """Two submissions queued before either is decided: the nonce lets only the first through."""
    approval_id, mail = pending
    token = token_from(mail.published[0]["text"])
    form = urlencode({"token": token, "decision": "reject"})
    for _ in range(2):  # the receiver alone (no decider between them) accepts both
        receive(
            http_api_event("POST", "/approvals/decide", form),
            signing_secret=SIGNING_SECRET,
            link_key=LINK_KEY,
            queue=api.queue,
            now=api.clock.now(),
            approvals=ApprovalViews(api.ledger.table),
        )
    first, second = api.queue.sent
    uses = LinkUses(api.ledger.table)
    decide_once = dict(
        ledger=api.ledger, policy=POLICY, sfn=api.sfn, tell=api.slack.tell, respond=api.slack.respond
    )
    # the second is taken first by another decider instance, whose decision is still in flight
    assert uses.use(
        second["nonce"], approval_id=approval_id, approver="alice", link_expires_at=api.clock.now()
    )
    capsys.readouterr()

    outcome = decide_from_queue(first, links=uses, **decide_once)  # type: ignore[arg-type]

    assert (outcome.decided, outcome.reason) == (False, "link_replayed")
    assert api.sfn.calls == []
    assert refusals(capsys) == ["link_replayed"]


def test_a_link_of_someone_no_longer_an_approver_decides_nothing(
    api: Api, pending: tuple[str, RecordingMail], capsys: pytest.CaptureFixture[str]
) -> None:
    approval_id, _ = pending
    token = sign_link(LINK_KEY, approval_id, "dave", api.clock.now() + timedelta(hours=1))
    before = scan(api.ledger)
    capsys.readouterr()

    response = api.post_link(token)

    assert response["statusCode"] == 202  # the receiver cannot know the policy; the decider refuses
    assert api.outcomes[-1].reason == "not_approver"
    assert api.outcomes[-1].message == "dave is not an approver for prod: nothing was decided."
    assert api.sfn.calls == []
    assert scan(api.ledger) == before
    assert refusals(capsys) == ["not_approver"]


# ---- in the local engine: a real workflow waiting on its task token ---------------------------------
WAITING_WORKFLOW = {
    "StartAt": "RequestApproval",
    "States": {
        "RequestApproval": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "${RequestApprovalFunctionArn}",
                "Payload": {"operation.$": "$", "taskToken.$": "$$.Task.Token"},
            },
            "ResultPath": "$.approvalOutcome",
            "Catch": [{"ErrorEquals": ["ApprovalRejected"], "ResultPath": "$.error", "Next": "Rejected"}],
            "Next": "Approved",
        },
        "Approved": {"Type": "Succeed"},
        "Rejected": {"Type": "Fail", "Error": "ApprovalRejected"},
    },
}


class Waiting:
    """An engine with one execution paused in RequestApproval (`.waitForTaskToken`)."""

    def __init__(self, engine: Any, execution_arn: str) -> None:
        self.engine = engine
        self.execution_arn = execution_arn
        (item,) = [i for i in engine.ledger_items() if i["pk"].startswith("APPROVAL#")]
        self.approval_id = str(item["pk"]).removeprefix("APPROVAL#")
        (request,) = [m for m in engine.slack.messages if m.get("method") == "chat.postMessage"]
        self.message_ts = str(request["ts"])

    def status(self) -> str:
        import boto3

        self.engine.clock.run_until_idle(real_timeout=60)
        return str(
            boto3.client("stepfunctions").describe_execution(executionArn=self.execution_arn)["status"]
        )

    def refusals(self) -> list[str]:
        """The refusal metric's reasons, from what the handlers printed (their CloudWatch Logs)."""
        reasons = []
        for line in self.engine.log.getvalue().splitlines():
            if '"ApprovalRequestsRefused"' in line and line.startswith("{"):
                reasons.append(json.loads(line)["reason"])
        return reasons


@pytest.fixture
def waiting(tmp_path: Any, make_operation: Callable[..., Operation]) -> Iterator[Waiting]:
    from datetime import UTC, datetime

    import boto3

    from rehearsal.clock import SimClock
    from rehearsal.eks.simulator import EksSimulator
    from rehearsal.engine import FUNCTION_PREFIX, Engine

    clock = SimClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    policy_path = tmp_path / "fleet.json"
    policy_path.write_text(POLICY.model_dump_json())
    with Engine(
        clock=clock,
        simulator=EksSimulator(clock),
        policy_path=policy_path,
        account_id=ACCOUNT,
        region=REGION,
    ) as engine:
        sfn = boto3.client("stepfunctions")
        arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_PREFIX}RequestApproval"
        definition = json.dumps(WAITING_WORKFLOW).replace("${RequestApprovalFunctionArn}", arn)
        machine = sfn.create_state_machine(
            name="approval-only",
            definition=definition,
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/autopatch-rehearsal",
        )["stateMachineArn"]
        op = make_operation()
        op.approval.required = True
        execution = sfn.start_execution(stateMachineArn=machine, input=op.model_dump_json())["executionArn"]
        clock.run_until_idle(real_timeout=60)
        state = Waiting(engine, execution)
        assert state.status() == "RUNNING"
        yield state


def test_in_the_engine_a_signed_slack_approval_resumes_the_execution_and_updates_its_message(
    waiting: Waiting,
) -> None:
    engine = waiting.engine

    status, _, body = engine.slack_click(
        waiting.approval_id, user_id="U0ALICE", response_url=engine.slack.response_url(waiting.message_ts)
    )

    assert (status, body) == (200, "")
    assert waiting.status() == "SUCCEEDED"
    item = next(i for i in engine.ledger_items() if i["pk"] == f"APPROVAL#{waiting.approval_id}")
    assert (item["decision"], item["decidedBy"]) == ("approved", "alice")
    # the approval request's message, updated in place, names who approved
    history = engine.slack.history(waiting.message_ts)
    assert [m["method"] for m in history][-1] == "chat.update"
    assert "alice" in json.dumps(history[-1])
    assert engine.undelivered_approval_messages == []
    assert waiting.refusals() == []


def test_in_the_engine_refused_clicks_leave_the_execution_waiting_and_the_ledger_unchanged(
    waiting: Waiting,
) -> None:
    engine = waiting.engine
    before = engine.ledger_items()
    ephemeral = engine.slack.response_url()

    bad = engine.slack_click(waiting.approval_id, user_id="U0ALICE", signing_secret="not-the-secret")
    stale = engine.slack_click(
        waiting.approval_id, user_id="U0ALICE", signed_at=engine.clock.now().timestamp() - 600
    )
    stranger = engine.slack_click(waiting.approval_id, user_id="U0MALLORY", response_url=ephemeral)

    assert [bad[0], stale[0], stranger[0]] == [401, 401, 200]
    assert "signature is not valid" in bad[2] and "signed 600 s ago" in stale[2]
    assert waiting.status() == "RUNNING"
    assert engine.ledger_items() == before
    replies = [m for m in engine.slack.messages if m.get("method") == "response_url"]
    assert [m["text"] for m in replies] == ["You are not an approver for prod: nothing was decided."]
    assert replies[0]["response_type"] == "ephemeral"
    assert waiting.refusals() == ["slack_bad_signature", "slack_stale", "not_approver"]


def test_in_the_engine_an_emailed_link_decides_only_through_its_confirmation_page(waiting: Waiting) -> None:
    engine = waiting.engine
    (alice,) = [m for m in engine.approval_emails if m["approver"] == "alice"]
    token = parse_qs(urlsplit(re.findall(r"https://\S+", alice["text"])[0]).query)["token"][0]

    page = engine.call_approval_api("GET", f"/approvals/confirm?token={token}")
    opened = engine.call_approval_api("GET", f"/approvals/decide?token={token}&decision=approve")
    assert (page[0], opened[0]) == (200, 405)
    assert waiting.status() == "RUNNING"

    form = urlencode({"token": token, "decision": "reject", "reason": "not this week"})
    decided = engine.call_approval_api(
        "POST", "/approvals/decide", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert decided[0] == 202
    assert waiting.status() == "FAILED"  # the decider ran from the queue; the workflow's Catch: rejected

    replayed = engine.call_approval_api(
        "POST", "/approvals/decide", form, {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert replayed[0] == 409 and "Already rejected by alice" in replayed[2]
    assert waiting.refusals() == ["decide_not_post", "already_decided"]
