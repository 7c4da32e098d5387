"""Workflow steps on the real ledger (moto): validate, the lock step, and settling a caught error."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from autopatch.clients.ledger import Ledger
from autopatch.errors import ApprovalError, ClusterBusy, InvalidEvent, LockWaitExpired
from autopatch.handlers import validate as validate_handler
from autopatch.logic.approval import decide, request_approval
from autopatch.logic.lock import LEASE_SECONDS, release_lock, take_lock
from autopatch.logic.notify import settle_from_error
from autopatch.logic.validate import validate_event
from autopatch.models import ExecutionInfo, Operation
from autopatch.policy import parse_policy
from autopatch.services import Services
from autopatch.settings import Settings

from tests.conftest import FakeClock, LambdaContext, RecordingNotifier, RecordingSfn

ACCOUNT = "111122223333"
REGION = "eu-west-1"
PROD = f"{ACCOUNT}#{REGION}#prod"
EXECUTION = ExecutionInfo(
    id=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:autopatch-addon-update:exec-42", name="exec-42"
)

POLICY = parse_policy(
    {
        "defaults": {
            "approval": "none",
            "lockWaitBudget": "6h",
            "addons": ["vpc-cni", "coredns", "kube-proxy"],
        },
        "clusters": [
            {
                "name": "prod",
                "accountId": ACCOUNT,
                "region": REGION,
                "approval": "required",
                "approvers": [{"name": "alice"}, {"name": "bob"}],
                "approvalTimeout": "12h",
                "lockWaitBudget": "2h",
                "rollbackOnFailure": False,
            },
            {"name": "dev", "accountId": ACCOUNT, "region": REGION, "addons": ["vpc-cni"]},
        ],
    }
)


def invalid_items(ledger: Ledger) -> list[dict[str, Any]]:
    items = ledger.table.scan()["Items"]
    return [i for i in items if str(i["pk"]).startswith("INVALID#")]


# ---- validate ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "problem"),
    [
        ("invalid_missing_detail", "detail: Field required"),
        ("invalid_wrong_source", "source: Input should be 'autopatch'"),
        ("invalid_bad_account_id", "detail.accountId: String should match pattern"),
        ("invalid_unknown_component_kind", "detail.component.kind: Input should be"),
        ("invalid_empty_target_version", "detail.targetVersion: String should have at least 1 character"),
        ("invalid_not_an_object", "(event): Input should be a valid dictionary"),
        ("invalid_nodegroup_for_addon_workflow", "goes with component.kind 'addon', not 'nodegroup'"),
    ],
)
def test_an_invalid_event_is_refused_and_kept_with_its_problems(
    aws: Ledger, fake_clock: FakeClock, load_event: Callable[[str], Any], sample: str, problem: str
) -> None:
    raw = load_event(sample)

    with pytest.raises(InvalidEvent) as refused:
        validate_event(raw, EXECUTION, ledger=aws, policy=POLICY)

    assert problem in str(refused.value)
    (item,) = invalid_items(aws)
    assert (item["pk"], item["sk"]) == ("INVALID#2026-03-02", "exec-42")
    assert item["receivedAt"] == "2026-03-02T09:00:00Z"
    assert any(problem in p for p in item["problems"])
    assert json.loads(item["event"]) == raw


def test_a_huge_invalid_event_is_kept_as_an_excerpt(
    aws: Ledger, fake_clock: FakeClock, load_event: Callable[[str], Any]
) -> None:
    raw = load_event("invalid_wrong_source") | {"padding": "x" * 100_000}

    with pytest.raises(InvalidEvent):
        validate_event(raw, EXECUTION, ledger=aws, policy=POLICY)

    (item,) = invalid_items(aws)
    assert len(item["event"]) == 4000


def test_a_valid_event_for_a_cluster_outside_the_fleet_is_skipped(
    aws: Ledger, fake_clock: FakeClock, load_event: Callable[[str], Any]
) -> None:
    raw = load_event("addon_version_available")
    raw["detail"]["clusterName"] = "sandbox"

    op = validate_event(raw, EXECUTION, ledger=aws, policy=POLICY)

    assert (op.status, op.reason) == ("skipped", "unknown_cluster")
    assert op.cluster.name == "sandbox"
    assert invalid_items(aws) == []


def test_a_valid_event_for_an_addon_the_cluster_does_not_patch_is_skipped(
    aws: Ledger, fake_clock: FakeClock, load_event: Callable[[str], Any]
) -> None:
    raw = load_event("addon_version_available")
    raw["detail"]["clusterName"] = "dev"  # dev patches vpc-cni only

    op = validate_event(raw, EXECUTION, ledger=aws, policy=POLICY)

    assert (op.status, op.reason) == ("skipped", "not_in_policy")


def test_a_valid_event_for_a_fleet_cluster_starts_a_running_operation_with_its_policy(
    aws: Ledger, fake_clock: FakeClock, load_event: Callable[[str], Any]
) -> None:
    op = validate_event(load_event("addon_version_available"), EXECUTION, ledger=aws, policy=POLICY)

    assert op.status == "running"
    assert (op.id, op.executionArn, op.eventId) == (
        "exec-42",
        EXECUTION.id,
        "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    )
    assert (op.cluster.key, op.component.name) == (PROD, "coredns")
    assert (op.fromVersion, op.toVersion) == ("v1.11.4-eksbuild.22", "v1.11.4-eksbuild.24")
    assert op.startedAt == fake_clock.now()
    assert op.approval.required is True
    assert op.approval.timeoutSeconds == 12 * 3600
    assert op.lockWaitBudget == 2 * 3600
    assert op.rollbackOnFailure is False
    assert op.resolveConflicts == "PRESERVE"


def test_a_cluster_without_approval_in_its_policy_runs_without_approval(
    aws: Ledger, fake_clock: FakeClock, load_event: Callable[[str], Any]
) -> None:
    raw = load_event("addon_version_available")
    raw["detail"]["clusterName"] = "dev"
    raw["detail"]["component"]["name"] = "vpc-cni"

    op = validate_event(raw, EXECUTION, ledger=aws, policy=POLICY)

    assert op.status == "running"
    assert op.approval.required is False
    assert op.lockWaitBudget == 6 * 3600


def test_the_validate_lambda_returns_the_operation_and_records_it(
    aws: Ledger,
    fake_clock: FakeClock,
    load_event: Callable[[str], Any],
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        "autopatch-ledger-test", "autopatch", "arn:aws:sns:eu-west-1:1:t", "arn:secret", "fleet"
    )
    monkeypatch.setattr(
        validate_handler, "services", lambda: Services(settings=settings, ledger=aws, policy=POLICY)
    )
    event = {"event": load_event("addon_version_available"), "execution": EXECUTION.model_dump()}

    output = validate_handler.handler(event, lambda_context)

    op = Operation.model_validate(output)
    assert (op.status, op.approval.required) == ("running", True)
    assert [s.name for s in op.steps] == ["validate"]
    (saved,) = aws.operations(PROD)
    assert saved.id == "exec-42"


# ---- the lock step ----------------------------------------------------------------------------


def running(make_operation: Callable[..., Operation], **overrides: Any) -> Operation:
    return make_operation(**({"lockWaitBudget": 2 * 3600} | overrides))


def test_a_free_cluster_is_locked_for_the_operation(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    op = take_lock(running(make_operation), ledger=aws)

    assert op.lockHeld is True
    assert aws.lock_holder(PROD)["holder"] == "exec-1"


def test_a_busy_cluster_makes_the_step_retry_with_the_holder_named(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    aws.acquire_lock(PROD, "exec-other", LEASE_SECONDS)
    op = running(make_operation)

    with pytest.raises(ClusterBusy, match="prod is being changed by exec-other"):
        take_lock(op, ledger=aws)

    assert op.lockHeld is False
    assert aws.lock_holder(PROD)["holder"] == "exec-other"


def test_waiting_longer_than_the_budget_ends_the_wait(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    # Given an operation that started at 09:00 and a cluster another run keeps busy (renewing its lease)
    op = running(make_operation)
    aws.acquire_lock(PROD, "exec-other", LEASE_SECONDS)

    # When it is still busy 1 h 59 min later, the step is retried
    fake_clock.advance(hours=1, minutes=59)
    aws.renew_lock(PROD, "exec-other", LEASE_SECONDS)
    with pytest.raises(ClusterBusy):
        take_lock(op, ledger=aws)

    # Then at 2 h, the lockWaitBudget, the wait ends
    fake_clock.advance(minutes=1)
    aws.renew_lock(PROD, "exec-other", LEASE_SECONDS)
    with pytest.raises(
        LockWaitExpired, match=r"held by exec-other.*for 7200 s, longer than the lockWaitBudget"
    ):
        take_lock(op, ledger=aws)


def test_the_budget_counts_from_the_start_of_the_operation_not_the_first_attempt(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    # An operation that waited 3 h for approval finds the cluster busy on its first attempt
    op = running(make_operation, startedAt=fake_clock.now() - timedelta(hours=3))
    aws.acquire_lock(PROD, "exec-other", LEASE_SECONDS)

    with pytest.raises(LockWaitExpired):
        take_lock(op, ledger=aws)


def test_a_cluster_freed_in_time_is_locked_even_after_waiting(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    op = running(make_operation)
    aws.acquire_lock(PROD, "exec-other", LEASE_SECONDS)
    fake_clock.advance(minutes=90)
    aws.release_lock(PROD, "exec-other")

    assert take_lock(op, ledger=aws).lockHeld is True


def test_release_frees_the_cluster_only_for_the_holder(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    aws.acquire_lock(PROD, "exec-other", LEASE_SECONDS)
    never_held = running(make_operation)

    release_lock(never_held, ledger=aws)
    assert aws.lock_holder(PROD)["holder"] == "exec-other"

    aws.release_lock(PROD, "exec-other")
    holder = take_lock(running(make_operation), ledger=aws)
    released = release_lock(holder, ledger=aws)
    assert released.lockHeld is False
    assert aws.lock_holder(PROD) is None


# ---- settling a caught error ------------------------------------------------------------------


def caught(op: Operation, error: str, cause: str | None) -> Operation:
    """The state after a `Catch` with `ResultPath: $.error`, as the notify step reads it."""
    return Operation.model_validate({**op.model_dump(mode="json"), "error": {"Error": error, "Cause": cause}})


def awaiting_approval(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> tuple[Operation, str]:
    """An operation paused on prod's approval; the state as the workflow holds it, and the approval id."""
    op = make_operation(approval={"required": True, "timeoutSeconds": 12 * 3600})
    state = op.model_dump(mode="json")  # the request step's changes stay out of the workflow state
    request_approval(
        op,
        "token-123",
        ledger=aws,
        policy=POLICY,
        notifier=RecordingNotifier(fake_clock.now),
        console_url="https://console.example",
    )
    assert op.approval.id is not None
    return Operation.model_validate(state), op.approval.id


