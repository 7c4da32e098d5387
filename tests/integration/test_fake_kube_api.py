"""The product's KubeReader and the official client against the fake Kubernetes API of one cluster."""

from __future__ import annotations

import functools
import gc
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from autopatch.clients.k8s_token import get_token
from autopatch.clients.kube import KubeApiError, KubeReader
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from rehearsal.kube.server import FakeKubeApiServer
from rehearsal.kube.store import KubeStore

CLUSTER = "prod-eu"
LAMBDA_KEY, LAMBDA_SECRET = "AKIAAUTOPATCHLAMBDA0", "lambda-secret"
ADMIN_KEY, ADMIN_SECRET = "AKIASANDBOXADMIN0000", "admin-secret"
SHOP_PODS = ["cart-0", "cart-1", "db-0", "web-0", "web-1"]


@functools.cache  # a token lasts 15 minutes, longer than the test run; signing one takes ~0.1 s
def token(key_id: str, secret: str, cluster: str = CLUSTER) -> str:
    session = boto3.session.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, region_name="eu-west-1"
    )
    return get_token(cluster, session=session)


def pod(name: str, node: str, labels: dict[str, str], namespace: str = "shop") -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": "public.ecr.aws/shop:1"}]},
        "status": {"phase": "Running"},
    }


def pdb(name: str, match_labels: dict[str, str], disruptions_allowed: int) -> dict[str, Any]:
    return {
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": match_labels}},
        "status": {
            "disruptionsAllowed": disruptions_allowed,
            "currentHealthy": 2,
            "desiredHealthy": 1,
            "expectedPods": 2,
        },
    }


@pytest.fixture
def store() -> KubeStore:
    store = KubeStore(CLUSTER, "1.31")
    for node, group in (("ip-10-0-1-10", "apps"), ("ip-10-0-2-20", "apps"), ("ip-10-0-3-30", "system")):
        store.put(
            {
                "kind": "Node",
                "metadata": {"name": node, "labels": {"eks.amazonaws.com/nodegroup": group}},
                "spec": {"providerID": f"aws:///eu-west-1a/i-{node[-2:]}"},
            },
            "kubelet",
        )
    store.put(pod("cart-0", "ip-10-0-1-10", {"app": "cart"}))
    store.put(pod("cart-1", "ip-10-0-2-20", {"app": "cart"}))
    store.put(pod("db-0", "ip-10-0-1-10", {"app": "db", "tier": "data"}))
    store.put(pod("web-0", "ip-10-0-1-10", {"app": "web"}))
    store.put(pod("web-1", "ip-10-0-2-20", {"app": "web"}))
    store.put(pod("coredns-1", "ip-10-0-3-30", {"k8s-app": "kube-dns"}, namespace="kube-system"))
    store.put(
        {
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": ".:53 { forward . /etc/resolv.conf }", "ttl": "30"},
        },
        "eks",
    )
    # A customer's edit: the field now belongs to another manager than EKS.
    store.set_field("ConfigMap", "kube-system", "coredns", ("data", "ttl"), "5", "kubectl-edit")
    store.put(pdb("cart", {"app": "cart"}, disruptions_allowed=0))
    store.put(pdb("web", {"app": "web"}, disruptions_allowed=1))
    return store


@pytest.fixture
def server(store: KubeStore) -> Iterator[FakeKubeApiServer]:
    with FakeKubeApiServer(
        store,
        cluster_name=CLUSTER,
        credentials={LAMBDA_KEY: LAMBDA_SECRET, ADMIN_KEY: ADMIN_SECRET},
        readonly_key_ids={LAMBDA_KEY},
    ) as server:
        yield server


@pytest.fixture
def reader(server: FakeKubeApiServer) -> Iterator[KubeReader]:
    with KubeReader.connect(server.endpoint, None, token(LAMBDA_KEY, LAMBDA_SECRET), page_size=2) as reader:
        yield reader


def official_client(server: FakeKubeApiServer, bearer: str) -> k8s.ApiClient:
    configuration = k8s.Configuration(
        host=server.endpoint, api_key={"authorization": bearer}, api_key_prefix={"authorization": "Bearer"}
    )
    return k8s.ApiClient(configuration)


def eviction(pod_name: str) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod_name}}


