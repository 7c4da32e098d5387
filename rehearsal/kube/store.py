"""In-memory Kubernetes objects of one simulated cluster.

The fake API server serves these dicts over HTTP; the EKS simulator writes them directly (as the
`eks` field manager) when it installs or updates an add-on, and scenarios write customer edits (as
e.g. `kubectl-edit`). `managedFields` is kept the way the API server keeps it: one entry per
manager, FieldsV1 naming the fields each manager set last.
"""

from __future__ import annotations

import bisect
import builtins
import copy
import itertools
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from autopatch.fields import (
    FieldPath,
    fieldsv1_to_paths,
    get_path,
    item_step,
    merge_fieldsv1,
    path_to_fieldsv1,
    remove_path_from_fieldsv1,
    set_path,
)

ObjectKey = tuple[str, str, str]  # (kind, namespace or "", name)
ListKey = tuple[str, str]  # (namespace or "", name): the order of a kind's objects in a list

# kind -> (apiVersion, plural, namespaced)
KINDS: dict[str, tuple[str, str, bool]] = {
    "Namespace": ("v1", "namespaces", False),
    "Node": ("v1", "nodes", False),
    "Pod": ("v1", "pods", True),
    "ConfigMap": ("v1", "configmaps", True),
    "Secret": ("v1", "secrets", True),
    "ServiceAccount": ("v1", "serviceaccounts", True),
    "Service": ("v1", "services", True),
    "Deployment": ("apps/v1", "deployments", True),
    "DaemonSet": ("apps/v1", "daemonsets", True),
    "StatefulSet": ("apps/v1", "statefulsets", True),
    "ReplicaSet": ("apps/v1", "replicasets", True),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets", True),
    "CronJob": ("batch/v1", "cronjobs", True),
    "Job": ("batch/v1", "jobs", True),
    # Kinds of the removed-API table (scenarios/data/kubernetes_versions.json `removed_apis`) that a
    # cluster on 1.23 or later can still hold under an older group/version. Each is stored under its
    # current version; the server also serves it through the older ones the cluster's version has.
    "Ingress": ("networking.k8s.io/v1", "ingresses", True),
    "IngressClass": ("networking.k8s.io/v1", "ingressclasses", False),
    "EndpointSlice": ("discovery.k8s.io/v1", "endpointslices", True),
    "Event": ("events.k8s.io/v1", "events", True),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers", True),
    "RuntimeClass": ("node.k8s.io/v1", "runtimeclasses", False),
    # No replacement: served only while policy/v1beta1 is (until 1.25), then invisible.
    "PodSecurityPolicy": ("policy/v1beta1", "podsecuritypolicies", False),
    "FlowSchema": ("flowcontrol.apiserver.k8s.io/v1", "flowschemas", False),
    "PriorityLevelConfiguration": ("flowcontrol.apiserver.k8s.io/v1", "prioritylevelconfigurations", False),
    "CSIStorageCapacity": ("storage.k8s.io/v1", "csistoragecapacities", True),
    "VolumeAttributesClass": ("storage.k8s.io/v1", "volumeattributesclasses", False),
    "ValidatingAdmissionPolicy": ("admissionregistration.k8s.io/v1", "validatingadmissionpolicies", False),
    "ValidatingAdmissionPolicyBinding": (
        "admissionregistration.k8s.io/v1",
        "validatingadmissionpolicybindings",
        False,
    ),
    "ResourceSlice": ("resource.k8s.io/v1", "resourceslices", False),
    "ResourceClaim": ("resource.k8s.io/v1", "resourceclaims", True),
    "ResourceClaimTemplate": ("resource.k8s.io/v1", "resourceclaimtemplates", True),
    "DeviceClass": ("resource.k8s.io/v1", "deviceclasses", False),
}
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
CLIENT_SIDE_APPLY_MANAGER = "kubectl-client-side-apply"
KUBERNETES_VERSIONS_FILE = (
    Path(__file__).resolve().parents[2] / "scenarios" / "data" / "kubernetes_versions.json"
)


