"""The drain rehearsal on small hand-built clusters: which pods would block EKS, under which PDB, why."""

from __future__ import annotations

from typing import Any

import pytest
from autopatch.logic.drain import (
    LIVE_PODS_FIELD_SELECTOR,
    NODEGROUP_LABEL,
    BlockingPod,
    DrainInputs,
    LabelSelector,
    NodeInfo,
    PdbInfo,
    PodInfo,
    explain_eviction_failure,
    read_drain_inputs,
    rehearse_drain,
)

NS = "shop"
OLD = ("ip-10-0-1-1", "ip-10-0-1-2", "ip-10-0-1-3", "ip-10-0-1-4")
NEW = "ip-10-0-9-9"  # a node of another group


def nodes(*names: str) -> list[NodeInfo]:
    return [NodeInfo(name, hostname=name) for name in names or OLD]


def replica(app: str, index: int, node: str, **fields: Any) -> PodInfo:
    """A Deployment's pod: owned by its ReplicaSet `<app>-7d9f8`, labelled as the template says."""
    return PodInfo(
        NS,
        f"{app}-7d9f8-{index}",
        node,
        {"app": app, "pod-template-hash": "7d9f8"},
        owner_kind="ReplicaSet",
        owner_name=f"{app}-7d9f8",
        **fields,
    )


def bare(name: str, node: str, app: str = "debug", **fields: Any) -> PodInfo:
    return PodInfo(NS, name, node, {"app": app}, **fields)


def budget(
    name: str,
    app: str,
    *,
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
    expected: int,
    healthy: int | None = None,
    policy: str = "IfHealthyBudget",
) -> PdbInfo:
    """A PDB selecting `app=<app>`, with the status the disruption controller would write."""
    healthy = expected if healthy is None else healthy
    if min_available is not None:
        desired = int(min_available)
    else:
        desired = max(0, expected - int(max_unavailable or 0))
    return PdbInfo(
        NS,
        name,
        LabelSelector((("app", app),)),
        min_available=min_available,
        max_unavailable=max_unavailable,
        unhealthy_pod_eviction_policy=policy,
        disruptions_allowed=max(0, healthy - desired),
        current_healthy=healthy,
        desired_healthy=desired,
        expected_pods=expected,
    )


def rehearse(pods: list[PodInfo], pdbs: list[PdbInfo], max_unavailable: int = 1, **kwargs: Any) -> Any:
    return rehearse_drain(DrainInputs("apps", nodes(), pods, pdbs), max_unavailable=max_unavailable, **kwargs)


def blocked(plan: Any) -> dict[str, tuple[str | None, str]]:
    return {b.pod: (b.pdb, b.why) for b in plan.blocking}


# ---- selectors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("selector", "labels", "selected"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "tier": "front"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "cart"}, False),
        (
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "cart"]}]},
            {"app": "cart"},
            True,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}, {}, False),
        (
            {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
            {"app": "cart"},
            True,
        ),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, {}, True),
        ({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}, {"canary": ""}, True),
        ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, {"canary": "1"}, False),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}],
            },
            {"app": "web", "track": "canary"},
            False,
        ),
        ({}, {"anything": "at-all"}, True),  # policy/v1: an empty selector selects the whole namespace
        ({"matchExpressions": [{"key": "app", "operator": "Like", "values": ["w"]}]}, {"app": "w"}, False),
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": []}]}, {"app": "w"}, False),
    ],
)
def test_pdb_selectors_select_as_the_eviction_api_does(
    selector: dict[str, Any], labels: dict[str, str], selected: bool
) -> None:
    pdb = PdbInfo.from_api({"metadata": {"name": "p", "namespace": NS}, "spec": {"selector": selector}})

    assert pdb.selects(PodInfo(NS, "pod", OLD[0], labels)) is selected


def test_a_null_selector_and_another_namespace_select_nothing() -> None:
    no_selector = PdbInfo.from_api({"metadata": {"name": "p", "namespace": NS}, "spec": {"minAvailable": 1}})
    everything = PdbInfo.from_api({"metadata": {"name": "p", "namespace": NS}, "spec": {"selector": {}}})

    assert not no_selector.selects(PodInfo(NS, "pod", OLD[0], {"app": "web"}))
    assert not everything.selects(PodInfo("other", "pod", OLD[0], {"app": "web"}))


