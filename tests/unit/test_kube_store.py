"""KubeStore's per-kind order and its paged listing (what the fake API server answers a LIST with)."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from rehearsal.kube.store import LAST_APPLIED_ANNOTATION, KubeStore, ListPage, served_api_versions


def pod(
    namespace: str, name: str, labels: dict[str, str] | None = None, phase: str = "Running"
) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"nodeName": "ip-10-0-1-10", "containers": [{"name": "main", "image": "app:1"}]},
        "status": {"phase": phase},
    }


def node(name: str) -> dict[str, Any]:
    return {"kind": "Node", "metadata": {"name": name}, "spec": {"providerID": f"aws:///{name}"}}


def names(page: ListPage) -> list[str]:
    return [item["metadata"]["name"] for item in json.loads(page.items_json)]


def rv(store: KubeStore, kind: str, namespace: str, name: str) -> int:
    obj = store.get(kind, namespace, name)
    assert obj is not None
    return int(obj["metadata"]["resourceVersion"])


@pytest.fixture
def store() -> KubeStore:
    store = KubeStore("prod-eu", "1.31")
    for namespace, name in [
        ("shop", "web-1"),
        ("kube-system", "coredns-1"),
        ("shop", "cart-0"),
        ("shop", "web-0"),
    ]:
        store.put(pod(namespace, name, {"app": name.split("-")[0]}))
    store.put(pod("shop-2", "api-0", {"app": "api"}))  # a namespace whose name extends "shop"
    for name in ("ip-10-0-2-20", "ip-10-0-1-10"):
        store.put(node(name), "kubelet")
    return store


def test_a_page_lists_in_namespace_then_name_order_and_says_where_to_continue(store: KubeStore) -> None:
    first = store.list_page("Pod", limit=2)
    second = store.list_page("Pod", after=first.continue_after, limit=2)
    last = store.list_page("Pod", after=second.continue_after, limit=2)

    assert (names(first), first.count, first.continue_after) == (
        ["coredns-1", "cart-0"],
        2,
        ("shop", "cart-0"),
    )
    assert (names(second), second.continue_after) == (["web-0", "web-1"], ("shop", "web-1"))
    assert (names(last), last.continue_after) == (["api-0"], None)


def test_a_page_that_takes_the_last_matches_exactly_has_no_continue(store: KubeStore) -> None:
    page = store.list_page("Pod", limit=5)

    assert page.count == 5 and page.continue_after is None
    assert store.list_page("Pod").count == 5  # no limit: everything


def test_a_namespace_lists_only_its_own_objects(store: KubeStore) -> None:
    assert names(store.list_page("Pod", "shop")) == ["cart-0", "web-0", "web-1"]
    assert names(store.list_page("Pod", "shop-2")) == ["api-0"]
    assert names(store.list_page("Pod", "shop", after=("shop", "cart-0"))) == ["web-0", "web-1"]
    assert names(store.list_page("Pod", "empty")) == []
    assert names(store.list_page("Node")) == ["ip-10-0-1-10", "ip-10-0-2-20"]
    assert store.list_page("ConfigMap").items_json == "[]"


def test_the_continue_key_need_not_name_an_object_that_still_exists(store: KubeStore) -> None:
    assert names(store.list_page("Pod", after=("shop", "d"))) == ["web-0", "web-1", "api-0"]
    assert names(store.list_page("Pod", after=("zzz", ""))) == []


def test_matching_is_applied_before_the_limit(store: KubeStore) -> None:
    seen: list[str] = []

    def is_web(obj: dict[str, Any]) -> bool:
        seen.append(obj["metadata"]["name"])
        return obj["metadata"]["labels"].get("app") == "web"

    page = store.list_page("Pod", match=is_web, limit=1)

    assert (names(page), page.continue_after) == (["web-0"], ("shop", "web-0"))
    assert seen == ["coredns-1", "cart-0", "web-0", "web-1"]  # stops at the first match past the page


def test_items_are_encoded_without_kind_and_api_version_and_keep_their_field_order(store: KubeStore) -> None:
    page = store.list_page("Pod", "shop", limit=1)
    stored = store.get("Pod", "shop", "cart-0")
    assert stored is not None
    del stored["kind"], stored["apiVersion"]

    assert page.items_json == json.dumps([stored])
    assert (store.get("Pod", "shop", "cart-0") or {})["kind"] == "Pod"  # the store keeps them


def test_a_custom_encoder_is_given_the_page(store: KubeStore) -> None:
    page = store.list_page("Node", encode=lambda items: str(len(items)))

    assert page.items_json == "2"


def test_the_resource_version_is_the_highest_of_the_kind_listed_and_follows_every_write(
    store: KubeStore,
) -> None:
    pods = [("kube-system", "coredns-1"), ("shop", "cart-0"), ("shop", "web-0"), ("shop", "web-1")]
    highest = max(rv(store, "Pod", ns, name) for ns, name in [*pods, ("shop-2", "api-0")])
    assert store.list_page("Pod", limit=1).resource_version == str(highest)
    assert store.list_page("Pod", "shop").resource_version == str(
        max(rv(store, "Pod", "shop", n) for _, n in pods[1:])
    )
    assert store.list_page("ConfigMap").resource_version == "1"

    store.update_status("Pod", "shop", "cart-0", {"phase": "Succeeded"})
    assert store.list_page("Pod", "shop").resource_version == str(rv(store, "Pod", "shop", "cart-0"))
    store.mutate("Pod", "kube-system", "coredns-1", lambda obj: obj["metadata"]["labels"].update(x="1"))
    assert store.list_page("Pod").resource_version == str(rv(store, "Pod", "kube-system", "coredns-1"))
    store.set_field("Pod", "shop", "web-1", ("spec", "nodeName"), "ip-10-0-2-20", "kubectl-edit")
    assert store.list_page("Pod").resource_version == str(rv(store, "Pod", "shop", "web-1"))
    before_delete = rv(store, "Pod", "shop", "web-0")
    store.delete("Pod", "shop", "web-1")  # the newest goes: the list's version goes back to the next
    assert store.list_page("Pod", "shop").resource_version == str(
        max(before_delete, rv(store, "Pod", "shop", "cart-0"))
    )


def test_put_and_delete_keep_the_order(store: KubeStore) -> None:
    store.put(pod("shop", "web-0", {"app": "web", "v": "2"}))  # a replace: not listed twice
    store.put(pod("shop", "db-0"))
    assert store.delete("Pod", "shop", "cart-0") is True
    assert store.delete("Pod", "shop", "cart-0") is False
    assert store.delete("Pod", "nowhere", "x") is False

    assert names(store.list_page("Pod")) == ["coredns-1", "db-0", "web-0", "web-1", "api-0"]
    assert [p["metadata"]["name"] for p in store.list("Pod")] == names(store.list_page("Pod"))


def test_list_still_returns_deep_copies_in_order_with_label_filters(store: KubeStore) -> None:
    listed = store.list("Pod", "shop")
    listed[0]["metadata"]["labels"]["app"] = "changed"

    assert [p["metadata"]["name"] for p in listed] == ["cart-0", "web-0", "web-1"]
    assert (store.get("Pod", "shop", "cart-0") or {})["metadata"]["labels"]["app"] == "cart"
    assert [p["metadata"]["name"] for p in store.list("Pod", labels={"app": "web"})] == ["web-0", "web-1"]
    assert [n["metadata"]["name"] for n in store.list("Node")] == ["ip-10-0-1-10", "ip-10-0-2-20"]


def reference_pages(
    store: KubeStore, kind: str, namespace: str | None, wanted: set[str], limit: int
) -> list[list[str]]:
    """What the fake API server answered before list_page: filter everything, then cut pages."""
    matching = [o for o in store.list(kind, namespace) if o["metadata"]["name"] in wanted]
    pages = [[o["metadata"]["name"] for o in matching[i : i + limit]] for i in range(0, len(matching), limit)]
    return pages or [[]]


@pytest.mark.parametrize("seed", range(5))
def test_paging_gives_what_filtering_everything_gave(seed: int) -> None:
    rng = random.Random(seed)
    store = KubeStore("prod-eu", "1.31")
    objects = {(f"ns-{rng.randrange(6)}", f"pod-{rng.randrange(10_000):04d}") for _ in range(300)}
    for namespace, name in objects:
        store.put(pod(namespace, name))
    for namespace, name in rng.sample(sorted(objects), 40):
        store.delete("Pod", namespace, name)
    wanted = {o["metadata"]["name"] for o in store.list("Pod") if rng.random() < 0.6}

    for listed in (None, "ns-3", "ns-9"):
        for limit in (1, 7, 50, 1000):
            pages, after = [], None
            while True:
                page = store.list_page(
                    "Pod",
                    listed,
                    match=lambda o: o["metadata"]["name"] in wanted,
                    after=after,
                    limit=limit,
                )
                pages.append(names(page))
                after = page.continue_after
                if after is None:
                    break
            assert pages == reference_pages(store, "Pod", listed, wanted, limit)


# ---- API versions: one stored version per kind, several served ---------------------------------
def test_kubectl_apply_keeps_the_manifest_as_given_and_stores_the_current_version() -> None:
    store = KubeStore("dev", "1.24")
    manifest = {
        "apiVersion": "policy/v1beta1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"minAvailable": 1},
    }

    stored = store.apply_manifest(manifest)

    assert stored["apiVersion"] == "policy/v1"
    assert stored["metadata"]["annotations"][LAST_APPLIED_ANNOTATION] == (
        '{"apiVersion":"policy/v1beta1","kind":"PodDisruptionBudget",'
        '"metadata":{"name":"web","namespace":"shop"},"spec":{"minAvailable":1}}\n'
    )
    assert [e["manager"] for e in stored["metadata"]["managedFields"]] == ["kubectl-client-side-apply"]
    assert KubeStore.last_applied_api_version(stored) == "policy/v1beta1"


def test_a_manifest_the_cluster_version_does_not_serve_is_refused() -> None:
    store = KubeStore("dev", "1.25")
    cronjob = {"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "nightly"}}

    with pytest.raises(
        ValueError,
        match=r"Kubernetes 1.25 does not serve batch/v1beta1 \(it serves CronJob through batch/v1\)",
    ):
        store.apply_manifest(cronjob)
    with pytest.raises(ValueError, match="PodSecurityPolicy through no version"):
        store.apply_manifest(
            {"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "p"}}
        )


@pytest.mark.parametrize(
    ("kind", "version", "served"),
    [
        ("CronJob", "1.24", ["batch/v1", "batch/v1beta1"]),
        ("CronJob", "1.25", ["batch/v1"]),
        ("HorizontalPodAutoscaler", "1.25", ["autoscaling/v2", "autoscaling/v2beta2"]),
        ("HorizontalPodAutoscaler", "1.26", ["autoscaling/v2"]),
        ("PodSecurityPolicy", "1.24", ["policy/v1beta1"]),
        ("PodSecurityPolicy", "1.25", []),
        (
            "FlowSchema",
            "1.28",
            ["flowcontrol.apiserver.k8s.io/v1beta3", "flowcontrol.apiserver.k8s.io/v1beta2"],
        ),
        ("FlowSchema", "1.29", ["flowcontrol.apiserver.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1beta3"]),
        ("FlowSchema", "1.32", ["flowcontrol.apiserver.k8s.io/v1"]),
        ("CSIStorageCapacity", "1.26", ["storage.k8s.io/v1", "storage.k8s.io/v1beta1"]),
        ("CSIStorageCapacity", "1.27", ["storage.k8s.io/v1"]),
        ("ValidatingAdmissionPolicy", "1.29", []),  # v1alpha1 only: alpha APIs are off on EKS
        ("Pod", "1.31", ["v1"]),
    ],
)
def test_served_versions_follow_the_removed_api_table(kind: str, version: str, served: list[str]) -> None:
    assert served_api_versions(kind, version) == served


def test_an_object_put_under_an_older_version_is_stored_under_the_current_one() -> None:
    store = KubeStore("dev", "1.24")

    store.put({"apiVersion": "batch/v1beta1", "kind": "CronJob", "metadata": {"name": "n", "namespace": "a"}})

    assert (store.get("CronJob", "a", "n") or {})["apiVersion"] == "batch/v1"