def names(objects: list[dict[str, Any]]) -> list[str]:
    return [obj["metadata"]["name"] for obj in objects]


def raw_get(server: FakeKubeApiServer, path_and_query: str) -> tuple[int, str]:
    """Status and body of a GET as the product's role, without any client in between."""
    request = urllib.request.Request(f"{server.endpoint}{path_and_query}")
    request.add_header("Authorization", f"Bearer {token(LAMBDA_KEY, LAMBDA_SECRET)}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


# ---- reads through the product's reader -----------------------------------------------------
def test_list_follows_continue_tokens_until_every_pod_is_returned(
    reader: KubeReader, server: FakeKubeApiServer
) -> None:
    pods = reader.list_pods("shop")

    assert names(pods) == SHOP_PODS
    assert all(p["kind"] == "Pod" and p["apiVersion"] == "v1" for p in pods)
    page_requests = [r for r in server.requests if r == (LAMBDA_KEY, "GET", "/api/v1/namespaces/shop/pods")]
    assert len(page_requests) == 3  # 2 + 2 + 1


def test_lists_across_namespaces_and_cluster_scoped_kinds(reader: KubeReader) -> None:
    assert names(reader.list_pods()) == ["coredns-1", *SHOP_PODS]
    assert names(reader.list_nodes()) == ["ip-10-0-1-10", "ip-10-0-2-20", "ip-10-0-3-30"]
    assert names(reader.list_pdbs("shop")) == ["cart", "web"]


def test_label_and_field_selectors_narrow_the_list(reader: KubeReader) -> None:
    assert names(reader.list_pods("shop", node_name="ip-10-0-1-10")) == ["cart-0", "db-0", "web-0"]
    assert names(reader.list_pods(label_selector="app=web")) == ["web-0", "web-1"]
    assert names(reader.list_pods("shop", label_selector="app!=web,!tier")) == ["cart-0", "cart-1"]
    assert names(reader.list_pods(label_selector="tier")) == ["db-0"]
    assert names(reader.list_pods(label_selector="app in (db,web)")) == ["db-0", "web-0", "web-1"]
    assert names(reader.list_nodes(label_selector="eks.amazonaws.com/nodegroup==system")) == ["ip-10-0-3-30"]
    running_in_shop = reader.list("Pod", field_selector="metadata.namespace=shop,status.phase=Running")
    assert names(running_in_shop) == SHOP_PODS


def test_selectors_hold_across_pages(reader: KubeReader, store: KubeStore) -> None:
    for index in range(7):
        phase = "Succeeded" if index % 3 == 0 else "Running"
        store.put({**pod(f"job-{index}", "ip-10-0-1-10", {"app": "job"}), "status": {"phase": phase}})

    live = reader.list("Pod", "shop", field_selector="status.phase!=Succeeded,status.phase!=Failed")
    jobs = reader.list(
        "Pod", label_selector="app in (job),tier notin (data)", field_selector="status.phase=Running"
    )

    assert names(live) == ["cart-0", "cart-1", "db-0", "job-1", "job-2", "job-4", "job-5", "web-0", "web-1"]
    assert names(jobs) == ["job-1", "job-2", "job-4", "job-5"]


def test_iter_list_asks_for_the_next_page_only_once_the_current_one_is_taken(
    reader: KubeReader, server: FakeKubeApiServer
) -> None:
    pods = reader.iter_list("Pod", "shop")
    assert server.requests == []

    first, second = next(pods), next(pods)
    assert len(server.requests) == 1
    third = next(pods)
    assert len(server.requests) == 2
    rest = list(pods)

    assert names([first, second, third, *rest]) == SHOP_PODS
    assert (first["kind"], first["apiVersion"]) == ("Pod", "v1")
    assert len(server.requests) == 3
    assert gc.isenabled()


def test_iter_list_refuses_an_unknown_kind_at_once_and_raises_api_errors_as_it_goes(
    server: FakeKubeApiServer,
) -> None:
    reader = KubeReader.connect(server.endpoint, None, token(LAMBDA_KEY, LAMBDA_SECRET, cluster="staging"))
    with reader:
        with pytest.raises(ValueError, match="does not read 'Secret'"):
            reader.iter_list("Secret")
        nodes = reader.iter_list("Node")
        with pytest.raises(KubeApiError) as refused:
            next(nodes)

    assert refused.value.status == 401
    assert gc.isenabled()


def test_a_list_page_is_what_the_api_answers(server: FakeKubeApiServer, store: KubeStore) -> None:
    code, text = raw_get(server, "/api/v1/namespaces/shop/pods?limit=2&labelSelector=app%21%3Ddb")
    body = json.loads(text)

    assert code == 200
    assert list(body) == ["kind", "apiVersion", "metadata", "items"]
    assert (body["kind"], body["apiVersion"]) == ("PodList", "v1")
    assert names(body["items"]) == ["cart-0", "cart-1"]
    stored = store.get("Pod", "shop", "cart-0")
    assert stored is not None
    del stored["kind"], stored["apiVersion"]
    assert body["items"][0] == stored  # items carry no kind or apiVersion, and every other field
    resource_versions = [int(p["metadata"]["resourceVersion"]) for p in store.list("Pod", "shop")]
    assert body["metadata"]["resourceVersion"] == str(max(resource_versions))
    assert text == json.dumps(body)  # the spliced body reads as one json.dumps of the List

    # The rest of the pages, with web-0 deleted and a new pod added before the continue.
    store.delete("Pod", "shop", "web-0")
    store.put(pod("api-0", "ip-10-0-1-10", {"app": "api"}))  # sorts before the continue key: not seen
    store.put(pod("zeta-0", "ip-10-0-1-10", {"app": "zeta"}))
    query = f"limit=2&labelSelector=app%21%3Ddb&continue={body['metadata']['continue']}"
    code, text = raw_get(server, f"/api/v1/namespaces/shop/pods?{query}")
    rest = json.loads(text)

    assert code == 200
    assert names(rest["items"]) == ["web-1", "zeta-0"]
    assert "continue" not in rest["metadata"]  # nothing matches after zeta-0


def test_a_page_that_ends_the_list_exactly_has_no_continue(server: FakeKubeApiServer) -> None:
    _, text = raw_get(server, "/api/v1/namespaces/shop/pods?limit=5")
    body = json.loads(text)

    assert names(body["items"]) == SHOP_PODS
    assert "continue" not in body["metadata"]


@pytest.mark.parametrize(
    "query",
    ["continue=bm90LWpzb24", "labelSelector=a%20in%20b", "fieldSelector=spec.hostname%3Dx", "limit=ten"],
    ids=["bad-continue", "bad-label-selector", "unsupported-field", "bad-limit"],
)
def test_a_bad_list_request_is_a_400_status(server: FakeKubeApiServer, query: str) -> None:
    code, text = raw_get(server, f"/api/v1/pods?{query}")

    assert code == 400
    assert json.loads(text)["reason"] == "BadRequest"


def test_an_empty_list_has_the_default_resource_version(server: FakeKubeApiServer) -> None:
    _, text = raw_get(server, "/api/v1/secrets")

    assert json.loads(text) == {
        "kind": "SecretList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1"},
        "items": [],
    }


