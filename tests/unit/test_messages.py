"""What people read in Slack and e-mail about an operation, for every way it can end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from autopatch.messages import approval_blocks, operation_blocks, plain_text, state_of
from autopatch.models import Operation

CONSOLE = "https://console.aws.amazon.com/states/home"
FROM_TO = "v1.11.4-eksbuild.22 → v1.11.4-eksbuild.24"

# How each status ends, as the steps leave the record.
ENDINGS: dict[str, dict[str, Any]] = {
    "succeeded": {"reason": "updated", "message": "coredns runs v1.11.4-eksbuild.24."},
    "failed": {"reason": "update_failed", "message": "EKS reported the update Failed: AccessDenied: no."},
    "rolled_back": {"reason": "verify_failed", "message": "Back on v1.11.4-eksbuild.22 after it failed."},
    "rejected": {
        "reason": "approval_rejected",
        "message": "Rejected by bob (not during the sale).",
        "approval": {"required": True, "decision": "rejected", "by": "bob", "at": "2026-03-02T10:00:00Z"},
    },
    "skipped": {"reason": "duplicate", "message": "coredns v1.11.4-eksbuild.24 is already running."},
    "blocked": {"reason": "incompatible", "message": "Check target_compatible failed."},
    "running": {},
}
STATUS_WORDS = {
    "succeeded": "patched",
    "failed": "failed",
    "rolled_back": "rolled back",
    "rejected": "rejected",
    "skipped": "skipped",
    "blocked": "blocked",
    "running": "in progress",
}


def ended(make_operation: Callable[..., Operation], status: str, **extra: Any) -> Operation:
    return make_operation(status=status, **(ENDINGS[status] | extra))


def texts(payload: dict[str, Any]) -> Iterator[str]:
    """Every mrkdwn/plain text in a Block Kit payload."""
    for block in payload["blocks"]:
        if "text" in block:
            yield block["text"]["text"]
        for item in [*block.get("fields", []), *block.get("elements", [])]:
            if isinstance(item.get("text"), dict):
                yield item["text"]["text"]
            elif "text" in item:
                yield item["text"]


def section_texts(payload: dict[str, Any]) -> list[str]:
    return [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]


def checks(count: int, *, detail: str = "", passed: bool = False) -> list[dict[str, Any]]:
    return [
        {"name": f"check_{i:02d}", "severity": "required", "passed": passed, "detail": detail}
        for i in range(count)
    ]


def assert_within_slack_limits(payload: dict[str, Any]) -> None:
    assert len(payload["blocks"]) <= 50
    for text in section_texts(payload):
        assert len(text) <= 3000
    assert payload["text"]  # the notification fallback


@pytest.mark.parametrize("status", list(ENDINGS))
def test_the_slack_message_says_what_happened_to_what(
    make_operation: Callable[..., Operation], status: str
) -> None:
    op = ended(make_operation, status)

    payload = operation_blocks(op, CONSOLE)

    assert_within_slack_limits(payload)
    everything = "\n".join(texts(payload))
    assert "prod" in payload["text"] and "coredns" in payload["text"]
    assert STATUS_WORDS[status] in section_texts(payload)[0]
    assert FROM_TO in everything
    assert f"*Status*\n{status}" in everything
    assert "eu-west-1" in everything
    if op.reason:
        assert op.reason in everything


@pytest.mark.parametrize("status", list(ENDINGS))
def test_the_plain_text_says_what_happened_to_what(
    make_operation: Callable[..., Operation], status: str
) -> None:
    op = ended(make_operation, status)

    text = plain_text(op)

    assert text.splitlines()[0].startswith(f"prod: coredns {FROM_TO} {STATUS_WORDS[status]}")
    assert "Cluster:   prod (111122223333, eu-west-1)" in text
    assert "Component: addon coredns" in text
    assert "Version:   v1.11.4-eksbuild.22 -> v1.11.4-eksbuild.24" in text
    assert f"Status:    {status}" in text
    assert op.executionArn in text


def test_a_rejection_names_who_rejected(make_operation: Callable[..., Operation]) -> None:
    op = ended(make_operation, "rejected")

    assert "Rejected by bob." in "\n".join(texts(operation_blocks(op, CONSOLE)))
    assert "Rejected by bob." in plain_text(op)


def test_an_approved_update_names_who_approved(make_operation: Callable[..., Operation]) -> None:
    op = ended(
        make_operation,
        "succeeded",
        approval={"required": True, "decision": "approved", "by": "alice", "at": "2026-03-02T10:00:00Z"},
    )

    assert "Approved by alice." in "\n".join(texts(operation_blocks(op, CONSOLE)))
    assert "Approved by alice." in plain_text(op)


def test_an_update_without_approval_names_no_approver(make_operation: Callable[..., Operation]) -> None:
    op = ended(make_operation, "succeeded")

    text = plain_text(op)

    assert "Approved" not in text
    assert "Rejected" not in text


def test_preserved_customer_edits_are_counted(make_operation: Callable[..., Operation]) -> None:
    edit = {"object": "ConfigMap kube-system/coredns", "path": ".data.Corefile", "manager": "kubectl-edit"}
    op = ended(
        make_operation,
        "succeeded",
        preservedEdits=[
            {**edit, "before": "cache 15", "after": "cache 15"},
            {**edit, "path": ".data.extra", "before": "a", "after": None},
        ],
    )

    assert "Customer edits preserved: 1/2." in plain_text(op)


def test_the_message_links_the_execution(make_operation: Callable[..., Operation]) -> None:
    op = ended(make_operation, "failed")

    payload = operation_blocks(op, CONSOLE)

    link = payload["blocks"][-1]["elements"][0]["text"]
    assert link == f"<{CONSOLE}#/v2/executions/details/{op.executionArn}|execution exec-1>"


def test_a_long_check_list_shows_eight_and_counts_the_rest(make_operation: Callable[..., Operation]) -> None:
    op = ended(make_operation, "blocked", checks=checks(13, detail="not ready"))

    payload = operation_blocks(op, CONSOLE)

    (check_section,) = [t for t in section_texts(payload) if t.startswith("*Checks*")]
    lines = check_section.splitlines()
    assert len(lines) == 1 + 8 + 1
    assert lines[-1] == "+5 more"
    assert lines[1] == "⛔ check_00: not ready"


def test_passed_checks_show_no_detail_and_recommended_ones_warn(
    make_operation: Callable[..., Operation],
) -> None:
    op = ended(
        make_operation,
        "succeeded",
        checks=[
            {"name": "addon_active", "severity": "required", "passed": True, "detail": "ACTIVE"},
            {"name": "workloads_ready_before", "severity": "recommended", "passed": False, "detail": "1/2"},
        ],
    )

    (check_section,) = [t for t in section_texts(operation_blocks(op, CONSOLE)) if t.startswith("*Checks*")]

    # what needs a look comes first
    assert check_section.splitlines()[1:] == ["⚠️ workloads_ready_before: 1/2", "✅ addon_active"]


def test_failed_checks_come_first_so_the_limit_never_hides_them(
    make_operation: Callable[..., Operation],
) -> None:
    passing = [{"name": f"ok_{n}", "severity": "required", "passed": True, "detail": ""} for n in range(12)]
    failing = {"name": "removed_apis", "severity": "required", "passed": False, "detail": "CronJob a/b"}
    op = ended(make_operation, "blocked", checks=[*passing, failing])

    (check_section,) = [t for t in section_texts(operation_blocks(op, CONSOLE)) if t.startswith("*Checks*")]

    lines = check_section.splitlines()[1:]
    assert lines[0] == "⛔ removed_apis: CronJob a/b" and lines[-1] == "+5 more"


def test_huge_messages_and_check_details_stay_within_slack_limits(
    make_operation: Callable[..., Operation],
) -> None:
    op = ended(make_operation, "failed", message="x" * 10_000, checks=checks(40, detail="y" * 2_000))

    assert_within_slack_limits(operation_blocks(op, CONSOLE))
    assert_within_slack_limits(approval_blocks(op, "apr-1", ["alice"], CONSOLE))


def test_a_long_check_list_with_long_details_still_says_how_many_are_hidden(
    make_operation: Callable[..., Operation],
) -> None:
    op = ended(make_operation, "blocked", checks=checks(12, detail="z" * 600))

    (check_section,) = [t for t in section_texts(operation_blocks(op, CONSOLE)) if t.startswith("*Checks*")]

    assert check_section.endswith("+4 more")


# ---- approval requests ------------------------------------------------------------------------


def test_the_approval_request_names_the_change_and_its_approvers(
    make_operation: Callable[..., Operation],
) -> None:
    op = make_operation(approval={"required": True})

    payload = approval_blocks(op, "apr-Xy1", ["alice", "bob"], CONSOLE)

    assert_within_slack_limits(payload)
    ask = section_texts(payload)[0]
    assert f"prod coredns {FROM_TO}" in ask
    assert "Approvers: alice, bob." in ask
    assert "autopatch approve apr-Xy1 --as <name>" in ask


def test_approval_buttons_carry_the_approval_id(make_operation: Callable[..., Operation]) -> None:
    op = make_operation(approval={"required": True})

    payload = approval_blocks(op, "apr-Xy1", ["alice"], CONSOLE)

    (actions,) = [b for b in payload["blocks"] if b["type"] == "actions"]
    assert actions["block_id"] == "approval:apr-Xy1"
    assert {(e["action_id"], e["value"]) for e in actions["elements"]} == {
        ("approve", "apr-Xy1"),
        ("reject", "apr-Xy1"),
    }


# ---- one message per operation, in every state it goes through ----------------------------------

APPROVED = {
    "required": True,
    "id": "apr-Xy1",
    "decision": "approved",
    "by": "alice",
    "at": "2026-03-02T10:00Z",
}
REJECTED = {**APPROVED, "decision": "rejected", "by": "bob", "reason": "not during the sale"}
PENDING = {"required": True, "id": "apr-Xy1"}

# state: (the record as the run leaves it, what the message says, who decided)
STATES: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "awaiting_approval": ({"approval": PENDING}, "awaiting approval", None),
    "approved": ({"approval": APPROVED}, "approved by alice", "alice"),
    "applying": (
        {"approval": APPROVED, "update": {"id": "u-1", "status": "InProgress"}},
        "applying",
        "alice",
    ),
    "verifying": (
        {"approval": APPROVED, "update": {"id": "u-1"}, "verify": {"attempt": 1}},
        "verifying",
        "alice",
    ),
    "succeeded": ({**ENDINGS["succeeded"], "status": "succeeded", "approval": APPROVED}, "patched", "alice"),
    "failed": ({**ENDINGS["failed"], "status": "failed"}, "failed", None),
    "rolled_back": ({**ENDINGS["rolled_back"], "status": "rolled_back"}, "rolled back", None),
    "rejected": (
        {"status": "rejected", "reason": "approval_rejected", "approval": REJECTED},
        "rejected by bob",
        "bob",
    ),
    "timed_out": (
        {
            "status": "rejected",
            "reason": "approval_timeout",
            "message": "Nobody decided within 24 h.",
            "approval": PENDING,
        },
        "not approved in time",
        None,
    ),
    "blocked": ({**ENDINGS["blocked"], "status": "blocked"}, "blocked before any change", None),
    "skipped": ({**ENDINGS["skipped"], "status": "skipped"}, "skipped", None),
}
HUGE: dict[str, Any] = {"message": "x&<>" * 3_000, "checks": checks(40, detail="y" * 2_000)}


def in_state(make_operation: Callable[..., Operation], state: str, **extra: Any) -> Operation:
    record, _, _ = STATES[state]
    return make_operation(**(record | extra))


def message_of(op: Operation, state: str) -> dict[str, Any]:
    """What Slack shows in `state`: the approval request carries the buttons."""
    if state == "awaiting_approval":
        return approval_blocks(op, "apr-Xy1", ["alice", "bob"], CONSOLE)
    return operation_blocks(op, CONSOLE, state=state)


def plain_texts_of(value: Any) -> Iterator[dict[str, Any]]:
    """Every plain_text object anywhere in a payload (labels, placeholders, button texts)."""
    if isinstance(value, dict):
        if value.get("type") == "plain_text":
            yield value
        for item in value.values():
            yield from plain_texts_of(item)
    elif isinstance(value, list):
        for item in value:
            yield from plain_texts_of(item)


def assert_within_every_slack_limit(payload: dict[str, Any]) -> None:
    """Block Kit's documented limits for what these messages use."""
    assert 0 < len(payload["text"]) <= 4000
    assert len(payload["blocks"]) <= 50
    for block in payload["blocks"]:
        assert len(block.get("block_id", "")) <= 255
        if block["type"] == "section":
            assert "text" in block or "fields" in block
            if "text" in block:
                assert len(block["text"]["text"]) <= 3000
            assert len(block.get("fields", [])) <= 10
            assert all(len(f["text"]) <= 2000 for f in block.get("fields", []))
        elif block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
        elif block["type"] == "context":
            assert 0 < len(block["elements"]) <= 10
            assert all(len(e["text"]) <= 3000 for e in block["elements"])
        elif block["type"] == "actions":
            assert len(block["elements"]) <= 25
            for button in block["elements"]:
                assert len(button["text"]["text"]) <= 75
                assert len(button["value"]) <= 2000
                assert len(button["action_id"]) <= 255
        elif block["type"] == "input":
            assert len(block["label"]["text"]) <= 2000
            assert len(block["element"]["action_id"]) <= 255
        else:
            raise AssertionError(f"unexpected block type {block['type']}")
    for plain in plain_texts_of(payload["blocks"]):
        assert len(plain["text"]) <= 150


