"""The add-on update workflow, end to end in the local engine."""

from __future__ import annotations

import json

from tests.e2e.conftest import (
    APPROVER,
    COREDNS_FROM,
    COREDNS_TO,
    KUBE_PROXY_FROM,
    KUBE_PROXY_TO,
    addon_event,
    addon_version,
    cluster,
    policy_cluster,
    scenario,
    store_value,
    update_calls,
)

COREFILE = ("ConfigMap", "kube-system", "coredns", ("data", "Corefile"))


def only(items: list[dict]) -> dict:
    assert len(items) == 1, items
    return items[0]


def test_new_version_is_applied_with_preserve_and_the_customer_edit_survives(rehearse):
    # Given dev's CoreDNS one build behind, with a customer's `cache 15` in the Corefile
    result = rehearse(scenario())

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("succeeded", "updated")
    assert (op["from"], op["to"]) == (COREDNS_FROM, COREDNS_TO)
    assert addon_version(result, "dev", "coredns") == COREDNS_TO
    (call,) = update_calls(result)
    assert call["resolveConflicts"] == "PRESERVE"
    assert call["clientRequestToken"].startswith(op["id"])
    assert "serviceAccountRoleArn" not in call and "configurationValues" not in call
    assert "cache 15" in store_value(result, "dev", *COREFILE)
    (edit,) = op["preserved_edits"]
    assert (
        edit["field"] == ".data.Corefile" and edit["before"] == edit["after"] and "cache 15" in edit["after"]
    )
    assert [s["name"] for s in op["steps"]][:3] == ["validate", "claim", "preflight"]
    assert op["steps"][-2:][0]["name"] == "notify" and op["steps"][-1]["name"] == "release_lock"
    assert op["execution"]["status"] == "SUCCEEDED"
    assert any(COREDNS_TO in m["text"] and "patched" in m["text"] for m in result.report["slackMessages"])
    assert {n["channel"] for n in op["notifications"]} == {"slack", "sns", "eventbridge"}


def test_approver_rejects_and_nothing_changes(rehearse):
    data = scenario(policy_clusters=[policy_cluster("dev", approval="required", approvers=[APPROVER])])

    result = rehearse(data, approve="reject")

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("rejected", "approval_rejected")
    assert op["approval"]["decision"] == "rejected" and op["approval"]["by"] == "alice"
    assert addon_version(result, "dev", "coredns") == COREDNS_FROM
    assert update_calls(result) == []
    assert "apply" not in [s["name"] for s in op["steps"]]
    assert any("rejected" in m["text"] for m in result.report["slackMessages"])


def test_approved_run_names_the_approver(rehearse):
    data = scenario(policy_clusters=[policy_cluster("dev", approval="required", approvers=[APPROVER])])

    result = rehearse(data, approve="auto")

    op = only(result.report["operations"])
    assert op["status"] == "succeeded"
    assert op["approval"]["required"] and op["approval"]["by"] == "alice"
    assert op["approval"]["at"] is not None and op["approval"]["id"].startswith("apr-")
    approval_message = only([m for m in result.report["slackMessages"] if "Approval needed" in m["text"]])
    buttons = next(b for b in approval_message["blocks"] if b["type"] == "actions")["elements"]
    assert {b["value"] for b in buttons} == {op["approval"]["id"]}


def test_nobody_decides_within_the_timeout(rehearse):
    data = scenario(
        policy_clusters=[
            policy_cluster("dev", approval="required", approvers=[APPROVER], approvalTimeout="2h")
        ],
        approvals={"mode": "none"},
    )

    result = rehearse(data)

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("rejected", "approval_timeout")
    assert result.report["simulatedSeconds"] >= 2 * 3600
    assert update_calls(result) == []
    approval = result.ledger
    assert any(i.get("sk") == "APPROVAL" and i.get("status") == "expired" for i in approval)