def test_get_returns_the_api_shape_with_managed_fields(reader: KubeReader) -> None:
    coredns = reader.get("ConfigMap", "kube-system", "coredns")

    assert coredns is not None
    assert coredns["data"]["ttl"] == "5"
    assert "creationTimestamp" in coredns["metadata"] and "resourceVersion" in coredns["metadata"]
    owners = {entry["manager"]: entry["fieldsV1"] for entry in coredns["metadata"]["managedFields"]}
    assert owners["kubectl-edit"] == {"f:data": {"f:ttl": {}}}
    assert owners["eks"] == {"f:data": {"f:Corefile": {}}}
    node = reader.get("Node", None, "ip-10-0-3-30")
    assert node is not None and node["spec"]["providerID"] == "aws:///eu-west-1a/i-30"


def test_a_missing_object_is_none(reader: KubeReader) -> None:
    assert reader.get("ConfigMap", "kube-system", "aws-auth") is None
    assert reader.get("Node", None, "ip-10-9-9-9") is None


# ---- the official client --------------------------------------------------------------------
def test_the_official_client_deserialises_discovery_and_typed_lists(server: FakeKubeApiServer) -> None:
    with official_client(server, token(LAMBDA_KEY, LAMBDA_SECRET)) as api:
        assert k8s.VersionApi(api).get_code().git_version.startswith("v1.31.0-eks-")
        core_resources = {r.name for r in k8s.CoreV1Api(api).get_api_resources().resources}
        assert {"pods", "nodes", "configmaps", "pods/eviction"} <= core_resources
        assert "apps" in {g.name for g in k8s.ApisApi(api).get_api_versions().groups}
        nodes = k8s.CoreV1Api(api).list_node(limit=2)
        assert [n.metadata.name for n in nodes.items] == ["ip-10-0-1-10", "ip-10-0-2-20"]
        assert nodes.metadata.var_continue
        budgets = k8s.PolicyV1Api(api).list_namespaced_pod_disruption_budget("shop")
        assert [b.status.disruptions_allowed for b in budgets.items] == [0, 1]