@pytest.mark.parametrize("state", list(STATES))
def test_every_state_names_what_where_where_it_stands_and_who_decided(
    make_operation: Callable[..., Operation], state: str
) -> None:
    _, words, decided_by = STATES[state]
    op = in_state(make_operation, state)

    payload = message_of(op, state)

    assert_within_every_slack_limit(payload)
    everything = "\n".join(texts(payload))
    assert "prod" in payload["text"] and "coredns" in payload["text"]
    assert "*Cluster*\nprod (eu-west-1)" in everything
    assert "*Component*\naddon coredns" in everything
    assert f"*Version*\n{FROM_TO}" in everything
    assert words in everything.lower()
    if decided_by:
        assert f"by {decided_by}" in everything
    else:
        assert "Approved by" not in everything and "Rejected by" not in everything
    assert f"|execution {op.id}>" in everything
    assert "Why now:" in everything


@pytest.mark.parametrize("state", list(STATES))
def test_every_state_stays_within_slack_limits_however_much_there_is_to_say(
    make_operation: Callable[..., Operation], state: str
) -> None:
    op = in_state(make_operation, state, **HUGE)

    payload = message_of(op, state)

    assert_within_every_slack_limit(payload)
    (check_section,) = [t for t in section_texts(payload) if t.startswith("*Checks*")]
    assert check_section.endswith(" more") and "\n+" in check_section