# ---- served API versions ------------------------------------------------------------------------


def minor_key(version: str) -> tuple[int, int]:
    """`1.31` (or `v1.31.2`) -> (1, 31)."""
    major, minor = version.removeprefix("v").split(".")[:2]
    return int(major), int(minor)


@dataclass(frozen=True)
class RemovedApi:
    """One row of the removed-API table: `group_version` of `kind` is not served from `removed_in` on."""

    group_version: str
    kind: str
    removed_in: str
    replacement: str | None  # the group/version that replaces it (None: no replacement)
    replacement_since: str | None  # the Kubernetes minor that first served the replacement, if known

    @property
    def plural(self) -> str:
        return KINDS[self.kind][1] if self.kind in KINDS else self.kind.lower() + "s"


@cache
def _removed_api_rows() -> tuple[dict[str, Any], ...]:
    raw = json.loads(KUBERNETES_VERSIONS_FILE.read_text(encoding="utf-8"))
    return tuple(raw.get("removed_apis", []))


@cache
def introduced_in() -> dict[tuple[str, str], str]:
    """(group/version, kind) -> the first Kubernetes minor serving it, as far as the table says: from
    `replacement_available_since`, either a plain minor, per version (`1.26 (v1beta3); 1.23 (v1beta2)`)
    or per kind (`1.19 (CSIDriver) / 1.17 (CSINode)`)."""
    found: dict[tuple[str, str], str] = {}

    def note(group_version: str, kind: str, minor: str) -> None:
        key = (group_version, kind)
        if key not in found or minor_key(minor) < minor_key(found[key]):
            found[key] = minor

    for entry in _removed_api_rows():
        replacement = (entry.get("replacement") or "").split(" ")[0]
        since = entry.get("replacement_available_since") or ""
        kind = entry["kind"]
        if not replacement:
            continue
        group = replacement.rpartition("/")[0]
        if re.fullmatch(r"\d+\.\d+", since):
            note(replacement, kind, since)
            continue
        for minor, what in re.findall(r"(\d+\.\d+) \((\w+)\)", since):
            if what == kind:
                note(replacement, kind, minor)
            elif re.fullmatch(r"v\d+\w*", what):
                note(f"{group}/{what}" if group else what, kind, minor)
    return found


@cache
def removed_apis() -> tuple[RemovedApi, ...]:
    """The removed-API table of scenarios/data/kubernetes_versions.json (the Kubernetes deprecation guide)."""
    rows = []
    for entry in _removed_api_rows():
        replacement = (entry.get("replacement") or "").split(" ")[0] or None
        rows.append(
            RemovedApi(
                group_version=entry["group_version"],
                kind=entry["kind"],
                removed_in=entry["removed_in"],
                replacement=replacement,
                replacement_since=introduced_in().get((replacement, entry["kind"])) if replacement else None,
            )
        )
    return tuple(rows)


def version_rank(group_version: str) -> tuple[int, int, int]:
    """Kubernetes' version priority: GA before beta before alpha, higher numbers first (sort ascending)."""
    match = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", group_version.rpartition("/")[2])
    if match is None:
        return (3, 0, 0)
    level = {None: 0, "beta": 1, "alpha": 2}[match[2]]
    return (level, -int(match[1]), -int(match[3] or 0))


def known_api_versions(kind: str) -> list[str]:
    """Every group/version `kind` has had: its current one, and the removed ones and replacements of the
    table."""
    versions = [KINDS[kind][0]]
    versions += [row.group_version for row in removed_apis() if row.kind == kind]
    versions += [group_version for group_version, of_kind in introduced_in() if of_kind == kind]
    return sorted(set(versions), key=version_rank)


