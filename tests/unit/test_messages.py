"""What people read in Slack and e-mail about an operation, for every way it can end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from autopatch.messages import approval_blocks, operation_blocks, plain_text
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