@pytest.mark.parametrize("state", [s for s in STATES if s != "awaiting_approval"])
def test_only_the_approval_request_carries_buttons(
    make_operation: Callable[..., Operation], state: str
) -> None:
    payload = message_of(in_state(make_operation, state), state)

    assert not [b for b in payload["blocks"] if b["type"] in ("actions", "input")]


@pytest.mark.parametrize("state", list(STATES))
def test_the_state_is_read_from_the_record_when_not_given(
    make_operation: Callable[..., Operation], state: str
) -> None:
    op = in_state(make_operation, state)

    assert state_of(op) == state
    if state != "awaiting_approval":
        assert operation_blocks(op, CONSOLE) == operation_blocks(op, CONSOLE, state=state)


def test_the_status_field_says_where_a_running_operation_stands(
    make_operation: Callable[..., Operation],
) -> None:
    op = in_state(make_operation, "applying")

    assert "*Status*\napplying" in "\n".join(texts(operation_blocks(op, CONSOLE)))


def test_a_timeout_says_plainly_that_nobody_decided(make_operation: Callable[..., Operation]) -> None:
    op = in_state(make_operation, "timed_out", approval={**PENDING, "timeoutSeconds": 7200})

    payload = operation_blocks(op, CONSOLE)

    everything = "\n".join(texts(payload))
    assert "Nobody decided within 2 h (approval_timeout), so nothing changed." in everything
    assert "*Status*\nrejected (approval_timeout)" in everything
    assert payload["text"] == f"prod: coredns {FROM_TO} not approved in time"
    assert "Nobody decided within 2 h (approval_timeout)" in plain_text(op)