@cache
def served_api_versions(kind: str, kubernetes_version: str) -> list[str]:
    """The group/versions through which a cluster on `kubernetes_version` serves `kind`, preferred first:
    the kind's current version once it exists, and every older one of the table not yet removed.
    Alpha versions are never served (EKS does not enable alpha APIs)."""
    current = minor_key(kubernetes_version)
    introduced = introduced_in()
    removed = {row.group_version: row.removed_in for row in removed_apis() if row.kind == kind}
    served = []
    for group_version in known_api_versions(kind):
        if "alpha" in group_version.rpartition("/")[2]:
            continue
        if group_version in removed and current >= minor_key(removed[group_version]):
            continue
        since = introduced.get((group_version, kind))
        if since is not None and current < minor_key(since):
            continue
        served.append(group_version)
    return served


def removed_api(group_version: str, kind: str) -> RemovedApi | None:
    return next((r for r in removed_apis() if (r.group_version, r.kind) == (group_version, kind)), None)


@dataclass
class ApiUsage:
    """Requests one client made to one deprecated resource path (what EKS reads from the audit log)."""

    user_agent: str
    path: str  # /apis/batch/v1beta1/cronjobs
    requests: int
    last_request_time: datetime


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _leaf_paths(value: Any, prefix: FieldPath) -> builtins.list[FieldPath]:
    """Leaf paths of a (partial) object: used to record what a manager set."""
    if isinstance(value, dict) and value:
        out: builtins.list[FieldPath] = []
        for key, child in value.items():
            out.extend(_leaf_paths(child, (*prefix, key)))
        return out
    if isinstance(value, list) and value and all(isinstance(i, dict) and "name" in i for i in value):
        out = []
        for item in value:
            item_prefix = (*prefix, item_step({"name": item["name"]}))
            out.extend(_leaf_paths({k: v for k, v in item.items() if k != "name"}, item_prefix))
        return out
    return [prefix]


# A List carries its items without kind and apiVersion: the List's own say what they are.
_NOT_IN_LIST_ITEMS = frozenset(("kind", "apiVersion"))


@dataclass(frozen=True)
class ListPage:
    """One page of a LIST, its items already encoded (see KubeStore.list_page)."""

    items_json: str  # a JSON array of the page's objects, each without kind and apiVersion
    count: int
    continue_after: ListKey | None  # the last key returned, when more objects match after it
    resource_version: str  # the highest resourceVersion among every object of the kind listed