# ---- what EKS does not evict ----------------------------------------------------------------
def test_daemonset_and_mirror_pods_stay_and_never_block() -> None:
    daemon = PodInfo("kube-system", "aws-node-x1", OLD[0], {"app": "aws-node"}, owner_kind="DaemonSet")
    mirror = PodInfo("kube-system", "etcd-ip", OLD[0], {"app": "aws-node"}, mirror=True)
    strict = budget("aws-node", "aws-node", max_unavailable=0, expected=2)
    strict = PdbInfo("kube-system", "aws-node", strict.selector, max_unavailable=0, expected_pods=2)

    plan = rehearse([daemon, mirror, replica("web", 0, OLD[0])], [strict])

    assert plan.blocking == []
    assert plan.nodes[OLD[0]] == ["shop/web-7d9f8-0"]
    assert plan.staying_pods == 2
    assert plan.bare_pods == []  # a mirror pod has no controller, but EKS leaves it alone


# ---- budgets at zero ------------------------------------------------------------------------
def test_min_available_equal_to_the_replicas_blocks_every_replica_on_the_group() -> None:
    pods = [replica("cart", i, OLD[i]) for i in range(3)]

    plan = rehearse(pods, [budget("cart", "cart", min_available=3, expected=3)])

    assert blocked(plan) == {
        f"shop/cart-7d9f8-{i}": ("shop/cart", "minAvailable 3 with 3 replicas: allows 0 disruptions")
        for i in range(3)
    }
    assert plan.blocking[0] == BlockingPod(
        "shop/cart-7d9f8-0", OLD[0], "shop/cart", "minAvailable 3 with 3 replicas: allows 0 disruptions"
    )


def test_max_unavailable_zero_blocks_even_with_one_replica_off_the_group() -> None:
    pods = [replica("db", 0, OLD[0]), replica("db", 1, NEW)]

    plan = rehearse(pods, [budget("db", "db", max_unavailable=0, expected=2)])

    assert blocked(plan) == {
        "shop/db-7d9f8-0": ("shop/db", "maxUnavailable 0 with 2 replicas: allows 0 disruptions")
    }


def test_a_single_replica_under_min_available_1_blocks() -> None:
    plan = rehearse([replica("api", 0, OLD[1])], [budget("api", "api", min_available=1, expected=1)])

    assert blocked(plan) == {
        "shop/api-7d9f8-0": ("shop/api", "minAvailable 1 with 1 replica: allows 0 disruptions")
    }
    assert [f.subject for f in plan.single_replica_workloads] == ["Deployment shop/api"]


def test_a_budget_at_zero_because_a_pod_is_not_ready_blocks_and_names_that_pod() -> None:
    # minAvailable 2 of 3 would allow one disruption, but web-2 (on another group's node) is not Ready.
    pods = [replica("web", 0, OLD[0]), replica("web", 1, OLD[1]), replica("web", 2, NEW, ready=False)]

    plan = rehearse(pods, [budget("web", "web", min_available=2, expected=3, healthy=2)])

    assert set(blocked(plan)) == {"shop/web-7d9f8-0", "shop/web-7d9f8-1"}
    pdb, why = blocked(plan)["shop/web-7d9f8-0"]
    assert pdb == "shop/web"
    assert why == (
        "minAvailable 2 with 3 replicas would allow 1 disruption, but 1 pod is not Ready now "
        f"(shop/web-7d9f8-2 on {NEW}): allows 0 disruptions until it is"
    )


def test_an_unready_pod_of_an_otherwise_healthy_application_leaves_without_spending_the_budget() -> None:
    # currentHealthy 2 >= desiredHealthy 2: the eviction API lets the unready pod go (IfHealthyBudget).
    pods = [replica("web", 0, NEW), replica("web", 1, NEW), replica("web", 2, OLD[2], ready=False)]

    plan = rehearse(pods, [budget("web", "web", min_available=2, expected=3, healthy=2)])

    assert plan.blocking == []
    assert plan.nodes[OLD[2]] == ["shop/web-7d9f8-2"]


def test_an_unready_pod_is_held_when_the_application_is_already_below_its_budget() -> None:
    pods = [
        replica("web", 0, NEW),
        replica("web", 1, OLD[1], ready=False),
        replica("web", 2, OLD[2], ready=False),
    ]

    plan = rehearse(pods, [budget("web", "web", min_available=2, expected=3, healthy=1)])

    assert set(blocked(plan)) == {"shop/web-7d9f8-1", "shop/web-7d9f8-2"}
    assert "2 pods are not Ready now" in blocked(plan)["shop/web-7d9f8-1"][1]