def test_the_product_role_is_forbidden_to_write(server: FakeKubeApiServer, store: KubeStore) -> None:
    with official_client(server, token(LAMBDA_KEY, LAMBDA_SECRET)) as api:
        core = k8s.CoreV1Api(api)
        with pytest.raises(ApiException) as patch_refused:
            core.patch_namespaced_config_map("coredns", "kube-system", {"data": {"ttl": "60"}})
        with pytest.raises(ApiException) as eviction_refused:
            core.create_namespaced_pod_eviction("web-0", "shop", eviction("web-0"))

    assert patch_refused.value.status == 403
    assert json.loads(patch_refused.value.body)["reason"] == "Forbidden"
    assert eviction_refused.value.status == 403
    assert 'cannot create resource "pods/eviction"' in json.loads(eviction_refused.value.body)["message"]
    assert store.value("ConfigMap", "kube-system", "coredns", ("data", "ttl")) == "5"
    assert store.get("Pod", "shop", "web-0") is not None


def test_another_caller_can_write_and_owns_what_it_changed(
    server: FakeKubeApiServer, store: KubeStore
) -> None:
    with official_client(server, token(ADMIN_KEY, ADMIN_SECRET)) as api:
        patched = k8s.CoreV1Api(api).patch_namespaced_config_map(
            "coredns",
            "kube-system",
            {"data": {"Corefile": ".:53 { cache 30 }"}},
            field_manager="sandbox-user",
        )
        created = k8s.CoreV1Api(api).create_namespaced_config_map(
            "shop", {"metadata": {"name": "feature-flags"}, "data": {"beta": "on"}}
        )

    assert patched.data["Corefile"] == ".:53 { cache 30 }"
    assert store.value("ConfigMap", "kube-system", "coredns", ("data", "Corefile")) == ".:53 { cache 30 }"
    owners = store.owners("ConfigMap", "kube-system", "coredns")
    assert owners["sandbox-user"] == [("data", "Corefile")]
    assert "eks" not in owners  # EKS owned only the Corefile, which was taken over
    assert owners["kubectl-edit"] == [("data", "ttl")]
    assert created.metadata.uid
    assert store.owners("ConfigMap", "shop", "feature-flags") == {"kubectl": [("data", "beta")]}


def test_eviction_is_refused_while_the_budget_allows_no_disruption(
    server: FakeKubeApiServer, store: KubeStore
) -> None:
    admin = official_client(server, token(ADMIN_KEY, ADMIN_SECRET))
    with admin, pytest.raises(ApiException) as refused:
        k8s.CoreV1Api(admin).create_namespaced_pod_eviction("cart-0", "shop", eviction("cart-0"))

    assert refused.value.status == 429
    status = json.loads(refused.value.body)
    assert status["message"] == "Cannot evict pod as it would violate the pod's disruption budget."
    assert status["details"]["causes"][0]["reason"] == "DisruptionBudget"
    assert store.get("Pod", "shop", "cart-0") is not None


def test_eviction_deletes_the_pod_and_spends_the_budget(server: FakeKubeApiServer, store: KubeStore) -> None:
    with official_client(server, token(ADMIN_KEY, ADMIN_SECRET)) as api:
        core = k8s.CoreV1Api(api)
        _, code, _ = core.create_namespaced_pod_eviction_with_http_info("web-0", "shop", eviction("web-0"))
        with pytest.raises(ApiException) as second:
            core.create_namespaced_pod_eviction("web-1", "shop", eviction("web-1"))

    assert code == 201
    assert store.get("Pod", "shop", "web-0") is None
    assert store.value("PodDisruptionBudget", "shop", "web", ("status", "disruptionsAllowed")) == 0
    assert second.value.status == 429  # the budget is spent
    assert store.get("Pod", "shop", "web-1") is not None