def test_a_rejection_gives_the_reason_once(make_operation: Callable[..., Operation]) -> None:
    op = in_state(make_operation, "rejected", message="Rejected by bob (not during the sale).")

    everything = "\n".join(texts(operation_blocks(op, CONSOLE)))

    assert "Rejected by bob: not during the sale." in everything
    assert everything.count("not during the sale") == 1


def test_the_approval_request_asks_for_an_optional_reason_that_reject_carries(
    make_operation: Callable[..., Operation],
) -> None:
    op = in_state(make_operation, "awaiting_approval")

    payload = approval_blocks(op, "apr-Xy1", ["alice"], CONSOLE)

    (reason,) = [b for b in payload["blocks"] if b["type"] == "input"]
    assert reason["block_id"] == "reason:apr-Xy1" and reason["optional"] is True
    assert reason["element"]["type"] == "plain_text_input" and reason["element"]["action_id"] == "reason"
    kinds = [b["type"] for b in payload["blocks"]]
    assert kinds.index("input") < kinds.index("actions")  # in the same message as the buttons
    (actions,) = [b for b in payload["blocks"] if b["type"] == "actions"]
    assert [(e["action_id"], e["value"], e["text"]["text"]) for e in actions["elements"]] == [
        ("approve", "apr-Xy1", "Approve"),
        ("reject", "apr-Xy1", "Reject"),
    ]


def test_an_approval_request_for_a_control_plane_hop_names_the_hop_and_the_support_status(
    make_operation: Callable[..., Operation],
) -> None:
    hop = {"fromVersion": "1.29", "toVersion": "1.30", "status": "running"}
    op = make_operation(
        component={"kind": "control-plane", "name": "control-plane"},
        fromVersion="1.29",
        toVersion="1.31",
        approval=PENDING,
        hops=[hop],
        support={
            "versionStatus": "EXTENDED_SUPPORT",
            "supportType": "EXTENDED",
            "endOfExtendedSupport": "2026-11-26T00:00:00Z",
        },
    )

    payload = approval_blocks(op, "apr-Xy1", ["alice"], CONSOLE)

    assert_within_every_slack_limit(payload)
    everything = "\n".join(texts(payload))
    assert "Approval needed: prod control-plane 1.29 → 1.30" in everything
    assert "• 1.29 → 1.30: running" in everything
    assert "1.29 is in extended support (billed at the higher rate) until 2026-11-26" in everything
    assert "nearing its end of support" in everything
