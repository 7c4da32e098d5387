"""Whole workflows in the local engine: the real ASL, the real handlers, simulated EKS and Kubernetes."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from rehearsal.run import Rehearsal, RehearsalResult
from rehearsal.scenario import parse_scenario

ACCOUNT = "111122223333"
REGION = "eu-west-1"
COREDNS_FROM = "v1.11.4-eksbuild.22"
COREDNS_TO = "v1.11.4-eksbuild.24"
KUBE_PROXY_FROM = "v1.31.10-eksbuild.8"
KUBE_PROXY_TO = "v1.31.13-eksbuild.2"
APPROVER = {"name": "alice", "slackUserId": "U0ALICE", "email": "alice@example.com"}


def cluster(
    name: str = "dev",
    *,
    version: str = "1.31",
    addons: list[dict[str, Any]] | None = None,
    faults: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "nodes": 2,
        "addons": addons
        if addons is not None
        else [
            {
                "name": "coredns",
                "version": COREDNS_FROM,
                "edits": [
                    {
                        "object": "ConfigMap kube-system/coredns",
                        "path": ".data.Corefile",
                        "replace": ["cache 30", "cache 15"],
                    }
                ],
            }
        ],
        "faults": faults or [],
    }


def policy_cluster(name: str = "dev", **settings: Any) -> dict[str, Any]:
    return {"name": name, "accountId": ACCOUNT, "region": REGION, **settings}


def scenario(
    *,
    clusters: list[dict[str, Any]] | None = None,
    policy_clusters: list[dict[str, Any]] | None = None,
    defaults: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "name": "test",
        # 1.31 is four months from its end of extended support: no control-plane upgrade starts
        # by itself in these add-on and node group runs (tests/e2e/test_cluster_upgrade.py has those).
        "now": "2026-07-20T09:00:00Z",
        "accountId": ACCOUNT,
        "region": REGION,
        "policy": {
            "defaults": {"addons": ["vpc-cni", "coredns", "kube-proxy"], **(defaults or {})},
            "clusters": policy_clusters or [policy_clusters_default()],
        },
        "clusters": clusters or [cluster()],
        **extra,
    }


def policy_clusters_default() -> dict[str, Any]:
    return policy_cluster("dev")


def addon_event(
    target: str,
    *,
    name: str = "coredns",
    current: str = COREDNS_FROM,
    cluster_name: str = "dev",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "at": "+0m",
        "detail-type": "EKS Add-on Version Available",
        "detail": {
            "clusterName": cluster_name,
            "accountId": ACCOUNT,
            "region": REGION,
            "component": {"kind": "addon", "name": name},
            "currentVersion": current,
            "targetVersion": target,
            "detectedAt": "2026-07-20T09:00:00Z",
        },
        **extra,
    }


@pytest.fixture
def rehearse() -> Callable[..., RehearsalResult]:
    def run(data: dict[str, Any], approve: str | None = None) -> RehearsalResult:
        result = Rehearsal(parse_scenario(copy.deepcopy(data)), approve=approve).run()
        # A bug in a handler shows up here, not as a quietly failed operation.
        assert result.report["unexpectedErrors"] == []
        return result

    return run


def store_value(
    result: RehearsalResult, cluster_name: str, kind: str, namespace: str, name: str, path: tuple[str, ...]
) -> Any:
    return result.simulator.store_of(cluster_name).value(kind, namespace, name, path)


def addon_version(result: RehearsalResult, cluster_name: str, addon: str) -> str:
    return str(result.simulator.addon_state(cluster_name, addon)["version"])


def update_calls(result: RehearsalResult) -> list[dict[str, Any]]:
    return [params for op, params in result.simulator.call_log if op == "UpdateAddon"]