def test_incompatible_target_is_blocked_before_any_change(rehearse):
    # v1.12.4 is offered for Kubernetes 1.33-1.34 only; dev runs 1.31
    data = scenario(watcher={"runs": []}, events=[addon_event("v1.12.4-eksbuild.1")])

    result = rehearse(data)

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("blocked", "incompatible")
    failed = [c for c in op["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["target_compatible"]
    assert update_calls(result) == []
    assert op["execution"]["status"] == "SUCCEEDED"


def test_downgrade_is_blocked(rehearse):
    data = scenario(watcher={"runs": []}, events=[addon_event("v1.11.4-eksbuild.2")])

    result = rehearse(data)

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("blocked", "downgrade")
    assert update_calls(result) == []


def test_event_for_a_cluster_outside_the_fleet_is_skipped(rehearse):
    data = scenario(watcher={"runs": []}, events=[addon_event(COREDNS_TO, cluster_name="elsewhere")])

    result = rehearse(data)

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("skipped", "unknown_cluster")
    assert result.report["eksCalls"] == {}


def test_failed_update_is_reported_with_the_reason_and_frees_the_cluster(rehearse):
    fault = {
        "addon": "coredns",
        "type": "update_fails",
        "errorCode": "InsufficientNumberOfReplicas",
        "message": "The add-on is unhealthy because it doesn't have the desired number of replicas.",
    }
    result = rehearse(scenario(clusters=[cluster(faults=[fault])]))

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("failed", "update_failed")
    assert "InsufficientNumberOfReplicas" in op["message"]
    assert addon_version(result, "dev", "coredns") == COREDNS_FROM
    slack = [m for m in result.report["slackMessages"] if "failed" in m["text"]]
    assert any("InsufficientNumberOfReplicas" in str(m["blocks"]) for m in slack)
    assert not [i for i in result.ledger if i["sk"] == "LOCK"]
    assert op["execution"]["status"] == "FAILED"


def test_pods_never_ready_rolls_back_and_keeps_the_edit(rehearse):
    fault = {"addon": "coredns", "type": "pods_never_ready", "toVersion": COREDNS_TO}
    result = rehearse(scenario(clusters=[cluster(faults=[fault])]))

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("rolled_back", "verify_failed")
    assert addon_version(result, "dev", "coredns") == COREDNS_FROM
    calls = update_calls(result)
    assert [(c["addonVersion"], c["resolveConflicts"]) for c in calls] == [
        (COREDNS_TO, "PRESERVE"),
        (COREDNS_FROM, "PRESERVE"),
    ]
    assert "cache 15" in store_value(result, "dev", *COREFILE)
    assert all(e["before"] == e["after"] for e in op["preserved_edits"])
    assert "rollback" in [s["name"] for s in op["steps"]]
    assert not [i for i in result.ledger if i["sk"] == "LOCK"]


def test_twenty_identical_events_start_one_update(rehearse):
    data = scenario(watcher={"runs": []}, events=[addon_event(COREDNS_TO, repeat=20)])

    result = rehearse(data)

    statuses = [(op["status"], op["reason"]) for op in result.report["operations"]]
    assert len(statuses) == 20
    assert statuses.count(("succeeded", "updated")) == 1
    assert statuses.count(("skipped", "duplicate")) == 19
    assert len(update_calls(result)) == 1


def test_two_addons_on_one_cluster_update_one_after_the_other(rehearse):
    addons = [
        {"name": "coredns", "version": COREDNS_FROM},
        {"name": "kube-proxy", "version": KUBE_PROXY_FROM},
    ]
    result = rehearse(scenario(clusters=[cluster(addons=addons)]))

    ops = result.report["operations"]
    assert sorted((op["component"]["name"], op["status"]) for op in ops) == [
        ("coredns", "succeeded"),
        ("kube-proxy", "succeeded"),
    ]
    assert addon_version(result, "dev", "kube-proxy") == KUBE_PROXY_TO

    def window(op: dict) -> tuple[str, str]:
        steps = {s["name"]: s for s in op["steps"]}
        return steps["apply"]["started"], steps["release_lock"]["ended"]

    first, second = sorted(window(op) for op in ops)
    assert first[1] <= second[0], "the second update started before the first released the cluster"


def test_cluster_busy_past_the_lock_budget_fails_with_cluster_busy(rehearse):
    addons = [
        {"name": "coredns", "version": COREDNS_FROM},
        {"name": "kube-proxy", "version": KUBE_PROXY_FROM},
    ]
    # Both updates take three hours: whichever takes the cluster first, the other waits too long.
    slow = [
        {"addon": name, "type": "update_duration", "seconds": 3 * 3600} for name in ("coredns", "kube-proxy")
    ]
    data = scenario(
        clusters=[cluster(addons=addons, faults=slow)],
        policy_clusters=[policy_cluster("dev", lockWaitBudget="30m")],
    )

    result = rehearse(data)

    outcomes = sorted((op["status"], op["reason"]) for op in result.report["operations"])
    assert outcomes == [("failed", "cluster_busy"), ("succeeded", "updated")]
    assert len(update_calls(result)) == 1
    busy = next(op for op in result.report["operations"] if op["reason"] == "cluster_busy")
    assert "lockWaitBudget" in busy["message"]


def test_malformed_event_fails_fast_and_touches_nothing(rehearse):
    bad = addon_event(COREDNS_TO)
    bad["detail"]["accountId"] = "not-an-account"
    del bad["detail"]["targetVersion"]
    data = scenario(watcher={"runs": []}, events=[bad])

    result = rehearse(data)

    assert result.report["operations"] == []
    (invalid,) = result.report["invalidEvents"]
    assert invalid["executionStatus"] == "FAILED" and invalid["error"] == "InvalidEvent"
    problems = " ".join(invalid["problems"])
    assert "accountId" in problems and "targetVersion" in problems
    assert result.report["eksCalls"] == {}
    assert result.report["slackMessages"] == []
    metrics = [json.loads(line) for line in result.lambda_log.splitlines() if '"_aws"' in line]
    assert any(m.get("InvalidEvents") == [1.0] or m.get("InvalidEvents") == 1.0 for m in metrics), metrics
    assert not [i for i in result.ledger if i["sk"] == "LOCK" or str(i["sk"]).startswith("OP#")]


def test_failed_target_is_announced_again_after_retry_after(rehearse):
    fault = {
        "addon": "coredns",
        "type": "update_fails",
        "errorCode": "ClusterUnreachable",
        "message": "timeout",
    }
    data = scenario(
        clusters=[cluster(faults=[fault])],
        defaults={"retryAfter": "24h"},
        watcher={"runs": ["+0m", "+12h", "+25h"]},
    )

    result = rehearse(data)

    ops = result.report["operations"]
    assert [(op["status"], op["reason"]) for op in ops] == [
        ("failed", "update_failed"),
        ("succeeded", "updated"),
    ]
    passes = result.report["watcherPasses"]
    assert [len(p["announced"]) for p in passes] == [1, 0, 1]
    assert addon_version(result, "dev", "coredns") == COREDNS_TO


def test_prompt_mode_asks_and_the_answer_decides():
    from rehearsal.run import Rehearsal
    from rehearsal.scenario import parse_scenario

    data = scenario(policy_clusters=[policy_cluster("dev", approval="required", approvers=[APPROVER])])
    questions: list[str] = []

    def answer(question: str) -> str:
        questions.append(question)
        return "y"

    result = Rehearsal(parse_scenario(data), approve="prompt", prompt=answer).run()

    (question,) = questions
    assert "dev" in question and COREDNS_FROM in question and COREDNS_TO in question
    op = only(result.report["operations"])
    assert (op["status"], op["approval"]["by"]) == ("succeeded", "alice")
