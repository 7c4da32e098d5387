"""Control-plane upgrades in the local engine: the real cluster-upgrade ASL and handlers against the
simulated EKS (UpdateClusterVersion, insights, served APIs) and the fake Kubernetes API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.conftest import ACCOUNT, APPROVER, REGION, policy_cluster, scenario

SCENARIOS = Path(__file__).parents[2] / "scenarios"
CRONJOB_V1BETA1 = {
    "apiVersion": "batch/v1beta1",
    "kind": "CronJob",
    "metadata": {"name": "nightly-report", "namespace": "reports"},
    "spec": {
        "schedule": "0 2 * * *",
        "jobTemplate": {
            "spec": {
                "template": {
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "containers": [
                            {"name": "report", "image": "public.ecr.aws/docker/library/busybox:1.36"}
                        ],
                    }
                }
            }
        },
    },
}


def eos_event(
    cluster_name: str, current: str, target: str, *, at: str = "+0m", deadline: str = "2026-03-23T00:00:00Z"
) -> dict[str, Any]:
    return {
        "at": at,
        "detail-type": "EKS Version End Of Support Approaching",
        "detail": {
            "clusterName": cluster_name,
            "accountId": ACCOUNT,
            "region": REGION,
            "component": {"kind": "control-plane", "name": "control-plane"},
            "currentVersion": current,
            "targetVersion": target,
            "detectedAt": "2026-03-05T09:00:00Z",
            "deadline": deadline,
            "supportPhase": "extended",
            "supportType": "EXTENDED",
            "thresholdDays": 30,
        },
    }


def upgrade_ops(result: Any) -> list[dict[str, Any]]:
    return [op for op in result.report["operations"] if op["component"]["kind"] == "control-plane"]


def two_hop_scenario() -> dict[str, Any]:
    return scenario(
        now="2026-03-05T09:00:00Z",
        policy_clusters=[policy_cluster("legacy", upgradeTarget="1.31")],
        clusters=[
            {
                "name": "legacy",
                "version": "1.29",
                "nodes": 0,
                "addons": [
                    {"name": "vpc-cni", "version": "v1.18.3-eksbuild.1"},
                    {
                        "name": "coredns",
                        "version": "v1.11.1-eksbuild.9",
                        "edits": [
                            {
                                "object": "ConfigMap kube-system/coredns",
                                "path": ".data.Corefile",
                                "replace": ["cache 30", "cache 15"],
                            }
                        ],
                    },
                    {"name": "kube-proxy", "version": "v1.29.15-eksbuild.16"},
                ],
                "nodegroups": [{"name": "workers", "releaseVersion": "1.29.15-20260304", "nodes": 2}],
                "workloads": [{"namespace": "shop", "name": "web", "replicas": 2, "nodegroup": "workers"}],
            }
        ],
        watcher={"runs": []},
        events=[eos_event("legacy", "1.29", "1.31")],
    )


def test_two_hops_control_plane_then_addons_then_nodegroups(rehearse: Any) -> None:
    result = rehearse(two_hop_scenario())
    (upgrade,) = upgrade_ops(result)
    assert (upgrade["status"], upgrade["reason"]) == ("succeeded", "upgraded"), upgrade["message"]
    assert [(h["from"], h["to"], h["status"]) for h in upgrade["hops"]] == [
        ("1.29", "1.30", "succeeded"),
        ("1.30", "1.31", "succeeded"),
    ]
    for hop in upgrade["hops"]:
        # control plane, then add-ons, then node groups: each part starts after the one before ended
        d = hop["durations"]
        assert d["controlPlane"] and d["controlPlane"] > 0
        assert {c["name"] for c in hop["nodegroups"]} == {"workers"}
        assert all(c["status"] == "succeeded" for c in hop["addons"] + hop["nodegroups"])
        assert all(c["toVersion"].startswith(hop["to"]) for c in hop["nodegroups"])
        for addon in hop["addons"]:
            assert addon["endedAt"] <= hop["nodegroups"][0]["startedAt"]
    # The first hop moved kube-proxy to a 1.30 build, the second to a 1.31 build.
    kube_proxy = [c["toVersion"] for h in upgrade["hops"] for c in h["addons"] if c["name"] == "kube-proxy"]
    assert [v.split(".")[1] for v in kube_proxy] == ["30", "31"]
    # Every child step is an operation of its own, pointing at the upgrade.
    children = [op for op in result.report["operations"] if op.get("parent") == upgrade["id"]]
    assert len(children) == sum(len(h["addons"]) + len(h["nodegroups"]) for h in upgrade["hops"])
    assert all(op["status"] == "succeeded" for op in children)
    # Final state: 1.31 everywhere; the customer's CoreDNS edit survived both hops.
    (cluster,) = result.report["clusters"]
    assert cluster["kubernetesVersion"] == "1.31"
    assert all(
        g["kubernetesVersion"] == "1.31" and g["releaseVersion"].startswith("1.31.")
        for g in cluster["nodegroups"]
    )
    corefile = result.simulator.store_of("legacy").value(
        "ConfigMap", "kube-system", "coredns", ("data", "Corefile")
    )
    assert "cache 15" in corefile
    edits = [e for e in cluster["preserved_edits"]]
    assert edits and all(e["preserved"] for e in edits)
    # One lock for the whole upgrade: no UpdateClusterVersion while anything else was updating.
    calls = [op for op, _ in result.simulator.call_log if op.startswith("Update")]
    assert calls.count("UpdateClusterVersion") == 2
    # The Slack message of the upgrade names both hops.
    finished = [m for m in result.report["slackMessages"] if "upgraded" in str(m) or "1.29 → 1.30" in str(m)]
    assert finished


def test_cronjob_last_applied_as_batch_v1beta1_blocks_the_1_25_hop(rehearse: Any) -> None:
    data = scenario(
        now="2025-01-15T09:00:00Z",
        policy_clusters=[policy_cluster("old")],
        clusters=[
            {
                "name": "old",
                "version": "1.24",
                "nodes": 0,
                "addons": [],
                "nodegroups": [
                    {
                        "name": "workers",
                        "releaseVersion": "1.24.17-20250103",
                        "amiType": "AL2_x86_64",
                        "nodes": 2,
                    }
                ],
                "objects": [CRONJOB_V1BETA1],
            }
        ],
        watcher={"runs": []},
        events=[eos_event("old", "1.24", "1.25", deadline="2025-01-31T00:00:00Z")],
    )
    result = rehearse(data)
    (upgrade,) = upgrade_ops(result)
    assert (upgrade["status"], upgrade["reason"]) == ("blocked", "removed_api_in_use")
    check = next(c for c in upgrade["hops"][0]["checks"] if c["name"] == "removed_apis")
    assert "CronJob reports/nightly-report" in check["detail"] and "batch/v1" in check["detail"]
    assert "batch/v1beta1" in check["detail"]
    assert "CronJob reports/nightly-report" in upgrade["message"]
    # EKS's own insight for 1.25 is ERROR too, naming the deprecated API path.
    insight = next(c for c in upgrade["hops"][0]["checks"] if c["name"] == "upgrade_insights")
    assert not insight["passed"] and "/apis/batch/v1beta1/cronjobs" in insight["detail"]
    assert "UpdateClusterVersion" not in result.simulator.calls
    assert result.report["clusters"][0]["kubernetesVersion"] == "1.24"


def test_lagging_nodegroup_blocks_until_the_nodegroup_workflow_brings_it_up(rehearse: Any) -> None:
    """22 days before 1.30's end of extended support, its managed node group still on 1.29: the
    upgrade is blocked; the release watcher's AMI announcement rolls the group onto 1.30; a day later
    the end-of-support watcher announces the blocked upgrade again (retryAfter) and it goes through."""
    data = scenario(
        now="2026-07-01T09:00:00Z",
        policy_clusters=[policy_cluster("lagging")],
        clusters=[
            {
                "name": "lagging",
                "version": "1.30",
                "nodes": 0,
                "addons": [],
                "nodegroups": [{"name": "batch", "releaseVersion": "1.29.15-20260311", "nodes": 2}],
            }
        ],
        watcher={"runs": ["+0m", "+25h"]},
    )
    result = rehearse(data)
    first, second = sorted(upgrade_ops(result), key=lambda op: op["startedAt"])
    assert (first["status"], first["reason"]) == ("blocked", "nodegroup_version_lag")
    lag = next(c for c in first["hops"][0]["checks"] if c["name"] == "nodegroups_match_control_plane")
    assert "batch runs 1.29" in lag["detail"]
    rolls = [
        op
        for op in result.report["operations"]
        if op["component"] == {"kind": "nodegroup", "name": "batch"} and not op.get("parent")
    ]
    assert rolls and rolls[0]["status"] == "succeeded" and rolls[0]["to"].startswith("1.30.")
    assert rolls[0]["endedAt"] < second["startedAt"]
    again = result.report["endOfSupportPasses"][1]["announced"]
    assert len(again) == 1 and "retry after blocked (nodegroup_version_lag)" in again[0]["why"]
    assert (second["status"], second["reason"]) == ("succeeded", "upgraded"), second["message"]
    assert result.report["clusters"][0]["kubernetesVersion"] == "1.31"


def test_hop_with_approval_names_the_approver(rehearse: Any) -> None:
    data = two_hop_scenario()
    data["policy"]["clusters"] = [
        policy_cluster("legacy", upgradeTarget="next-minor", approval="required", approvers=[APPROVER])
    ]
    data["events"] = [eos_event("legacy", "1.29", "1.30")]
    result = rehearse(data, approve="auto")
    (upgrade,) = upgrade_ops(result)
    assert upgrade["status"] == "succeeded", upgrade["message"]
    (hop,) = upgrade["hops"]
    assert hop["approval"]["decision"] == "approved" and hop["approval"]["by"] == "alice"
    assert result.report["clusters"][0]["kubernetesVersion"] == "1.30"


def test_rejected_hop_changes_nothing(rehearse: Any) -> None:
    data = two_hop_scenario()
    data["policy"]["clusters"] = [policy_cluster("legacy", approval="required", approvers=[APPROVER])]
    data["events"] = [eos_event("legacy", "1.29", "1.30")]
    result = rehearse(data, approve="reject")
    (upgrade,) = upgrade_ops(result)
    assert (upgrade["status"], upgrade["reason"]) == ("rejected", "approval_rejected")
    assert "UpdateClusterVersion" not in result.simulator.calls
    assert result.report["clusters"][0]["kubernetesVersion"] == "1.29"


def test_end_of_support_watcher_announces_once_per_cluster(rehearse: Any) -> None:
    """30 days before 1.32's end of standard support: one event per cluster on 1.32, none on a re-run."""
    one_32 = {"version": "1.32", "nodes": 0, "addons": []}
    data = scenario(
        now="2026-02-21T09:00:00Z",  # 1.32 standard support ends 2026-03-23
        policy_clusters=[policy_cluster("a"), policy_cluster("b"), policy_cluster("c"), policy_cluster("d")],
        clusters=[
            {"name": "a", **one_32},
            {"name": "b", **one_32, "supportType": "STANDARD"},
            {"name": "c", "version": "1.33", "nodes": 0, "addons": []},
            {"name": "d", **one_32},
        ],
        watcher={"runs": ["+0m", "+2h"]},
    )
    result = rehearse(data)
    first, second = result.report["endOfSupportPasses"]
    assert sorted(a["cluster"] for a in first["announced"]) == ["a", "b", "d"]
    assert all(a["threshold"] == 30 and a["daysLeft"] in (29, 30) for a in first["announced"])
    assert second["announced"] == []
    events = [
        e for e in result.report["busEvents"] if e["detail-type"] == "EKS Version End Of Support Approaching"
    ]
    assert sorted(e["detail"]["clusterName"] for e in events) == ["a", "b", "d"]