def test_always_allow_lets_unready_pods_go_but_not_healthy_ones() -> None:
    pods = [replica("web", 0, OLD[0]), replica("web", 1, OLD[1], ready=False)]
    pdb = budget("web", "web", min_available=2, expected=2, healthy=1, policy="AlwaysAllow")

    plan = rehearse(pods, [pdb])

    assert set(blocked(plan)) == {"shop/web-7d9f8-0"}


def test_pending_and_terminating_pods_are_deleted_without_a_budget_check() -> None:
    pods = [
        replica("cart", 0, OLD[0], phase="Pending", ready=False),
        replica("cart", 1, OLD[1], terminating=True),
        replica("cart", 2, OLD[2]),
    ]

    plan = rehearse(pods, [budget("cart", "cart", min_available=3, expected=3, healthy=1)])

    assert set(blocked(plan)) == {"shop/cart-7d9f8-2"}
    assert plan.nodes[OLD[0]] == ["shop/cart-7d9f8-0"]


def test_a_percentage_budget_over_pods_without_a_controller_cannot_be_computed() -> None:
    pods = [bare("worker-a", OLD[0], app="worker"), bare("worker-b", OLD[1], app="worker")]
    stuck = PdbInfo(NS, "worker", LabelSelector((("app", "worker"),)), max_unavailable="50%")

    plan = rehearse(pods, [stuck])

    assert set(blocked(plan)) == {"shop/worker-a", "shop/worker-b"}
    assert "the disruption controller cannot count the expected replicas" in blocked(plan)["shop/worker-a"][1]


# ---- several budgets ------------------------------------------------------------------------
def test_a_pod_selected_by_two_pdbs_is_refused_whatever_their_budgets() -> None:
    pods = [replica("web", 0, OLD[0]), replica("web", 1, NEW)]
    team = PdbInfo(
        NS, "team-wide", LabelSelector(), max_unavailable=5, disruptions_allowed=5, expected_pods=2
    )

    plan = rehearse(pods, [budget("web", "web", max_unavailable=1, expected=2), team])

    assert blocked(plan) == {
        "shop/web-7d9f8-0": (
            "shop/team-wide, shop/web",
            "selected by 2 PodDisruptionBudgets (shop/team-wide, shop/web); the eviction API refuses a pod "
            "with more than one (HTTP 500)",
        )
    }
    assert plan.would_force_evict == ["shop/web-7d9f8-0"]


# ---- budgets that allow disruptions, and the batch ------------------------------------------
def test_every_replica_on_old_nodes_in_one_batch_still_drains_when_the_budget_allows_one() -> None:
    # EKS may drain all three nodes at once; evictions of web go one at a time, each after the
    # previous replacement (on a new node) is Ready.
    pods = [replica("web", i, OLD[i]) for i in range(3)]

    plan = rehearse(pods, [budget("web", "web", max_unavailable=1, expected=3)], max_unavailable=3)

    assert plan.blocking == []
    assert plan.would_force_evict == []
    assert plan.pods_to_evict == 3
    [queue] = plan.budget_queues
    assert (queue.pdb, queue.allowed, queue.pods_in_batch, queue.rounds) == ("shop/web", 1, 3, 3)


def test_the_worst_batch_is_the_one_holding_most_of_a_budgets_pods() -> None:
    pods = [replica("web", 0, OLD[0]), replica("web", 1, OLD[0]), replica("web", 2, OLD[1])]
    pods += [replica("web", 3, OLD[2]), replica("web", 4, OLD[3])]
    pdb = budget("web", "web", max_unavailable=1, expected=5)

    assert rehearse(pods, [pdb], max_unavailable=1).budget_queues[0].pods_in_batch == 2
    assert rehearse(pods, [pdb], max_unavailable=2).budget_queues[0].pods_in_batch == 3


def test_pods_without_a_controller_spend_the_budget_for_good() -> None:
    # minAvailable 1 of 3 bare pods allows 2 disruptions, but nothing recreates them: the third stays.
    pods = [bare(f"batch-{i}", OLD[i], app="batch") for i in range(3)]

    plan = rehearse(pods, [budget("batch", "batch", min_available=1, expected=3)])

    assert set(blocked(plan)) == {"shop/batch-0", "shop/batch-1", "shop/batch-2"}
    why = blocked(plan)["shop/batch-0"][1]
    assert why.startswith(
        "minAvailable 1 allows 2 disruptions and 3 of its pods on the group will not come back"
    )
    assert "shop/batch-0: no controller recreates it" in why
    assert why.endswith("in the worst order 1 of its 3 pods on the group stay on their nodes")
    assert plan.would_force_evict == ["shop/batch-0", "shop/batch-1", "shop/batch-2"]


