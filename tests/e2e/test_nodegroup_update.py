"""The node group workflow, end to end in the local engine: EKS AMI releases roll managed node groups."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import APPROVER, policy_cluster, scenario

OLD = "1.31.14-20260625"
NEW = "1.31.14-20260714"  # the newest release of the data for Kubernetes 1.31


def ng_cluster(*, workloads: list[dict[str, Any]], pod_changes: list[dict[str, Any]] | None = None) -> dict:
    return {
        "name": "dev",
        "version": "1.31",
        "nodes": 0,
        "addons": [],
        "nodegroups": [
            {"name": "workers", "releaseVersion": OLD, "nodes": 3, "subnets": [{"az": "a"}, {"az": "b"}]}
        ],
        "workloads": workloads,
        "podChanges": pod_changes or [],
    }


def only(items: list[dict]) -> dict:
    assert len(items) == 1, items
    return items[0]


def nodegroup_calls(result: Any, operation: str) -> list[dict]:
    return [params for op, params in result.simulator.call_log if op == operation]


def web(**pdb: Any) -> dict[str, Any]:
    return {"namespace": "shop", "name": "web", "replicas": 3, "nodegroup": "workers", "pdb": pdb}


def test_a_new_ami_release_rolls_the_node_group(rehearse):
    result = rehearse(scenario(clusters=[ng_cluster(workloads=[web(maxUnavailable=1)])]))

    op = only(result.report["operations"])
    assert (op["component"], op["from"], op["to"]) == ({"kind": "nodegroup", "name": "workers"}, OLD, NEW)
    assert (op["status"], op["reason"]) == ("succeeded", "updated")
    (call,) = nodegroup_calls(result, "UpdateNodegroupVersion")
    assert (call["version"], call["releaseVersion"], call["force"]) == ("1.31", NEW, False)
    (cluster,) = result.report["clusters"]
    (group,) = cluster["nodegroups"]
    assert group["releaseVersion"] == NEW
    events = [e["event"] for e in group["timeline"]]
    for step in ("launched", "ready", "cordoned", "terminated"):
        assert step in events
    nodes = result.simulator.store_of("dev").list("Node", labels={"eks.amazonaws.com/nodegroup": "workers"})
    assert nodes and all(n["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.31.14") for n in nodes)
    drain = next(c for c in op["checks"] if c["name"] == "drain_rehearsal")
    assert drain["passed"]


def test_a_pdb_that_allows_no_disruption_blocks_before_any_change(rehearse):
    result = rehearse(scenario(clusters=[ng_cluster(workloads=[web(minAvailable=3)])]))

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("blocked", "drain_blocked")
    drain = next(c for c in op["checks"] if c["name"] == "drain_rehearsal")
    assert not drain["passed"] and "shop/web" in drain["detail"] and "shop/web-" in drain["detail"]
    assert nodegroup_calls(result, "UpdateNodegroupVersion") == []
    message = next(m for m in result.report["slackMessages"] if "blocked" in m["text"])
    assert "shop/web-" in str(message["blocks"])


def test_force_needs_an_approval_that_lists_exactly_the_pods_it_deletes(rehearse):
    data = scenario(
        clusters=[ng_cluster(workloads=[web(minAvailable=3)])],
        policy_clusters=[policy_cluster("dev", allowForce=True, approvers=[APPROVER])],
    )

    result = rehearse(data, approve="auto")

    op = only(result.report["operations"])
    assert (op["status"], op["approval"]["by"]) == ("succeeded", "alice")
    (call,) = nodegroup_calls(result, "UpdateNodegroupVersion")
    assert call["force"] is True
    forced = op["nodegroup"]["forcePods"]
    assert forced and all(p.startswith("shop/web-") for p in forced)
    request = next(m for m in result.report["slackMessages"] if "Approval needed" in m["text"])
    assert all(p in str(request["blocks"]) for p in forced)
    (group,) = result.report["clusters"][0]["nodegroups"]
    force_deleted = {e["pod"] for e in group["timeline"] if e["event"].startswith("force-evicted")}
    assert force_deleted <= set(forced)


def test_a_block_that_appears_mid_roll_fails_with_the_pods_and_pdb_named(rehearse):
    # Preflight sees a healthy budget; two of the three pods turn unready once the roll has begun.
    changes = [{"at": "+2m", "workload": "shop/web", "pod": i, "ready": False} for i in (0, 1)]
    result = rehearse(scenario(clusters=[ng_cluster(workloads=[web(minAvailable=2)], pod_changes=changes)]))

    op = only(result.report["operations"])
    assert (op["status"], op["reason"]) == ("failed", "pod_eviction_failure")
    assert op["update"]["errorCode"] == "PodEvictionFailure"
    assert "shop/web-" in op["message"] and "shop/web" in op["message"]
    explained = " ".join(op["nodegroup"]["evictionFailure"])
    assert "PodDisruptionBudget" in explained or "PDB" in explained
    assert not [i for i in result.ledger if i["sk"] == "LOCK"]


def test_node_groups_the_watcher_cannot_follow_are_listed_not_failed(rehearse):
    cluster = ng_cluster(workloads=[])
    cluster["nodegroups"].append(
        {
            "name": "legacy",
            "releaseVersion": "1.31.14-20260625",
            "nodes": 1,
            "customAmiId": "ami-0abc1234def567890",
        }
    )
    result = rehearse(scenario(clusters=[cluster]))

    (watcher_pass,) = result.report["watcherPasses"]
    (not_tracked,) = watcher_pass["notTracked"]
    assert (not_tracked["nodegroup"], not_tracked["amiType"]) == ("legacy", "CUSTOM")
    assert "control-plane upgrade" in not_tracked["why"]
    assert [op["component"]["name"] for op in result.report["operations"]] == ["workers"]


def test_the_markdown_report_lists_untracked_groups_and_each_node_of_the_roll(rehearse, tmp_path):
    from rehearsal.report import markdown

    cluster = ng_cluster(workloads=[web(maxUnavailable=1)])
    cluster["nodegroups"].append(
        {"name": "legacy", "releaseVersion": OLD, "nodes": 1, "customAmiId": "ami-0abc1234def567890"}
    )
    result = rehearse(scenario(clusters=[cluster]))

    text = markdown(result.report)

    assert "## Node groups not tracked by release version" in text and "dev/legacy (CUSTOM)" in text
    assert f"## Node group dev/workers: {NEW}" in text
    rows = [line for line in text.splitlines() if line.startswith("| ip-")]
    assert len(rows) >= 6  # three old nodes terminated, at least three new ones launched