def test_a_pod_under_two_budgets_cannot_be_evicted(server: FakeKubeApiServer, store: KubeStore) -> None:
    store.put(pdb("everything-web", {"app": "web"}, disruptions_allowed=5))
    admin = official_client(server, token(ADMIN_KEY, ADMIN_SECRET))
    with admin, pytest.raises(ApiException) as refused:
        k8s.CoreV1Api(admin).create_namespaced_pod_eviction("web-0", "shop", eviction("web-0"))

    assert refused.value.status == 500
    assert "more than one PodDisruptionBudget" in json.loads(refused.value.body)["message"]


# ---- authentication -------------------------------------------------------------------------
def test_a_token_signed_for_another_cluster_is_unauthorized(server: FakeKubeApiServer) -> None:
    staging_token = token(LAMBDA_KEY, LAMBDA_SECRET, cluster="staging")

    reader = KubeReader.connect(server.endpoint, None, staging_token)
    with reader, pytest.raises(KubeApiError) as refused:
        reader.list_nodes()

    assert refused.value.status == 401
    assert "not signed for cluster prod-eu" in str(refused.value)


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer k8s-aws-v1.bm90IGEgdXJs",
        "Bearer garbage",
        None,
        "Bearer " + token("AKIASOMEONEELSE00000", "other-secret"),
    ],
    ids=["not-a-url", "no-prefix", "no-header", "unknown-key"],
)
def test_requests_without_a_valid_token_get_a_401_status(
    server: FakeKubeApiServer, authorization: str | None
) -> None:
    request = urllib.request.Request(f"{server.endpoint}/api/v1/namespaces/kube-system/configmaps/coredns")
    if authorization:
        request.add_header("Authorization", authorization)

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)

    assert refused.value.code == 401
    assert refused.value.headers["Content-Type"] == "application/json"
    status = json.loads(refused.value.read())
    assert status["kind"] == "Status" and status["reason"] == "Unauthorized" and status["code"] == 401


def test_stop_leaves_no_listening_socket_or_thread(store: KubeStore) -> None:
    threads_before = set(threading.enumerate())
    server = FakeKubeApiServer(store, cluster_name=CLUSTER, credentials={}, readonly_key_ids=())
    server.start()
    port = int(server.endpoint.rsplit(":", 1)[1])
    with pytest.raises(urllib.error.HTTPError):  # serve one request, so a handler thread has run
        urllib.request.urlopen(f"{server.endpoint}/version", timeout=5)

    server.stop()

    assert set(threading.enumerate()) <= threads_before
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


# ---- served API versions follow the cluster's Kubernetes version ------------------------------
CRONJOB_V1BETA1 = {
    "apiVersion": "batch/v1beta1",
    "kind": "CronJob",
    "metadata": {"name": "nightly", "namespace": "shop"},
    "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}},
}
PSP = {
    "apiVersion": "policy/v1beta1",
    "kind": "PodSecurityPolicy",
    "metadata": {"name": "restricted"},
    "spec": {"privileged": False},
}


@pytest.fixture
def old_cluster() -> Iterator[tuple[FakeKubeApiServer, KubeStore]]:
    store = KubeStore(CLUSTER, "1.24")
    store.apply_manifest(CRONJOB_V1BETA1)
    store.apply_manifest(PSP)
    with FakeKubeApiServer(
        store,
        cluster_name=CLUSTER,
        credentials={LAMBDA_KEY: LAMBDA_SECRET, ADMIN_KEY: ADMIN_SECRET},
        readonly_key_ids={LAMBDA_KEY},
    ) as server:
        yield server, store