class KubeStore:
    """Objects of one cluster. Thread-safe; every read returns a deep copy (or, for list_page, JSON)."""

    def __init__(self, cluster_name: str, kubernetes_version: str) -> None:
        self.cluster_name = cluster_name
        self.kubernetes_version = kubernetes_version
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        # kind -> its objects' (namespace, name), sorted: kept up to date by put and delete.
        self._sorted_keys: dict[str, builtins.list[ListKey]] = {}
        # kind -> namespace (None: all) -> highest resourceVersion; dropped on any write of the kind.
        self._list_rv: dict[str, dict[str | None, int]] = {}
        self._rv = itertools.count(1000)
        self._lock = threading.RLock()
        self.clock_now = _now  # the engine points this at the simulated clock
        # (user agent, path) -> requests to a deprecated API seen in the audit log (upgrade insights)
        self._api_usage: dict[tuple[str, str], ApiUsage] = {}

    # ---- basic CRUD -------------------------------------------------------------------------
    @staticmethod
    def key_of(obj: dict[str, Any]) -> ObjectKey:
        meta = obj["metadata"]
        return (obj["kind"], meta.get("namespace", "") or "", meta["name"])

    def put(
        self, obj: dict[str, Any], manager: str = "kubectl", *, yield_to_others: bool = False
    ) -> dict[str, Any]:
        """Create or replace an object; `manager` becomes the owner of every field it contains.

        With `yield_to_others`, fields another manager owns keep their current value and owner
        (what EKS does for an add-on update with resolveConflicts=PRESERVE).
        """
        obj = copy.deepcopy(obj)
        kind = obj["kind"]
        api_version, _, namespaced = KINDS[kind]
        obj["apiVersion"] = api_version  # one stored version per kind, whatever version it came through
        meta = obj.setdefault("metadata", {})
        if not namespaced:
            meta.pop("namespace", None)
        with self._lock:
            old = self._objects.get(self.key_of(obj))
            meta.setdefault("uid", old["metadata"]["uid"] if old else str(uuid.uuid4()))
            meta.setdefault(
                "creationTimestamp", old["metadata"]["creationTimestamp"] if old else self.clock_now()
            )
            meta["resourceVersion"] = str(next(self._rv))
            kept: builtins.list[FieldPath] = []
            if yield_to_others and old is not None:
                for entry in old["metadata"].get("managedFields", []):
                    if entry["manager"] == manager:
                        continue
                    for path in fieldsv1_to_paths(entry.get("fieldsV1", {})):
                        current = get_path(old, path, None)
                        if current is not None:
                            set_path(obj, path, copy.deepcopy(current))
                            kept.append(path)
            owned = [
                p for p in _leaf_paths(obj, ()) if p[0] not in ("metadata", "status", "apiVersion", "kind")
            ]
            if meta.get("labels"):
                owned += _leaf_paths(meta["labels"], ("metadata", "labels"))
            owned = [p for p in owned if not any(p[: len(k)] == k for k in kept)]
            fields: dict[str, Any] = {}
            for path in owned:
                merge_fieldsv1(fields, path_to_fieldsv1(path))
            entries = [e for e in (old or {}).get("metadata", {}).get("managedFields", [])]
            entries = self._take_ownership(entries, owned, manager)
            entries = [e for e in entries if e["manager"] != manager]
            entries.append(self._entry(manager, api_version, fields))
            meta["managedFields"] = entries
            key = self.key_of(obj)
            if old is None:
                bisect.insort(self._sorted_keys.setdefault(kind, []), key[1:])
            self._objects[key] = obj
            self._list_rv.pop(kind, None)
            return copy.deepcopy(obj)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            obj = self._objects.get((kind, namespace or "", name))
            return copy.deepcopy(obj) if obj else None

    def list(
        self, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> builtins.list[dict[str, Any]]:
        with self._lock:
            found = [
                copy.deepcopy(o)
                for o in self._scan(kind, namespace)
                if all(o["metadata"].get("labels", {}).get(lk) == lv for lk, lv in (labels or {}).items())
            ]
        return found

    def list_page(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        match: Callable[[dict[str, Any]], bool] | None = None,
        after: ListKey | None = None,
        limit: int = 0,
        encode: Callable[[Any], str] = json.dumps,
    ) -> ListPage:
        """One page of a LIST, in (namespace, name) order: the objects after the key `after` that
        `match` accepts (all if None), at most `limit` of them (all if 0).

        Only the objects returned are read in full: the scan starts at `after` by bisection and
        stops at the first match past the page, which only says that there is more. The items are
        encoded with `encode` under the lock (cheaper than a deep copy, and no one may change them
        meanwhile); `match` is given the stored objects and must not change them.
        """
        with self._lock:
            page: builtins.list[dict[str, Any]] = []
            more = False
            for obj in self._scan(kind, namespace, after):
                if match is not None and not match(obj):
                    continue
                if limit and len(page) == limit:
                    more = True
                    break
                page.append(obj)
            items_json = encode(
                [{key: value for key, value in obj.items() if key not in _NOT_IN_LIST_ITEMS} for obj in page]
            )
            last = self.key_of(page[-1])[1:] if more else None
            return ListPage(items_json, len(page), last, str(self._list_resource_version(kind, namespace)))

    def _scan(
        self, kind: str, namespace: str | None, after: ListKey | None = None
    ) -> Iterator[dict[str, Any]]:
        """The stored objects of `kind` (in `namespace`, if not None) after `after`, in key order.
        Under the lock, and not across a write."""
        keys = self._sorted_keys.get(kind, [])
        start, stop = 0, len(keys)
        if namespace is not None:
            # ("ns",) sorts before every ("ns", name); ("ns\0",) after them and before any other namespace.
            start = bisect.bisect_left(keys, (namespace,))
            stop = bisect.bisect_left(keys, (namespace + "\0",))
        if after is not None:
            start = max(start, bisect.bisect_right(keys, after))
        for index in range(start, stop):
            yield self._objects[(kind, *keys[index])]

    def _list_resource_version(self, kind: str, namespace: str | None) -> int:
        """The highest resourceVersion of the objects a list of `kind` in `namespace` covers (1 if none)."""
        cached = self._list_rv.setdefault(kind, {})
        if namespace not in cached:
            cached[namespace] = max(
                (int(obj["metadata"]["resourceVersion"]) for obj in self._scan(kind, namespace)), default=1
            )
        return cached[namespace]

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        with self._lock:
            if self._objects.pop((kind, namespace or "", name), None) is None:
                return False
            keys = self._sorted_keys[kind]
            del keys[bisect.bisect_left(keys, (namespace or "", name))]
            self._list_rv.pop(kind, None)
            return True

    def update_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Status is written by controllers; it has no field manager in our model."""
        with self._lock:
            obj = self._objects[(kind, namespace or "", name)]
            obj.setdefault("status", {}).update(copy.deepcopy(status))
            obj["metadata"]["resourceVersion"] = str(next(self._rv))
            self._list_rv.pop(kind, None)

    def mutate(self, kind: str, namespace: str, name: str, fn: Any) -> dict[str, Any]:
        """Apply `fn(obj)` in place under the lock (controllers: cordon, labels, spec.replicas...)."""
        with self._lock:
            obj = self._objects[(kind, namespace or "", name)]
            fn(obj)
            obj["metadata"]["resourceVersion"] = str(next(self._rv))
            self._list_rv.pop(kind, None)
            return copy.deepcopy(obj)

    # ---- API versions -------------------------------------------------------------------------
    def served_api_versions(self, kind: str) -> builtins.list[str]:
        """The group/versions the cluster's current Kubernetes version serves `kind` through."""
        return served_api_versions(kind, self.kubernetes_version)

    def apply_manifest(
        self, manifest: dict[str, Any], manager: str = CLIENT_SIDE_APPLY_MANAGER
    ) -> dict[str, Any]:
        """`kubectl apply` (client-side) of a manifest: stored under the kind's current apiVersion, with
        the manifest as given in the last-applied-configuration annotation. Raises ValueError for a
        kind the store does not know or an apiVersion this cluster's version does not serve."""
        if not isinstance(manifest, dict) or not isinstance(manifest.get("metadata"), dict):
            raise ValueError("a manifest is a mapping with kind, apiVersion and metadata")
        kind, api_version = manifest.get("kind"), manifest.get("apiVersion")
        if kind not in KINDS:
            raise ValueError(
                f"kind {kind!r} is not one the fake Kubernetes API holds; known: {sorted(KINDS)}"
            )
        if not manifest["metadata"].get("name"):
            raise ValueError(f"{kind} manifest has no metadata.name")
        served = self.served_api_versions(kind)
        if api_version not in served:
            raise ValueError(
                f"{kind} {manifest['metadata']['name']}: Kubernetes {self.kubernetes_version} does not serve "
                f"{api_version} (it serves {kind} through {', '.join(served) or 'no version'})"
            )
        obj = copy.deepcopy(manifest)
        if KINDS[kind][2]:
            obj["metadata"].setdefault("namespace", "default")
        # kubectl stores the manifest as compact JSON with sorted keys and a final newline.
        applied = json.dumps(manifest, sort_keys=True, separators=(",", ":")) + "\n"
        obj["metadata"].setdefault("annotations", {})[LAST_APPLIED_ANNOTATION] = applied
        return self.put(obj, manager)

    @staticmethod
    def last_applied_api_version(obj: dict[str, Any]) -> str | None:
        """The apiVersion of the manifest `kubectl apply` last applied to `obj`, if any."""
        text = (obj.get("metadata", {}).get("annotations") or {}).get(LAST_APPLIED_ANNOTATION)
        if not text:
            return None
        try:
            applied = json.loads(text)
        except ValueError:
            return None
        return applied.get("apiVersion") if isinstance(applied, dict) else None

    def record_api_usage(
        self, user_agent: str, path: str, *, requests: int = 1, at: datetime | None = None
    ) -> None:
        """Count requests of a client to a deprecated API path, as the audit log would show them."""
        when = at or datetime.strptime(self.clock_now(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        with self._lock:
            seen = self._api_usage.get((user_agent, path))
            if seen is None:
                self._api_usage[(user_agent, path)] = ApiUsage(user_agent, path, requests, when)
            else:
                seen.requests += requests
                seen.last_request_time = max(seen.last_request_time, when)

    def api_usage(self) -> builtins.list[ApiUsage]:
        with self._lock:
            return [copy.copy(u) for _, u in sorted(self._api_usage.items())]

    # ---- field ownership --------------------------------------------------------------------
    def set_field(
        self, kind: str, namespace: str, name: str, path: FieldPath, value: Any, manager: str
    ) -> dict[str, Any]:
        """Set one field as `manager` (a customer's `kubectl edit`, or EKS applying its value)."""
        with self._lock:
            obj = self._objects[(kind, namespace or "", name)]
            set_path(obj, path, copy.deepcopy(value))
            meta = obj["metadata"]
            entries = self._take_ownership(meta.get("managedFields", []), [path], manager)
            mine = next((e for e in entries if e["manager"] == manager), None)
            if mine is None:
                mine = self._entry(manager, obj["apiVersion"], {})
                entries.append(mine)
            merge_fieldsv1(mine["fieldsV1"], path_to_fieldsv1(path))
            mine["time"] = self.clock_now()
            meta["managedFields"] = entries
            meta["resourceVersion"] = str(next(self._rv))
            self._list_rv.pop(kind, None)
            return copy.deepcopy(obj)

    def owners(self, kind: str, namespace: str, name: str) -> dict[str, builtins.list[FieldPath]]:
        """manager -> leaf paths it owns."""
        obj = self.get(kind, namespace, name)
        if obj is None:
            return {}
        return {
            e["manager"]: fieldsv1_to_paths(e.get("fieldsV1", {}))
            for e in obj["metadata"].get("managedFields", [])
        }

    def value(self, kind: str, namespace: str, name: str, path: FieldPath) -> Any:
        obj = self.get(kind, namespace, name)
        return None if obj is None else get_path(obj, path, None)

    def _entry(self, manager: str, api_version: str, fields: dict[str, Any]) -> dict[str, Any]:
        return {
            "manager": manager,
            "operation": "Apply" if manager == "eks" else "Update",
            "apiVersion": api_version,
            "time": self.clock_now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": fields,
        }

    @staticmethod
    def _take_ownership(
        entries: Iterable[dict[str, Any]], paths: builtins.list[FieldPath], manager: str
    ) -> builtins.list[dict[str, Any]]:
        """Remove `paths` (and anything below them) from every other manager's entry."""
        result = []
        for entry in entries:
            entry = copy.deepcopy(entry)
            if entry["manager"] != manager:
                fields = entry.get("fieldsV1", {})
                for path in paths:
                    for owned in fieldsv1_to_paths(fields):
                        if owned[: len(path)] == path or path[: len(owned)] == owned:
                            fields = remove_path_from_fieldsv1(fields, owned)
                entry["fieldsV1"] = fields
                if not fieldsv1_to_paths(fields):
                    continue
            result.append(entry)
        return result
