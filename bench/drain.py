"""Benchmark: the drain rehearsal of one node group of 500 nodes holding 15,000 pods, 1,000 PDBs.

The cluster is built in a KubeStore and served by the fake Kubernetes API server on 127.0.0.1; the
product reads it through its KubeReader (page size 500) with a read-only token, as a Lambda would.
The group runs 3 DaemonSet pods per node (1,500) and about 1,350 Deployments (13,500 pods, owned by
ReplicaSets, spread over the nodes) in 40 namespaces; 1,000 PDBs mix minAvailable and maxUnavailable,
numbers and percentages. A few are built to block, each in a different way: single replicas under
minAvailable 1, minAvailable equal to the replicas, maxUnavailable 0, a budget at 0 because a pod is
not Ready, and a Deployment selected by two PDBs. Twenty nodes of another group carry no pods.

Prints one JSON object: setup seconds, wall seconds of read + rehearsal (and where they went: the
server's time per step, the client's, the rehearsal's), peak RSS, the API requests made against the
fewest possible (Σ over the kinds listed of ceil(objects / 500)), the blocking pods found against
those built, and the targets. Exits 1 if a target is missed.

    .venv/bin/python bench/drain.py
"""

from __future__ import annotations

import functools
import json
import math
import os
import resource
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for entry in (ROOT, ROOT / "functions"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

import boto3  # noqa: E402
from autopatch.clients.k8s_token import get_token  # noqa: E402
from autopatch.clients.kube import KubeReader  # noqa: E402
from autopatch.logic import drain  # noqa: E402

import rehearsal.kube.server as fake_server_module  # noqa: E402
from rehearsal.kube.server import FakeKubeApiServer  # noqa: E402
from rehearsal.kube.store import KubeStore  # noqa: E402

CLUSTER = "bench-drain"
NODEGROUP = "apps"
NODES = 500
OTHER_NODES = 20
PODS = 15_000
PDBS = 1_000
NAMESPACES = 40
DAEMONSETS = ("aws-node", "kube-proxy", "ebs-csi-node")
PAGE_SIZE = 500
MAX_UNAVAILABLE = 10
LAMBDA_KEY, LAMBDA_SECRET = "AKIAAUTOPATCHLAMBDA0", "lambda-secret"
REPLICA_CYCLE = (3, 6, 2, 10, 4, 20, 8, 1, 15, 12, 5, 30, 9, 7, 2, 25, 4, 6, 11, 14)
TARGET_REQUEST_RATIO = 1.1
TARGET_WALL_SECONDS = 5.0
NOW = "2026-11-23T09:00:00Z"


# ---- the cluster ----------------------------------------------------------------------------
def node_name(index: int, group: str = NODEGROUP) -> str:
    return (
        f"ip-10-{1 if group == NODEGROUP else 2}-{index // 250}-{index % 250 + 1}.eu-west-1.compute.internal"
    )


def node(index: int, group: str) -> dict[str, Any]:
    name = node_name(index, group)
    zone = "eu-west-1" + "abc"[index % 3]
    return {
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "eks.amazonaws.com/nodegroup": group,
                "eks.amazonaws.com/nodegroup-image": "ami-0abcdef1234567890",
                "eks.amazonaws.com/capacityType": "ON_DEMAND",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": "m6i.2xlarge",
                "topology.kubernetes.io/zone": zone,
            },
        },
        "spec": {"providerID": f"aws:///{zone}/i-{index:017x}"},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
            "nodeInfo": {"kubeletVersion": "v1.31.4-eks-aeac579", "osImage": "Amazon Linux 2023"},
        },
    }


def pod(
    *,
    namespace: str,
    name: str,
    labels: dict[str, str],
    owner: tuple[str, str],
    node_name: str,
    image: str,
    ready: bool = True,
    readiness_probe: bool = True,
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "PORT", "value": "8080"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
    }
    if readiness_probe:
        container["readinessProbe"] = {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5}
    readiness = "True" if ready else "False"
    return {
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": owner[0],
                    "name": owner[1],
                    "uid": f"uid-{namespace}-{owner[1]}",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "nodeName": node_name,
            "serviceAccountName": "default",
            "containers": [container],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
            ],
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.1.0.1",
            "podIP": "10.1.128.1",
            "qosClass": "Burstable",
            "startTime": NOW,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": NOW},
                {"type": "Initialized", "status": "True", "lastTransitionTime": NOW},
                {"type": "ContainersReady", "status": readiness, "lastTransitionTime": NOW},
                {"type": "Ready", "status": readiness, "lastTransitionTime": NOW},
            ],
            "containerStatuses": [
                {
                    "name": "main",
                    "image": image,
                    "ready": ready,
                    "started": True,
                    "restartCount": 0 if ready else 14,
                    "state": {"running": {"startedAt": NOW}},
                }
            ],
        },
    }


