"""The drain rehearsal's reads against the fake Kubernetes API: the fewest LIST requests, what they find."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from autopatch.clients.k8s_token import get_token
from autopatch.clients.kube import KubeReader
from autopatch.logic.drain import read_drain_inputs, rehearse_drain

from rehearsal.kube.server import FakeKubeApiServer
from rehearsal.kube.store import KubeStore

CLUSTER = "prod-eu"
LAMBDA_KEY, LAMBDA_SECRET = "AKIAAUTOPATCHLAMBDA0", "lambda-secret"
GROUP_NODES, OTHER_NODES = 20, 5
APPS, REPLICAS = 40, 15  # 600 running pods, one PDB per app
COMPLETED_PODS = 30  # a CronJob's finished pods: not listed


@functools.cache
def token() -> str:
    session = boto3.session.Session(
        aws_access_key_id=LAMBDA_KEY, aws_secret_access_key=LAMBDA_SECRET, region_name="eu-west-1"
    )
    return get_token(CLUSTER, session=session)


def node_name(group: str, index: int) -> str:
    return f"ip-10-0-{0 if group == 'apps' else 1}-{index}.eu-west-1.compute.internal"


def pod(
    namespace: str, name: str, node: str, owner: str, labels: dict[str, str], phase: str
) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [
                {"kind": owner.split("/")[0], "name": owner.split("/")[1], "controller": True}
            ],
        },
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "app:1", "readinessProbe": {}}]},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": "True" if phase == "Running" else "False"}],
        },
    }


@pytest.fixture(scope="module")
def store() -> KubeStore:
    store = KubeStore(CLUSTER, "1.31")
    for group, count in (("apps", GROUP_NODES), ("system", OTHER_NODES)):
        for index in range(count):
            name = node_name(group, index)
            labels = {"eks.amazonaws.com/nodegroup": group, "kubernetes.io/hostname": name}
            store.put({"kind": "Node", "metadata": {"name": name, "labels": labels}}, "kubelet")
    slot = 0
    for app in range(APPS):
        namespace, name = f"team-{app % 4}", f"app-{app:02d}"
        labels = {"app": name, "pod-template-hash": "6f7c8"}
        for replica in range(REPLICAS):
            node = node_name("apps", slot % GROUP_NODES)
            owner = f"ReplicaSet/{name}-6f7c8"
            store.put(pod(namespace, f"{name}-6f7c8-{replica:02d}", node, owner, labels, "Running"))
            slot += 1
        # app-00 is built to block: minAvailable equal to its replicas.
        min_available = REPLICAS if app == 0 else REPLICAS - 2
        store.put(
            {
                "kind": "PodDisruptionBudget",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"minAvailable": min_available, "selector": {"matchLabels": {"app": name}}},
                "status": {
                    "expectedPods": REPLICAS,
                    "currentHealthy": REPLICAS,
                    "desiredHealthy": min_available,
                    "disruptionsAllowed": REPLICAS - min_available,
                },
            }
        )
    for index in range(COMPLETED_PODS):
        node = node_name("apps", index % GROUP_NODES)
        labels = {"job-name": f"report-{index}"}
        store.put(pod("batch", f"report-{index}-x", node, f"Job/report-{index}", labels, "Succeeded"))
    return store


@pytest.fixture
def server(store: KubeStore) -> Iterator[FakeKubeApiServer]:
    with FakeKubeApiServer(
        store, cluster_name=CLUSTER, credentials={LAMBDA_KEY: LAMBDA_SECRET}, readonly_key_ids={LAMBDA_KEY}
    ) as server:
        yield server


@pytest.mark.parametrize("page_size", [500, 100])
def test_the_rehearsal_reads_with_the_fewest_list_requests(server: FakeKubeApiServer, page_size: int) -> None:
    with KubeReader.connect(server.endpoint, None, token(), page_size=page_size) as reader:
        inputs = read_drain_inputs(reader, nodegroup="apps")

    listed = {"nodes": GROUP_NODES, "poddisruptionbudgets": APPS, "pods": APPS * REPLICAS}
    minimum = sum(math.ceil(count / page_size) for count in listed.values())
    assert len(server.requests) == minimum  # 1 + 1 + 2 pages of 500; 1 + 1 + 6 pages of 100
    assert {caller for caller, _, _ in server.requests} == {LAMBDA_KEY}
    assert {method for _, method, _ in server.requests} == {"GET"}
    by_path = Counter(path for _, _, path in server.requests)
    assert by_path == {
        "/api/v1/nodes": math.ceil(GROUP_NODES / page_size),
        "/apis/policy/v1/poddisruptionbudgets": math.ceil(APPS / page_size),
        "/api/v1/pods": math.ceil(APPS * REPLICAS / page_size),  # cluster-wide: never one list per node
    }
    assert len(inputs.nodes) == GROUP_NODES
    assert len(inputs.pods) == APPS * REPLICAS  # the finished Job pods were left out by the API
    assert len(inputs.pdbs) == APPS


def test_what_the_reads_find_blocks_on_the_pdb_built_to_block(server: FakeKubeApiServer) -> None:
    with KubeReader.connect(server.endpoint, None, token(), page_size=500) as reader:
        plan = rehearse_drain(read_drain_inputs(reader, nodegroup="apps"), max_unavailable=4)

    assert plan.pods_to_evict == APPS * REPLICAS
    assert len(plan.nodes) == GROUP_NODES
    assert {b.pdb for b in plan.blocking} == {"team-0/app-00"}
    assert sorted(plan.would_force_evict) == [f"team-0/app-00-6f7c8-{i:02d}" for i in range(REPLICAS)]
    assert plan.blocking[0].why == "minAvailable 15 with 15 replicas: allows 0 disruptions"
    assert plan.workloads_without_pdb == []