def test_a_rejection_ends_the_operation_rejected_by_the_approver(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    # Given bob rejects the waiting operation
    op, approval_id = awaiting_approval(aws, fake_clock, make_operation)
    sfn = RecordingSfn()
    fake_clock.advance(minutes=20)
    decide(approval_id, "reject", "bob", "sale this week", ledger=aws, policy=POLICY, sfn=sfn)
    ((_, failure),) = sfn.calls

    # When the Catch hands the task failure to the notify step
    settled = settle_from_error(caught(op, failure["error"], failure["cause"]), ledger=aws)

    # Then it ended rejected, saying by whom and why
    assert (settled.status, settled.reason) == ("rejected", "approval_rejected")
    assert settled.message == "Rejected by bob (sale this week)."
    assert (settled.approval.id, settled.approval.decision, settled.approval.by) == (
        approval_id,
        "rejected",
        "bob",
    )
    assert settled.steps[-1].outcome == "rejected by bob"
    assert {n.channel for n in settled.notifications} == {"slack", "sns", "eventbridge"}


def test_nobody_deciding_in_time_ends_the_operation_and_expires_the_request(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    op, approval_id = awaiting_approval(aws, fake_clock, make_operation)
    fake_clock.advance(hours=12)

    settled = settle_from_error(caught(op, "States.Timeout", None), ledger=aws)

    assert (settled.status, settled.reason) == ("rejected", "approval_timeout")
    assert settled.message == "Nobody decided within 12 h."
    assert settled.approval.id == approval_id
    assert [n.status for n in settled.notifications] == ["awaiting_approval"] * 3
    assert aws.get_approval(approval_id)["status"] == "expired"
    # and an approver arriving now is told so
    with pytest.raises(ApprovalError, match="already expired"):
        decide(approval_id, "approve", "alice", None, ledger=aws, policy=POLICY, sfn=RecordingSfn())


def test_a_step_timeout_outside_an_approval_is_an_internal_error(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    op = make_operation(error={"Error": "States.Timeout", "Cause": "Lambda timed out"})

    settled = settle_from_error(op, ledger=aws)

    assert (settled.status, settled.reason) == ("failed", "internal_error")
    assert settled.message == "States.Timeout: Lambda timed out"


def test_a_lock_wait_that_expired_ends_failed_cluster_busy_with_the_lambda_message(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    message = "prod stayed busy (held by exec-other) for 7200 s, longer than the lockWaitBudget of 7200 s"
    cause = json.dumps({"errorMessage": message, "errorType": "LockWaitExpired", "stackTrace": ["..."]})
    op = make_operation(error={"Error": "LockWaitExpired", "Cause": cause})

    settled = settle_from_error(op, ledger=aws)

    assert (settled.status, settled.reason, settled.message) == ("failed", "cluster_busy", message)


def test_any_other_error_ends_failed_internal_error_naming_it(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    cause = json.dumps({"errorMessage": "'addonVersion'", "errorType": "KeyError"})
    op = make_operation(error={"Error": "KeyError", "Cause": cause})

    settled = settle_from_error(op, ledger=aws)

    assert (settled.status, settled.reason) == ("failed", "internal_error")
    assert settled.message == "KeyError: 'addonVersion'"


def test_a_huge_error_cause_is_cut_short(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    op = make_operation(error={"Error": "States.TaskFailed", "Cause": "x" * 10_000})

    settled = settle_from_error(op, ledger=aws)

    assert settled.message is not None and len(settled.message) <= 500


def test_an_operation_that_already_ended_keeps_its_outcome(
    aws: Ledger, fake_clock: FakeClock, make_operation: Callable[..., Operation]
) -> None:
    op = make_operation(
        status="blocked", reason="incompatible", error={"Error": "States.TaskFailed", "Cause": "late"}
    )

    settled = settle_from_error(op, ledger=aws)

    assert (settled.status, settled.reason) == ("blocked", "incompatible")