def pdb(
    namespace: str,
    name: str,
    selector: dict[str, Any],
    rule: tuple[str, int | str],
    *,
    expected: int,
    healthy: int,
) -> dict[str, Any]:
    key, value = rule
    if key == "minAvailable":
        desired = math.ceil(expected * int(value[:-1]) / 100) if isinstance(value, str) else value
    else:
        unavailable = math.ceil(expected * int(value[:-1]) / 100) if isinstance(value, str) else value
        desired = max(0, expected - unavailable)
    return {
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {key: value, "selector": selector},
        "status": {
            "observedGeneration": 1,
            "expectedPods": expected,
            "currentHealthy": healthy,
            "desiredHealthy": desired,
            "disruptionsAllowed": max(0, healthy - desired),
        },
    }


def build_cluster(store: KubeStore) -> dict[str, int]:
    """The cluster as specified; returns what was built, with the pods built to block."""
    for index in range(NODES):
        store.put(node(index, NODEGROUP), "kubelet")
    for index in range(OTHER_NODES):
        store.put(node(index, "system"), "kubelet")
    nodes = [node_name(index) for index in range(NODES)]
    for index, node_ in enumerate(nodes):
        for daemonset in DAEMONSETS:
            store.put(
                pod(
                    namespace="kube-system",
                    name=f"{daemonset}-{index:05x}",
                    labels={"k8s-app": daemonset},
                    owner=("DaemonSet", daemonset),
                    node_name=node_,
                    image=f"602401143452.dkr.ecr.eu-west-1.amazonaws.com/{daemonset}:v1",
                ),
                "kube-controller-manager",
            )
    app_pods = PODS - NODES * len(DAEMONSETS)
    deployments: list[tuple[str, str, int]] = []
    built = 0
    while built < app_pods:
        replicas = min(REPLICA_CYCLE[len(deployments) % len(REPLICA_CYCLE)], app_pods - built)
        deployments.append(
            (f"team-{len(deployments) % NAMESPACES:02d}", f"svc-{len(deployments):04d}", replicas)
        )
        built += replicas

    # The deployments built to block, by index: each kind of blocker a few times. Other PDBs may
    # block too where their numbers say so (minAvailable 50% of one replica), as in a real cluster.
    by_replicas: dict[int, list[int]] = defaultdict(list)
    for index, (_, _, replicas) in enumerate(deployments):
        by_replicas[replicas].append(index)
    min_equals_replicas = set(by_replicas[1][:4] + by_replicas[3][:3])
    max_unavailable_zero = set(by_replicas[5][:2])
    one_unready = set(by_replicas[4][:2])  # minAvailable replicas - 1, and one pod not Ready
    overlapped = by_replicas[6][0]  # a second PDB selects its pods too
    built_to_block = min_equals_replicas | max_unavailable_zero | one_unready | {overlapped}
    others = [index for index in range(len(deployments)) if index not in built_to_block]
    with_pdb = built_to_block | set(others[: PDBS - 1 - len(built_to_block)])

    cursor = 0
    blocking: set[str] = set()
    for index, (namespace, name, replicas) in enumerate(deployments):
        template_hash = f"{index * 7919 % 0xFFFFF:05x}"
        replica_set = f"{name}-{template_hash}"
        labels = {"app": name, "team": namespace, "pod-template-hash": template_hash}
        unready_slot = 0 if index in one_unready else -1
        healthy_pods = []
        for replica in range(replicas):
            pod_name = f"{replica_set}-{replica:05x}"
            store.put(
                pod(
                    namespace=namespace,
                    name=pod_name,
                    labels=labels,
                    owner=("ReplicaSet", replica_set),
                    node_name=nodes[cursor % NODES],
                    image=f"111122223333.dkr.ecr.eu-west-1.amazonaws.com/{name}:1.{index % 9}",
                    ready=replica != unready_slot,
                    readiness_probe=index % 10 != 3,
                ),
                "kube-controller-manager",
            )
            if replica != unready_slot:
                healthy_pods.append(f"{namespace}/{pod_name}")
            cursor += 1
        if index not in with_pdb:
            continue
        rule: tuple[str, int | str]
        if index in min_equals_replicas:
            rule = ("minAvailable", replicas)
        elif index in max_unavailable_zero:
            rule = ("maxUnavailable", 0)
        elif index in one_unready:
            rule = ("minAvailable", replicas - 1)  # the unready pod itself may go: the rest is healthy
        else:
            usual: list[tuple[str, int | str]] = [
                ("maxUnavailable", 1),
                ("minAvailable", max(0, replicas - 1)),
                ("minAvailable", "50%"),
                ("maxUnavailable", "25%"),
            ]
            rule = usual[index % 4]
        selector: dict[str, Any] = {"matchLabels": {"app": name}}
        if index % 5 == 0:
            selector = {"matchExpressions": [{"key": "app", "operator": "In", "values": [name]}]}
        budget = pdb(namespace, name, selector, rule, expected=replicas, healthy=len(healthy_pods))
        store.put(budget, "kubectl")
        if budget["status"]["disruptionsAllowed"] == 0 or index == overlapped:
            blocking.update(healthy_pods)
    namespace, name, replicas = deployments[overlapped]
    overlapping = {
        "matchLabels": {"team": namespace},
        "matchExpressions": [{"key": "app", "operator": "In", "values": [name]}],
    }
    store.put(
        pdb(
            namespace, f"{name}-team", overlapping, ("maxUnavailable", 1), expected=replicas, healthy=replicas
        ),
        "kubectl",
    )
    return {
        "nodes": NODES,
        "other_nodes": OTHER_NODES,
        "pods": NODES * len(DAEMONSETS) + sum(replicas for _, _, replicas in deployments),
        "daemonset_pods": NODES * len(DAEMONSETS),
        "deployments": len(deployments),
        "pdbs": len(with_pdb) + 1,
        "blocking_pods": len(blocking),
    }