def test_a_budget_left_over_after_the_pods_that_do_not_come_back_is_enough() -> None:
    pods = [bare("batch-0", OLD[0], app="batch"), replica("batch", 1, OLD[1]), replica("batch", 2, OLD[2])]

    plan = rehearse(pods, [budget("batch", "batch", min_available=1, expected=3)])

    assert plan.blocking == []
    assert [f.subject for f in plan.bare_pods] == ["Pod shop/batch-0"]


def test_a_replacement_pinned_to_an_old_node_never_becomes_ready() -> None:
    pods = [
        replica("cache", 0, OLD[0], pinned_hosts=(OLD[0],)),
        replica("cache", 1, OLD[1]),
        replica("cache", 2, NEW),
    ]

    plan = rehearse(pods, [budget("cache", "cache", max_unavailable=1, expected=3)])

    assert set(blocked(plan)) == {"shop/cache-7d9f8-0", "shop/cache-7d9f8-1"}
    assert f"its replacement is pinned to {OLD[0]}, which is being replaced" in plan.blocking[0].why


def test_only_the_named_old_nodes_are_drained() -> None:
    pods = [replica("cart", 0, OLD[0]), replica("cart", 1, OLD[1])]

    plan = rehearse(pods, [budget("cart", "cart", min_available=2, expected=2)], old_nodes=[OLD[1]])

    assert list(plan.nodes) == [OLD[1]]
    assert set(blocked(plan)) == {"shop/cart-7d9f8-1"}


# ---- recommended findings -------------------------------------------------------------------
def test_bare_pods_are_deleted_and_not_recreated_but_do_not_block() -> None:
    plan = rehearse([bare("debug-shell", OLD[3])], [])

    assert plan.blocking == []
    assert [(f.subject, f.note) for f in plan.bare_pods] == [("Pod shop/debug-shell", f"on {OLD[3]}")]
    check = {c.name: c for c in plan.checks()}["bare_pods"]
    assert (check.severity, check.passed) == ("recommended", False)
    assert check.detail == (
        f"Will be deleted and not recreated: no controller (1 pod): Pod shop/debug-shell (on {OLD[3]})"
    )


def test_workloads_without_a_pdb_that_one_batch_can_take_down_entirely_come_first() -> None:
    pods = [replica("web", 0, OLD[0]), replica("web", 1, OLD[1])]  # both on old nodes
    pods += [replica("api", 0, OLD[2]), replica("api", 1, NEW)]  # one replica stays up elsewhere

    plan = rehearse(pods, [], max_unavailable=2)

    assert [(f.subject, f.note) for f in plan.workloads_without_pdb] == [
        (
            "Deployment shop/web",
            "all 2 replicas on 2 old nodes: with maxUnavailable 2 one batch can evict them all at once",
        ),
        ("Deployment shop/api", "2 replicas, 1 Ready off the old nodes"),
    ]
    assert rehearse(pods, [], max_unavailable=1).workloads_without_pdb[1].note == "2 replicas on 2 old nodes"


def test_single_replicas_missing_readiness_probes_and_cordon_tolerations_are_reported_by_workload() -> None:
    pods = [
        replica("api", 0, OLD[0], readiness_probe=False),
        replica("web", 0, OLD[0], readiness_probe=False),
        replica("web", 1, OLD[1], readiness_probe=False),
        replica("agent", 0, OLD[2], tolerates_cordon=True),
        replica("agent", 1, OLD[3], tolerates_cordon=True),
    ]

    plan = rehearse(pods, [budget("web", "web", max_unavailable=1, expected=2)])

    assert [f.subject for f in plan.single_replica_workloads] == ["Deployment shop/api"]
    assert [(f.subject, f.pods) for f in plan.pods_without_readiness_probe] == [
        ("Deployment shop/api", ("shop/api-7d9f8-0",)),
        ("Deployment shop/web", ("shop/web-7d9f8-0", "shop/web-7d9f8-1")),
    ]
    assert [f.subject for f in plan.workloads_tolerating_cordon] == ["Deployment shop/agent"]
    assert [f.subject for f in plan.workloads_without_pdb] == ["Deployment shop/agent", "Deployment shop/api"]


