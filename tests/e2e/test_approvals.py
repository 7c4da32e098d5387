"""Approvals in the whole local system: the simulated approver presses Approve or Reject in Slack,
which sends a signed request to the approval API; the receiver queues it, the decider records it
through decide(), the workflow resumes or stops, and the operation's one Slack message follows."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import APPROVER, COREDNS_FROM, COREDNS_TO, addon_event, policy_cluster, scenario


def approval_scenario() -> dict[str, Any]:
    return scenario(
        policy_clusters=[policy_cluster("dev", approval="required", approvers=[APPROVER])],
        watcher={"runs": []},
        events=[addon_event(COREDNS_TO)],
        approvals={"mode": "auto", "delay": "+10m"},
    )


def history(result: Any, op_text: str) -> list[dict[str, Any]]:
    """Every version of the one message whose first text mentions `op_text`, in order."""
    first = next(m for m in result.report["slackMessages"] if op_text in m.get("text", ""))
    return [m for m in result.report["slackMessages"] if m.get("ts") == first.get("ts")]


def test_a_slack_approval_resumes_the_run_and_the_message_follows_it(rehearse: Any) -> None:
    result = rehearse(approval_scenario(), approve="auto")
    (op,) = result.operations(component="coredns")
    assert op["status"] == "succeeded"
    assert (op["approval"]["decision"], op["approval"]["by"]) == ("approved", "alice")
    assert result.report["approvals"] == [
        {"approval": op["approval"]["id"], "decision": "approved", "by": "alice", "via": "slack"}
    ]
    versions = history(result, f"coredns {COREDNS_FROM}")
    assert [m["method"] for m in versions] == ["chat.postMessage"] + ["chat.update"] * (len(versions) - 1)
    texts = [m["text"] for m in versions]
    assert "Approval needed" in texts[0]
    assert any("approved by alice" in t for t in texts[1:])
    assert "applying" in " ".join(texts) and "verifying" in " ".join(texts)
    final = str(versions[-1]["blocks"])
    assert "dev" in final and "coredns" in final and COREDNS_TO in final and "alice" in final
    # the buttons are gone once decided: no update after the request carries them
    assert all("approval:" not in str(m["blocks"]) for m in versions[1:])


def test_a_slack_rejection_with_a_reason_stops_the_run_and_says_who_and_why(rehearse: Any) -> None:
    result = rehearse(approval_scenario(), approve="reject")
    (op,) = result.operations(component="coredns")
    assert (op["status"], op["reason"]) == ("rejected", "approval_rejected")
    assert (op["approval"]["by"], op["approval"]["reason"]) == (
        "alice",
        "rehearsal run with --approve reject",
    )
    assert "UpdateAddon" not in result.simulator.calls
    final = history(result, f"coredns {COREDNS_FROM}")[-1]
    assert "rejected" in final["text"] and "alice" in str(final["blocks"])
    assert "rehearsal run with --approve reject" in str(final["blocks"])