def test_the_official_dynamic_client_lists_cronjobs_through_batch_v1beta1_on_1_24(
    old_cluster: tuple[FakeKubeApiServer, KubeStore], tmp_path: Any
) -> None:
    from kubernetes.dynamic import DynamicClient

    server, store = old_cluster
    with official_client(server, token(LAMBDA_KEY, LAMBDA_SECRET)) as api:
        api.user_agent = "kubectl/v1.24.17 (linux/amd64)"
        dynamic = DynamicClient(api, cache_file=str(tmp_path / "discovery.json"))
        old = dynamic.resources.get(api_version="batch/v1beta1", kind="CronJob").get(namespace="shop")
        new = dynamic.resources.get(api_version="batch/v1", kind="CronJob").get(namespace="shop")
        one = dynamic.resources.get(api_version="batch/v1beta1", kind="CronJob").get(
            name="nightly", namespace="shop"
        )
        policies = dynamic.resources.get(api_version="policy/v1beta1", kind="PodSecurityPolicy").get()

    assert (old.kind, old.apiVersion, [c.metadata.name for c in old.items]) == (
        "CronJobList",
        "batch/v1beta1",
        ["nightly"],
    )
    assert (new.apiVersion, [c.metadata.name for c in new.items]) == ("batch/v1", ["nightly"])
    assert one.apiVersion == "batch/v1beta1" and one.spec.schedule == "0 3 * * *"
    assert [p.metadata.name for p in policies.items] == ["restricted"]
    # The audit log the upgrade insights read: who used the deprecated paths, how often.
    usage = {(u.user_agent, u.path): u.requests for u in store.api_usage()}
    assert usage[("kubectl/v1.24.17 (linux/amd64)", "/apis/batch/v1beta1/cronjobs")] == 2
    assert ("kubectl/v1.24.17 (linux/amd64)", "/apis/batch/v1/cronjobs") not in usage


def test_discovery_lists_the_removed_versions_a_cluster_still_serves(
    old_cluster: tuple[FakeKubeApiServer, KubeStore],
) -> None:
    server, store = old_cluster

    status, body = raw_get(server, "/apis")
    groups = {g["name"]: g for g in json.loads(body)["groups"]}
    assert status == 200
    assert [v["groupVersion"] for v in groups["batch"]["versions"]] == ["batch/v1", "batch/v1beta1"]
    assert groups["batch"]["preferredVersion"]["groupVersion"] == "batch/v1"
    assert [v["version"] for v in groups["policy"]["versions"]] == ["v1", "v1beta1"]
    status, body = raw_get(server, "/apis/policy/v1beta1")
    assert {r["kind"] for r in json.loads(body)["resources"]} == {"PodDisruptionBudget", "PodSecurityPolicy"}

    store.kubernetes_version = "1.25"  # what a control plane upgrade does

    groups = {g["name"]: g for g in json.loads(raw_get(server, "/apis")[1])["groups"]}
    assert [v["groupVersion"] for v in groups["batch"]["versions"]] == ["batch/v1"]
    assert [v["groupVersion"] for v in groups["policy"]["versions"]] == ["policy/v1"]
    assert raw_get(server, "/apis/batch/v1beta1")[0] == 404
    assert raw_get(server, "/apis/policy/v1beta1")[0] == 404


def test_after_the_upgrade_removed_versions_are_404_and_unserved_kinds_are_invisible(
    old_cluster: tuple[FakeKubeApiServer, KubeStore],
) -> None:
    server, store = old_cluster
    assert raw_get(server, "/apis/batch/v1beta1/namespaces/shop/cronjobs")[0] == 200

    store.kubernetes_version = "1.25"

    status, body = raw_get(server, "/apis/batch/v1beta1/namespaces/shop/cronjobs")
    assert (status, json.loads(body)["reason"]) == (404, "NotFound")
    assert raw_get(server, "/apis/batch/v1beta1/namespaces/shop/cronjobs/nightly")[0] == 404
    assert raw_get(server, "/apis/policy/v1beta1/podsecuritypolicies")[0] == 404
    status, body = raw_get(server, "/apis/batch/v1/namespaces/shop/cronjobs")
    assert status == 200 and [c["metadata"]["name"] for c in json.loads(body)["items"]] == ["nightly"]
    # Still in the store (etcd), only no API serves it any more.
    assert store.get("PodSecurityPolicy", "", "restricted") is not None
    with official_client(server, token(LAMBDA_KEY, LAMBDA_SECRET)) as api:
        assert k8s.VersionApi(api).get_code().minor == "25"