# ---- checks ---------------------------------------------------------------------------------
def test_checks_name_the_blocking_pods_with_their_pdb_and_why_up_to_the_limit() -> None:
    pods = [replica("cart", i, OLD[i % 4]) for i in range(5)]
    plan = rehearse(pods, [budget("cart", "cart", min_available=5, expected=5)])

    checks = plan.checks(limit=2)

    assert [(c.name, c.severity) for c in checks] == [
        ("drain_rehearsal", "required"),
        ("bare_pods", "recommended"),
        ("single_replica_workloads", "recommended"),
        ("workloads_without_pdb", "recommended"),
        ("pods_without_readiness_probe", "recommended"),
        ("workloads_tolerating_cordon", "recommended"),
    ]
    drain = checks[0]
    assert not drain.passed and drain.reason == "drain_blocked"
    assert drain.detail == (
        "5 pods on 4 nodes of node group apps would block the drain (EKS gives up after 15 minutes with "
        "PodEvictionFailure; force=true would delete them): "
        f"shop/cart-7d9f8-0 on {OLD[0]}, shop/cart-7d9f8-1 on {OLD[1]} "
        "(PDB shop/cart: minAvailable 5 with 5 replicas: allows 0 disruptions); +3 more"
    )
    assert all(c.passed for c in checks[1:])


def test_a_clear_drain_passes_and_says_what_stays() -> None:
    pods = [replica("web", i, OLD[i]) for i in range(2)]
    pods.append(PodInfo("kube-system", "kube-proxy-a", OLD[0], {}, owner_kind="DaemonSet", owner_name="kp"))

    drain = rehearse(pods, [budget("web", "web", max_unavailable=1, expected=2)], max_unavailable=2).checks()[
        0
    ]

    assert drain.passed and drain.reason is None
    assert drain.detail.startswith(
        "All 2 pods on 4 old nodes of node group apps can be evicted, 2 nodes at a time; "
        "1 DaemonSet and mirror pods stay. Slowest budget: PDB shop/web allows 1 disruption"
    )


# ---- after a PodEvictionFailure -------------------------------------------------------------
def test_an_eviction_failure_is_explained_by_the_pods_left_and_the_pdbs_that_held_them() -> None:
    pods = [
        replica("cart", 0, OLD[0]),
        replica("cart", 1, NEW),
        replica("web", 0, OLD[0], terminating=True),
        replica("agent", 0, OLD[0], tolerates_cordon=True),
        PodInfo("kube-system", "aws-node-a", OLD[0], {}, owner_kind="DaemonSet", owner_name="aws-node"),
    ]
    inputs = DrainInputs("apps", nodes(), pods, [budget("cart", "cart", min_available=2, expected=2)])

    lines = explain_eviction_failure(inputs, [OLD[0], OLD[1], "ip-10-0-7-7"])

    assert lines == [
        f"{OLD[0]}: shop/cart-7d9f8-0 is held by PDB shop/cart: minAvailable 2 with 2 replicas: "
        "allows 0 disruptions",
        f"{OLD[0]}: 2 pods are still here that no budget holds now (shop/agent-7d9f8-0, shop/web-7d9f8-0); "
        "1 is terminating (shop/web-7d9f8-0); shop/agent-7d9f8-0 tolerates node.kubernetes.io/unschedulable, "
        "so replacements can start again on this cordoned node",
        f"{OLD[1]}: no pods left to evict now; they left after EKS stopped waiting",
        "ip-10-0-7-7: no longer a node of node group apps (replaced or terminated)",
    ]


def test_an_eviction_failure_names_pods_under_two_pdbs_and_those_a_retry_can_evict() -> None:
    pods = [replica("web", 0, OLD[1]), replica("api", 0, OLD[1]), replica("api", 1, NEW)]
    everything = PdbInfo(NS, "everything", LabelSelector(), max_unavailable=1, disruptions_allowed=1)
    pdbs = [budget("api", "api", max_unavailable=1, expected=2), everything]
    only_web = [budget("web", "web", max_unavailable=1, expected=1)]

    lines = explain_eviction_failure(DrainInputs("apps", nodes(), pods, pdbs), [OLD[1]])
    retry = explain_eviction_failure(DrainInputs("apps", nodes(), pods, only_web), [OLD[1]])

    assert lines == [
        f"{OLD[1]}: shop/api-7d9f8-0 is selected by 2 PodDisruptionBudgets (shop/api, shop/everything); "
        "the eviction API refuses a pod with more than one (HTTP 500)",
        f"{OLD[1]}: 1 pod is still here that no budget holds now (shop/web-7d9f8-0); "
        "1 is under a PDB that allows a disruption now: a retry can evict it",  # shop/everything
    ]
    assert retry == [
        f"{OLD[1]}: 2 pods are still here that no budget holds now (shop/api-7d9f8-0, shop/web-7d9f8-0); "
        "1 is under a PDB that allows a disruption now: a retry can evict it"
    ]