def test_shipped_two_hop_scenario_asks_each_hop_and_frees_the_lock_while_waiting(rehearse: Any) -> None:
    data = yaml.safe_load((SCENARIOS / "upgrade-two-hops.yaml").read_text())
    result = rehearse(data)
    (upgrade,) = upgrade_ops(result)
    assert upgrade["status"] == "succeeded", upgrade["message"]
    assert [(h["to"], h["approval"]["decision"], h["approval"]["by"]) for h in upgrade["hops"]] == [
        ("1.30", "approved", "platform-lead"),
        ("1.31", "approved", "platform-lead"),
    ]
    steps = [s["name"] for s in upgrade["steps"]]
    # hop 2 asked its approver without holding the cluster: the lock was let go first, taken again after
    second_approval = [n for n, name in enumerate(steps) if name == "approval"][1]
    assert "release_lock" in steps[:second_approval] and "lock" in steps[second_approval:]
    assert result.report["clusters"][0]["kubernetesVersion"] == "1.31"


def test_shipped_removed_api_scenario_names_the_caller(rehearse: Any) -> None:
    data = yaml.safe_load((SCENARIOS / "upgrade-blocked-by-removed-api.yaml").read_text())
    result = rehearse(data)
    (upgrade,) = upgrade_ops(result)
    assert (upgrade["status"], upgrade["reason"]) == ("blocked", "removed_api_in_use")
    insight = next(c for c in upgrade["hops"][0]["checks"] if c["name"] == "upgrade_insights")
    assert "report-tool/2.3 (240 calls)" in insight["detail"]
    (slack,) = result.report["slackMessages"]
    text = json.dumps(slack)
    assert "removed_apis" in text and "CronJob reports/nightly-report" in text


def test_a_pdb_that_would_block_the_node_group_roll_blocks_the_hop_before_the_control_plane_moves(
    rehearse: Any,
) -> None:
    data = two_hop_scenario()
    data["clusters"][0]["workloads"] = [
        {
            "namespace": "shop",
            "name": "web",
            "replicas": 2,
            "nodegroup": "workers",
            "pdb": {"minAvailable": 2},
        }
    ]
    data["events"] = [eos_event("legacy", "1.29", "1.30")]
    result = rehearse(data)
    (upgrade,) = upgrade_ops(result)
    assert (upgrade["status"], upgrade["reason"]) == ("blocked", "drain_blocked")
    check = next(c for c in upgrade["hops"][0]["checks"] if c["name"] == "nodegroups_can_drain")
    assert "workers: shop/web-" in check["detail"] and "PDB" in check["detail"]
    assert "UpdateClusterVersion" not in result.simulator.calls
    assert result.report["clusters"][0]["kubernetesVersion"] == "1.29"
