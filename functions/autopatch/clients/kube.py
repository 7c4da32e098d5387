"""Read-only access to a cluster's Kubernetes API.

The autopatch Lambdas never change anything inside a cluster (EKS drains nodes itself); they read
nodes, pods, PodDisruptionBudgets, workloads and ConfigMaps to decide and to verify. So this client
has no write methods, and its Kubernetes identity is bound to a read-only ClusterRole.

Objects come back as plain JSON dicts in API shape (camelCase, `metadata.managedFields` kept), not
as the official client's models: the callers compare fields and owners by their API paths.
"""

from __future__ import annotations

import base64
import builtins
import gc
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3

from autopatch.clients.k8s_token import get_token

if TYPE_CHECKING:  # the kubernetes package is imported lazily: most Lambdas never need it
    from kubernetes.client import ApiClient

DEFAULT_PAGE_SIZE = 250
JsonObject = dict[str, Any]
JsonObjects = list[JsonObject]  # spelled once here: inside KubeReader, `list` names the method


@dataclass(frozen=True)
class _KindApi:
    """Where the official client keeps one kind: `read_namespaced_<resource>`, `list_<resource>`..."""

    api_class: str
    resource: str
    api_version: str
    namespaced: bool


_KINDS: dict[str, _KindApi] = {
    "ConfigMap": _KindApi("CoreV1Api", "config_map", "v1", True),
    "Deployment": _KindApi("AppsV1Api", "deployment", "apps/v1", True),
    "DaemonSet": _KindApi("AppsV1Api", "daemon_set", "apps/v1", True),
    "Pod": _KindApi("CoreV1Api", "pod", "v1", True),
    "Node": _KindApi("CoreV1Api", "node", "v1", False),
    "PodDisruptionBudget": _KindApi("PolicyV1Api", "pod_disruption_budget", "policy/v1", True),
    "Service": _KindApi("CoreV1Api", "service", "v1", True),
    "ServiceAccount": _KindApi("CoreV1Api", "service_account", "v1", True),
}


class KubeApiError(Exception):
    """The Kubernetes API refused a request (anything but 404 on a get)."""

    def __init__(self, status: int, reason: str, detail: str = "") -> None:
        self.status = status
        self.reason = reason
        self.detail = detail
        super().__init__(self._describe())

    def _describe(self) -> str:
        if self.status == 403:
            summary = "forbidden: the autopatch role may only read"
        elif self.status == 401:
            summary = "unauthorized: the token was refused (expired, or not signed for this cluster)"
        else:
            summary = f"{self.reason or 'error'}"
        return f"Kubernetes API {self.status} {summary}" + (f": {self.detail}" if self.detail else "")