# ---- reading --------------------------------------------------------------------------------
def api_pod(name: str, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"app": "web", "pod-template-hash": "5c6d"},
            "ownerReferences": [
                {"kind": "ReplicaSet", "name": "web-5c6d", "controller": True, "uid": "1"},
                {"kind": "ConfigMap", "name": "not-a-controller", "uid": "2"},
            ],
            "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {
            "nodeName": OLD[0],
            "containers": [{"name": "main", "image": "web:1", "readinessProbe": {"httpGet": {"port": 80}}}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    for path, value in extra.items():
        section, key = path.split("__")
        obj[section][key] = value
    return obj


def test_pods_are_read_into_what_the_rehearsal_needs() -> None:
    web = PodInfo.from_api(api_pod("web-5c6d-a"))
    static = PodInfo.from_api(
        api_pod("kube-apiserver", metadata__annotations={"kubernetes.io/config.mirror": "abc"})
    )
    pinned = PodInfo.from_api(
        api_pod(
            "local-0",
            spec__affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [OLD[1]]}
                                ]
                            }
                        ]
                    }
                }
            },
            spec__tolerations=[{"operator": "Exists"}],
        )
    )
    deleting = PodInfo.from_api(api_pod("gone", metadata__deletionTimestamp="2026-11-23T09:00:00Z"))

    assert (web.key, web.node, web.workload, web.ready, web.readiness_probe) == (
        "shop/web-5c6d-a",
        OLD[0],
        "Deployment shop/web",
        True,
        True,
    )
    assert static.mirror and not static.drained
    assert pinned.pinned_hosts == (OLD[1],) and pinned.tolerates_cordon
    assert deleting.terminating and not deleting.budget_checked


def test_pdbs_are_read_with_their_rule_status_and_policy() -> None:
    pdb = PdbInfo.from_api(
        {
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "minAvailable": "50%",
                "selector": {"matchLabels": {"app": "web"}},
                "unhealthyPodEvictionPolicy": "AlwaysAllow",
            },
            "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3},
        }
    )

    assert (pdb.key, pdb.rule, pdb.unhealthy_pod_eviction_policy) == (
        "shop/web",
        "minAvailable 50%",
        "AlwaysAllow",
    )
    assert (pdb.disruptions_allowed, pdb.current_healthy, pdb.desired_healthy, pdb.expected_pods) == (
        1,
        3,
        2,
        3,
    )


class RecordingLister:
    def __init__(self, objects: dict[str, list[dict[str, Any]]]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str | None, str | None, str | None]] = []

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        self.calls.append((kind, namespace, label_selector, field_selector))
        return self.objects.get(kind, [])


def test_read_lists_the_groups_nodes_then_every_pdb_and_every_live_pod_once() -> None:
    kube = RecordingLister(
        {
            "Node": [{"metadata": {"name": OLD[0], "labels": {"kubernetes.io/hostname": OLD[0]}}}],
            "Pod": [api_pod("web-5c6d-a"), api_pod("web-5c6d-b")],
            "PodDisruptionBudget": [{"metadata": {"name": "web", "namespace": NS}, "spec": {"selector": {}}}],
        }
    )

    inputs = read_drain_inputs(kube, nodegroup="apps")

    assert kube.calls == [
        ("Node", None, f"{NODEGROUP_LABEL}=apps", None),
        ("PodDisruptionBudget", None, None, None),
        ("Pod", None, None, LIVE_PODS_FIELD_SELECTOR),
    ]
    assert [n.name for n in inputs.nodes] == [OLD[0]]
    assert [p.name for p in inputs.pods] == ["web-5c6d-a", "web-5c6d-b"]
    assert inputs.pods[0].labels is inputs.pods[1].labels  # one copy of labels per workload
    assert [p.key for p in inputs.pdbs] == ["shop/web"]


def test_a_group_with_no_nodes_reads_nothing_else() -> None:
    kube = RecordingLister({})

    inputs = read_drain_inputs(kube, nodegroup="gone")

    assert [call[0] for call in kube.calls] == ["Node"]
    assert rehearse_drain(inputs, max_unavailable=1).blocking == []