# ---- timing the server's and the client's parts ---------------------------------------------
class Timings:
    """Seconds spent in named steps, across threads."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self.seconds[name] += time.perf_counter() - started
                    self.calls[name] += 1

        return timed


class _TimedJson:
    """Stands in for the fake server module's `json`, timing how long it spends encoding responses."""

    def __init__(self, timings: Timings) -> None:
        self.dumps = timings.wrap("server_json_encode", json.dumps)
        self.loads = json.loads


def instrument_server(server: FakeKubeApiServer, store: KubeStore, timings: Timings) -> None:
    """Time the server per request and per step, without changing it. Before `start`, which hands
    the WSGI app to werkzeug."""
    server._wsgi_app = timings.wrap("server_request", server._wsgi_app)  # type: ignore[method-assign]
    store.list = timings.wrap("server_store_list_copy", store.list)  # type: ignore[method-assign]
    fake_server_module.verify_token = timings.wrap("server_token_check", fake_server_module.verify_token)
    fake_server_module.json = _TimedJson(timings)  # type: ignore[assignment]


def rss_mib() -> float:
    with open(f"/proc/{os.getpid()}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def kept_mib(inputs: drain.DrainInputs) -> float:
    """Approximate size of what the rehearsal keeps: its dataclasses and their strings."""
    return deep_size((inputs.nodes, inputs.pods, inputs.pdbs)) / 2**20


def deep_size(root: Any) -> int:
    """Bytes of an object and everything it holds (each shared object once)."""
    seen: set[int] = set()
    total = 0

    def add(obj: Any) -> None:
        nonlocal total
        if id(obj) in seen:
            return
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            for key, value in obj.items():
                add(key)
                add(value)
        elif isinstance(obj, tuple | list | frozenset):
            for item in obj:
                add(item)
        elif hasattr(obj, "__slots__"):
            for slot in obj.__slots__:
                add(getattr(obj, slot, None))

    add(root)
    return total


def main() -> int:
    setup_started = time.perf_counter()
    store = KubeStore(CLUSTER, "1.31")
    built = build_cluster(store)
    session = boto3.session.Session(
        aws_access_key_id=LAMBDA_KEY, aws_secret_access_key=LAMBDA_SECRET, region_name="eu-west-1"
    )
    token = get_token(CLUSTER, session=session)
    # Every pod built is Running: the live-pod list returns them all.
    listed = {"Node": built["nodes"], "PodDisruptionBudget": built["pdbs"], "Pod": built["pods"]}
    minimum = sum(max(1, math.ceil(count / PAGE_SIZE)) for count in listed.values())
    sample = store.get("Pod", "kube-system", f"{DAEMONSETS[0]}-{0:05x}")
    raw_pods_mib = deep_size(sample) * built["pods"] / 2**20
    setup_seconds = time.perf_counter() - setup_started
    rss_after_setup = rss_mib()

    timings = Timings()
    server = FakeKubeApiServer(
        store, cluster_name=CLUSTER, credentials={LAMBDA_KEY: LAMBDA_SECRET}, readonly_key_ids={LAMBDA_KEY}
    )
    instrument_server(server, store, timings)
    with server:
        reader = KubeReader.connect(server.endpoint, None, token, page_size=PAGE_SIZE)
        reader._call = timings.wrap("client_call", reader._call)  # type: ignore[method-assign]
        with reader:
            started = time.perf_counter()
            inputs = drain.read_drain_inputs(reader, nodegroup=NODEGROUP)
            read_seconds = time.perf_counter() - started
            plan = drain.rehearse_drain(inputs, max_unavailable=MAX_UNAVAILABLE)
            checks = plan.checks()
            wall = time.perf_counter() - started
        requests = [r for r in server.requests if r[0] == LAMBDA_KEY]
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    per_kind = Counter(path.rstrip("/").rsplit("/", 1)[-1] for _, _, path in requests)
    server_seconds = timings.seconds["server_request"]
    store_copy = timings.seconds["server_store_list_copy"]
    client_seconds = timings.seconds["client_call"]
    rehearsal_seconds = wall - read_seconds
    where = {
        "server_request_seconds": round(server_seconds, 3),
        "server_store_list_copy_seconds": round(store_copy, 3),
        "server_json_encode_seconds": round(timings.seconds["server_json_encode"], 3),
        "server_token_check_seconds": round(timings.seconds["server_token_check"], 3),
        "server_selectors_and_paging_seconds": round(
            server_seconds
            - store_copy
            - timings.seconds["server_json_encode"]
            - timings.seconds["server_token_check"],
            3,
        ),
        "client_http_and_json_decode_seconds": round(client_seconds - server_seconds, 3),
        "client_list_merge_and_drain_convert_seconds": round(read_seconds - client_seconds, 3),
        "rehearse_and_checks_seconds": round(rehearsal_seconds, 3),
        "wall_without_store_list_copy_seconds": round(wall - store_copy, 3),
    }
    ratio = len(requests) / minimum
    targets = {
        "requests_le_1_1x_minimum": ratio <= TARGET_REQUEST_RATIO,
        "wall_le_5s": wall <= TARGET_WALL_SECONDS,
        "blocking_found_as_built": len(plan.blocking) == built["blocking_pods"],
    }
    report = {
        "built": built,
        "page_size": PAGE_SIZE,
        "max_unavailable": MAX_UNAVAILABLE,
        "setup_seconds": round(setup_seconds, 2),
        "wall_seconds": round(wall, 3),
        "read_seconds": round(read_seconds, 3),
        "rehearsal_seconds": round(rehearsal_seconds, 3),
        "where_time_goes": where,
        "peak_rss_mib": round(peak_rss, 1),
        "rss_after_setup_mib": round(rss_after_setup, 1),
        "kept_inputs_mib": round(kept_mib(inputs), 1),
        "raw_pod_list_mib_estimate": round(raw_pods_mib, 1),
        "requests": len(requests),
        "requests_by_resource": dict(sorted(per_kind.items())),
        "objects_listed": listed,
        "minimum_requests": minimum,
        "ratio": round(ratio, 3),
        "pods_to_evict": plan.pods_to_evict,
        "blocking_pods": len(plan.blocking),
        "blocking_pdbs": sorted({b.pdb or "" for b in plan.blocking}),
        "would_force_evict": len(plan.would_force_evict),
        "findings": {check.name: check.passed for check in checks},
        "targets": {"requests_max_ratio": TARGET_REQUEST_RATIO, "wall_max_seconds": TARGET_WALL_SECONDS},
        "met": targets,
    }
    print(json.dumps(report, indent=2))
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