class KubeReader:
    """GET and LIST over the official `kubernetes` client. Build it with `connect` or `for_cluster`.

    A token lives 15 minutes, as long as the longest Lambda run: build one reader per invocation.
    """

    def __init__(self, api_client: ApiClient, *, page_size: int = DEFAULT_PAGE_SIZE) -> None:
        self._api_client = api_client
        self._apis: dict[str, Any] = {}
        self.page_size = page_size

    @classmethod
    def connect(
        cls, endpoint: str, ca_data_b64: str | None, token: str, *, page_size: int = DEFAULT_PAGE_SIZE
    ) -> KubeReader:
        """`endpoint` is https with the cluster's CA (base64 PEM, as DescribeCluster gives it), or a
        local http endpoint with no CA."""
        from kubernetes.client import ApiClient, Configuration

        configuration = Configuration(
            host=endpoint.rstrip("/"),
            api_key={"authorization": token},
            api_key_prefix={"authorization": "Bearer"},
            # Kept in memory rather than in a temporary file: nothing to clean up in /tmp.
            ca_cert_data=base64.b64decode(ca_data_b64).decode("ascii") if ca_data_b64 else None,
        )
        return cls(ApiClient(configuration), page_size=page_size)

    @classmethod
    def for_cluster(
        cls,
        cluster_name: str,
        eks_client: Any,
        *,
        session: boto3.session.Session | None = None,
        region: str | None = None,
    ) -> KubeReader:
        """A reader for an EKS cluster: endpoint and CA from DescribeCluster, token from STS."""
        cluster = eks_client.describe_cluster(name=cluster_name)["cluster"]
        ca_data = cluster.get("certificateAuthority", {}).get("data")
        token = get_token(cluster_name, session=session, region=region)
        return cls.connect(cluster["endpoint"], ca_data, token)

    def close(self) -> None:
        self._api_client.close()

    def __enter__(self) -> KubeReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ---- reads ------------------------------------------------------------------------------
    def get(self, kind: str, namespace: str | None, name: str) -> JsonObject | None:
        """One object, or None if it does not exist. `namespace` is ignored for cluster-scoped kinds."""
        from kubernetes.client.exceptions import ApiException

        kind_api = _kind_api(kind)
        try:
            if kind_api.namespaced:
                if not namespace:
                    raise ValueError(f"{kind} is namespaced: pass a namespace")
                return self._call(kind_api, f"read_namespaced_{kind_api.resource}", name, namespace)
            return self._call(kind_api, f"read_{kind_api.resource}", name)
        except ApiException as error:
            if error.status == 404:
                return None
            raise _api_error(error) from error

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> JsonObjects:
        """Every matching object, across all pages. `namespace=None` lists all namespaces."""
        return [*self.iter_list(kind, namespace, label_selector, field_selector)]

    def iter_list(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Iterator[JsonObject]:
        """The objects `list` returns, in the same order, one page at a time: the next page is
        requested once the caller has taken every object of the current one, and only that page is
        held. An unknown kind raises ValueError here; an API error is raised by the iteration."""
        kind_api = _kind_api(kind)
        args: tuple[str, ...] = ()
        if not kind_api.namespaced:
            method = f"list_{kind_api.resource}"
        elif namespace is None:
            method = f"list_{kind_api.resource}_for_all_namespaces"
        else:
            method, args = f"list_namespaced_{kind_api.resource}", (namespace,)
        selectors = {"label_selector": label_selector, "field_selector": field_selector}
        return self._pages(kind, kind_api, method, args, selectors)

    def _pages(
        self, kind: str, kind_api: _KindApi, method: str, args: tuple[str, ...], selectors: dict[str, Any]
    ) -> Iterator[JsonObject]:
        from kubernetes.client.exceptions import ApiException

        continue_token: str | None = None
        while True:
            try:
                page = self._call(
                    kind_api, method, *args, **selectors, limit=self.page_size, _continue=continue_token
                )
            except ApiException as error:
                raise _api_error(error) from error
            continue_token = (page.get("metadata") or {}).get("continue") or None
            items: JsonObjects = page.pop("items", None) or []
            del page
            items.reverse()  # popped from the end, so each object is let go once it has been handed over
            while items:
                # List items carry no kind/apiVersion on the wire; callers handle objects of many kinds.
                yield {"apiVersion": kind_api.api_version, "kind": kind, **items.pop()}
            if continue_token is None:
                return

    # ---- any served API, by path (the removed-API check reads kinds this client has no model for)
    def served_group_versions(self) -> dict[str, builtins.list[str]]:
        """group -> the versions the API server serves ("" is the core group, served as v1)."""
        groups: dict[str, list[str]] = {"": ["v1"]}
        for group in self._get_path("/apis").get("groups") or []:
            groups[str(group.get("name"))] = [str(v.get("version")) for v in group.get("versions") or []]
        return groups

    def resources_of(self, group_version: str) -> JsonObjects:
        """The APIResourceList of one served group/version (`[]` if it is not served)."""
        path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        try:
            return list(self._get_path(path).get("resources") or [])
        except KubeApiError as error:
            if error.status == 404:
                return []
            raise

    def iter_path(self, group_version: str, plural: str) -> Iterator[JsonObject]:
        """Every object of a resource, across all namespaces, listed through `group_version`."""
        base = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        continue_token: str | None = None
        while True:
            query: builtins.list[tuple[str, Any]] = [("limit", self.page_size)]
            if continue_token:
                query.append(("continue", continue_token))
            page = self._get_path(f"{base}/{plural}", query)
            continue_token = (page.get("metadata") or {}).get("continue") or None
            yield from page.get("items") or []
            if continue_token is None:
                return

    def server_version(self) -> str:
        """The API server's gitVersion ("v1.31.2-eks-1234abc")."""
        return str(self._get_path("/version").get("gitVersion", ""))

    def _get_path(self, path: str, query: builtins.list[tuple[str, Any]] | None = None) -> JsonObject:
        params = self._api_client.param_serialize(
            "GET",
            path,
            query_params=query or [],
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self._api_client.call_api(*params)
        data = response.read()
        if not 200 <= int(response.status) <= 299:
            try:
                detail = str(json.loads(data or b"{}").get("message", ""))
            except (ValueError, AttributeError):
                detail = str(data or "")
            raise KubeApiError(int(response.status), str(response.reason or ""), detail)
        with _cyclic_gc_paused():
            obj: JsonObject = json.loads(data)
        return obj

    def list_nodes(self, label_selector: str | None = None) -> JsonObjects:
        return self.list("Node", label_selector=label_selector)

    def list_pods(
        self,
        namespace: str | None = None,
        *,
        node_name: str | None = None,
        label_selector: str | None = None,
    ) -> JsonObjects:
        field_selector = f"spec.nodeName={node_name}" if node_name else None
        return self.list("Pod", namespace, label_selector=label_selector, field_selector=field_selector)

    def list_pdbs(self, namespace: str | None = None) -> JsonObjects:
        return self.list("PodDisruptionBudget", namespace)

    def _call(self, kind_api: _KindApi, method: str, *args: Any, **kwargs: Any) -> JsonObject:
        # Raw JSON instead of the client's models: keeps camelCase and every field the server sent.
        response = getattr(self._api(kind_api.api_class), method)(*args, _preload_content=False, **kwargs)
        data = response.data
        with _cyclic_gc_paused():
            obj: JsonObject = json.loads(data)
        return obj

    def _api(self, api_class: str) -> Any:
        if api_class not in self._apis:
            import kubernetes.client

            self._apis[api_class] = getattr(kubernetes.client, api_class)(self._api_client)
        return self._apis[api_class]


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while decoding a page. Decoding 500 pods allocates some 50,000
    dicts and lists and no garbage at all (JSON has no cycles), yet each few hundred allocations
    trigger a collection: the page being decoded survives them all, is promoted, and then counts
    towards full collections, which rescan everything the process holds. Paused, the page is young
    when collection resumes and is usually let go (the caller takes it object by object) before it
    gets old. Concurrent decodes share the pause; collection resumes after the last, if it was on."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def _kind_api(kind: str) -> _KindApi:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ValueError(f"KubeReader does not read {kind!r}; it reads {', '.join(_KINDS)}") from None


def _api_error(error: Any) -> KubeApiError:
    """KubeApiError from the client's ApiException, with the message of the API's Status body."""
    detail = ""
    try:
        detail = json.loads(error.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        detail = str(error.body or "")
    return KubeApiError(int(error.status or 0), str(error.reason or ""), detail)
