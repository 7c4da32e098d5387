"""The ledger on DynamoDB (moto): target claims, the per-cluster lease, and approval decisions."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from autopatch.clients.ledger import Ledger
from autopatch.errors import ApprovalError
from autopatch.logic.approval import decide, request_approval
from autopatch.logic.claim import claim_operation
from autopatch.models import Operation
from autopatch.policy import parse_policy

from tests.conftest import FakeClock, RecordingNotifier, RecordingSfn, TimedOutSfn

ACCOUNT = "111122223333"
REGION = "eu-west-1"
PROD = f"{ACCOUNT}#{REGION}#prod"
TASK_TOKEN = "AQCEAAAAKgAAAAMAAAAA-task-token-that-resumes-the-workflow"
LEASE = 15 * 60

POLICY = parse_policy(
    {
        "defaults": {"approval": "none"},
        "clusters": [
            {
                "name": "prod",
                "accountId": ACCOUNT,
                "region": REGION,
                "approval": "required",
                "approvers": [
                    {"name": "alice", "slackUserId": "U0ALICE", "email": "alice@example.com"},
                    {"name": "bob"},
                ],
            },
            {
                "name": "staging",
                "accountId": ACCOUNT,
                "region": REGION,
                "approvers": [{"name": "carol"}],
            },
        ],
    }
)


def ask(ledger: Ledger, op: Operation, fake_clock: FakeClock) -> str:
    """Run the approval request step; the approval id it created."""
    request_approval(
        op,
        TASK_TOKEN,
        ledger=ledger,
        policy=POLICY,
        notifier=RecordingNotifier(fake_clock.now),
        console_url="https://console.example",
    )
    assert op.approval.id is not None
    return op.approval.id


# ---- claims -----------------------------------------------------------------------------------


def test_a_second_execution_for_the_same_target_is_refused_while_the_first_runs(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    first, second = make_operation(id="exec-1"), make_operation(id="exec-2")

    assert aws.claim_target(first) == (True, None)
    claimed, holder = aws.claim_target(second)

    assert claimed is False
    assert holder is not None
    assert (holder["holder"], holder["status"]) == ("exec-1", "running")
    assert holder["claimedAt"] == "2026-03-02T09:00:00Z"


def test_the_duplicate_execution_ends_skipped_and_names_the_one_that_holds_the_target(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    claim_operation(make_operation(id="exec-1"), ledger=aws)

    duplicate = claim_operation(make_operation(id="exec-2"), ledger=aws)

    assert (duplicate.status, duplicate.reason) == ("skipped", "duplicate")
    assert duplicate.message == "coredns v1.11.4-eksbuild.24 is already running by execution exec-1."


def test_a_failed_target_can_be_claimed_again(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    # Given a first run that failed
    first = make_operation(id="exec-1")
    aws.claim_target(first)
    aws.finish_target(first.end("failed", "update_failed"))
    assert aws.get_target(PROD, first.target_key)["status"] == "failed"

    # When the target is announced again
    claimed, _ = aws.claim_target(make_operation(id="exec-2"))

    # Then the new run holds it
    assert claimed is True
    target = aws.get_target(PROD, first.target_key)
    assert target is not None
    assert (target["holder"], target["status"]) == ("exec-2", "running")


def test_a_succeeded_target_is_not_claimed_again(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    first = make_operation(id="exec-1")
    aws.claim_target(first)
    aws.finish_target(first.end("succeeded", "updated"))

    claimed, holder = aws.claim_target(make_operation(id="exec-2"))

    assert claimed is False
    assert holder is not None and holder["status"] == "succeeded"


def test_only_the_holder_records_how_the_claim_ended(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    aws.claim_target(make_operation(id="exec-1"))
    duplicate = claim_operation(make_operation(id="exec-2"), ledger=aws)

    aws.finish_target(duplicate)  # the duplicate's notify step

    target = aws.get_target(PROD, duplicate.target_key)
    assert target is not None
    assert (target["holder"], target["status"]) == ("exec-1", "running")


def test_claims_of_other_targets_do_not_collide(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    aws.claim_target(make_operation(id="exec-1"))

    newer = make_operation(id="exec-2", toVersion="v1.11.4-eksbuild.28")
    other_cluster = make_operation(
        id="exec-3", cluster={"name": "dev", "accountId": ACCOUNT, "region": REGION}
    )

    assert aws.claim_target(newer)[0] is True
    assert aws.claim_target(other_cluster)[0] is True


def test_a_retried_claim_by_the_same_execution_still_holds_the_target(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    assert aws.claim_target(make_operation(id="exec-1"))[0] is True

    retried = claim_operation(make_operation(id="exec-1"), ledger=aws)

    assert retried.status == "running"


# ---- the per-cluster lease --------------------------------------------------------------------


def test_the_first_holder_gets_the_lease_and_others_see_who_holds_it(
    aws: Ledger, fake_clock: FakeClock
) -> None:
    assert aws.acquire_lock(PROD, "exec-1", LEASE) is None

    busy = aws.acquire_lock(PROD, "exec-2", LEASE)

    assert busy is not None
    assert busy["holder"] == "exec-1"
    assert busy["since"] == "2026-03-02T09:00:00Z"


def test_the_holder_may_take_its_own_lease_again(aws: Ledger, fake_clock: FakeClock) -> None:
    aws.acquire_lock(PROD, "exec-1", LEASE)

    assert aws.acquire_lock(PROD, "exec-1", LEASE) is None


def test_a_lease_nobody_renews_frees_the_cluster_when_it_expires(aws: Ledger, fake_clock: FakeClock) -> None:
    aws.acquire_lock(PROD, "exec-crashed", LEASE)

    fake_clock.advance(seconds=LEASE - 60)
    assert aws.acquire_lock(PROD, "exec-2", LEASE) is not None

    fake_clock.advance(seconds=61)
    assert aws.acquire_lock(PROD, "exec-2", LEASE) is None
    assert aws.lock_holder(PROD)["holder"] == "exec-2"


def test_a_renewed_lease_keeps_the_cluster_past_the_first_lease(aws: Ledger, fake_clock: FakeClock) -> None:
    aws.acquire_lock(PROD, "exec-1", LEASE)

    fake_clock.advance(minutes=10)
    assert aws.renew_lock(PROD, "exec-1", LEASE) is True
    fake_clock.advance(minutes=10)  # 20 minutes after taking a 15-minute lease

    assert aws.acquire_lock(PROD, "exec-2", LEASE) is not None


def test_only_the_holder_renews(aws: Ledger, fake_clock: FakeClock) -> None:
    aws.acquire_lock(PROD, "exec-1", LEASE)

    assert aws.renew_lock(PROD, "exec-2", LEASE) is False
    assert aws.renew_lock("999999999999#eu-west-1#nowhere", "exec-2", LEASE) is False
    fake_clock.advance(seconds=LEASE + 1)
    assert aws.acquire_lock(PROD, "exec-2", LEASE) is None


def test_only_the_holder_releases_the_lease(aws: Ledger, fake_clock: FakeClock) -> None:
    aws.acquire_lock(PROD, "exec-1", LEASE)

    assert aws.release_lock(PROD, "exec-2") is False
    assert aws.acquire_lock(PROD, "exec-2", LEASE) is not None

    assert aws.release_lock(PROD, "exec-1") is True
    assert aws.lock_holder(PROD) is None
    assert aws.acquire_lock(PROD, "exec-2", LEASE) is None


def test_leases_are_per_cluster(aws: Ledger, fake_clock: FakeClock) -> None:
    aws.acquire_lock(PROD, "exec-1", LEASE)

    assert aws.acquire_lock(f"{ACCOUNT}#{REGION}#dev", "exec-2", LEASE) is None


# ---- asking -----------------------------------------------------------------------------------


def test_the_task_token_stays_in_the_ledger_and_messages_carry_the_approval_id(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    op = make_operation(approval={"required": True})
    notifier = RecordingNotifier(fake_clock.now)

    request_approval(
        op, TASK_TOKEN, ledger=aws, policy=POLICY, notifier=notifier, console_url="https://console.example"
    )

    approval_id = op.approval.id
    assert approval_id is not None and approval_id.startswith("apr-")
    stored = aws.get_approval(approval_id)
    assert stored is not None
    assert (stored["taskToken"], stored["status"], stored["approvers"]) == (
        TASK_TOKEN,
        "pending",
        ["alice", "bob"],
    )
    sent = json.dumps(
        notifier.sent + [n.model_dump(mode="json") for n in op.notifications], ensure_ascii=False
    )
    assert TASK_TOKEN not in sent
    assert "AQCEAAAA" not in sent
    assert f"autopatch approve {approval_id}" in sent
    assert [n.channel for n in op.notifications] == ["slack", "sns", "eventbridge"]
    assert [a["pk"] for a in aws.approvals_of_execution(PROD, op.id)] == [f"APPROVAL#{approval_id}"]


# ---- deciding ---------------------------------------------------------------------------------


def test_an_approval_resumes_the_workflow_with_who_approved(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    # Given prod waits for approval since 09:00
    op = make_operation(approval={"required": True})
    approval_id = ask(aws, op, fake_clock)
    sfn = RecordingSfn()

    # When alice approves (by her Slack id) an hour later
    fake_clock.advance(hours=1)
    decision = decide(approval_id, "approve", "U0ALICE", "go", ledger=aws, policy=POLICY, sfn=sfn)

    # Then the workflow resumes with her name, and the ledger says so
    assert (decision.decision, decision.by, decision.at, decision.cluster) == (
        "approved",
        "alice",
        "2026-03-02T10:00:00Z",
        "prod",
    )
    ((call, kwargs),) = sfn.calls
    assert call == "success"
    assert kwargs["taskToken"] == TASK_TOKEN
    output = json.loads(kwargs["output"])
    assert (output["approvalId"], output["decision"], output["by"], output["at"]) == (
        approval_id,
        "approved",
        "alice",
        "2026-03-02T10:00:00Z",
    )
    assert output["requestedAt"] == "2026-03-02T09:00:00Z"
    assert len(output["notifications"]) == 3
    stored = aws.get_approval(approval_id)
    assert stored is not None
    assert (stored["status"], stored["decision"], stored["decidedBy"]) == ("decided", "approved", "alice")

    # And the next step's record carries the decision and how long it waited
    resumed = Operation.model_validate({**op.model_dump(mode="json"), "approvalOutcome": output})
    assert (resumed.approval.decision, resumed.approval.by) == ("approved", "alice")
    assert resumed.steps[-1].name == "approval"
    assert (resumed.steps[-1].ended - resumed.steps[-1].started).total_seconds() == 3600


def test_a_rejection_stops_the_workflow_with_approval_rejected(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    approval_id = ask(aws, make_operation(approval={"required": True}), fake_clock)
    sfn = RecordingSfn()

    decision = decide(approval_id, "reject", "bob", "sale this week", ledger=aws, policy=POLICY, sfn=sfn)

    assert (decision.decision, decision.by) == ("rejected", "bob")
    ((call, kwargs),) = sfn.calls
    assert call == "failure"
    assert kwargs["error"] == "ApprovalRejected"
    cause = json.loads(kwargs["cause"])
    assert (cause["decision"], cause["by"], cause["reason"]) == ("rejected", "bob", "sale this week")
    assert aws.get_approval(approval_id)["decision"] == "rejected"


def test_an_unknown_approval_is_refused(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    ask(aws, make_operation(approval={"required": True}), fake_clock)
    before = aws.table.scan()["Items"]
    sfn = RecordingSfn()

    with pytest.raises(ApprovalError, match="no approval 'apr-nope'"):
        decide("apr-nope", "approve", "alice", None, ledger=aws, policy=POLICY, sfn=sfn)

    assert sfn.calls == []
    assert aws.table.scan()["Items"] == before


@pytest.mark.parametrize("who", ["carol", "mallory", "U0BOB"])
def test_someone_not_listed_for_the_cluster_cannot_decide(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation], who: str
) -> None:
    approval_id = ask(aws, make_operation(approval={"required": True}), fake_clock)
    before = aws.get_approval(approval_id)
    sfn = RecordingSfn()

    with pytest.raises(ApprovalError, match=f"{who} is not an approver for prod"):
        decide(approval_id, "approve", who, None, ledger=aws, policy=POLICY, sfn=sfn)

    assert sfn.calls == []
    assert aws.get_approval(approval_id) == before


def test_the_first_decision_wins_and_the_second_is_told_who_decided(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    approval_id = ask(aws, make_operation(approval={"required": True}), fake_clock)
    fake_clock.advance(minutes=30)
    decide(approval_id, "approve", "alice", None, ledger=aws, policy=POLICY, sfn=RecordingSfn())
    after_first = aws.get_approval(approval_id)
    sfn = RecordingSfn()

    fake_clock.advance(minutes=5)
    with pytest.raises(ApprovalError) as refused:
        decide(approval_id, "reject", "bob", "too late?", ledger=aws, policy=POLICY, sfn=sfn)

    assert str(refused.value) == "already approved by alice at 2026-03-02T09:30:00Z"
    assert sfn.calls == []
    assert aws.get_approval(approval_id) == after_first


def test_a_decision_after_the_workflow_stopped_waiting_is_refused(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    approval_id = ask(aws, make_operation(approval={"required": True}), fake_clock)
    fake_clock.advance(hours=25)

    with pytest.raises(ApprovalError, match="no longer waits for a decision"):
        decide(approval_id, "approve", "alice", None, ledger=aws, policy=POLICY, sfn=TimedOutSfn())


def test_a_late_decision_is_recorded_as_late_not_as_a_decision(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    approval_id = ask(aws, make_operation(approval={"required": True}), fake_clock)
    fake_clock.advance(hours=25)

    with pytest.raises(ApprovalError):
        decide(approval_id, "approve", "alice", None, ledger=aws, policy=POLICY, sfn=TimedOutSfn())

    after = aws.get_approval(approval_id)
    assert after is not None
    assert after["status"] == "expired"
    assert "decision" not in after and "decidedBy" not in after
    assert (after["lateDecision"], after["lateDecisionBy"]) == ("approved", "alice")
    with pytest.raises(ApprovalError, match="already expired"):
        decide(approval_id, "approve", "alice", None, ledger=aws, policy=POLICY, sfn=RecordingSfn())
