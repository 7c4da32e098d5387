"""Drain rehearsal of a managed node group: which pods would stop EKS from draining its old nodes.

EKS rolls a node group itself: it picks up to maxUnavailable old nodes at random, evicts their pods
through the eviction API (which honours PodDisruptionBudgets), and after 15 minutes gives up with
PodEvictionFailure, naming only the nodes. With `force=true` it deletes what it could not evict.
Autopatch never drains anything. Before it asks EKS to roll a group it reads nodes, pods and PDBs
once, read-only, and answers the question EKS would answer 15 minutes too late: which pod, held by
which PDB, and why.

The eviction API's rules, as the rehearsal applies them to each pod on an old node:

- DaemonSet pods and mirror (static) pods are not evicted (EKS and `kubectl drain` skip them).
- A pod that is Pending, Succeeded, Failed or already terminating is deleted without a budget check.
- A pod selected by more than one PDB is refused outright (HTTP 500).
- A pod that is not Ready gets through without spending the budget if the application is otherwise
  healthy (`IfHealthyBudget`: currentHealthy ≥ desiredHealthy > 0) or if the PDB says `AlwaysAllow`.
- Otherwise the eviction needs `status.disruptionsAllowed` ≥ 1 and spends one disruption (HTTP 429
  if there is none). The budget comes back when the pod's replacement is Ready.

So a PDB at 0 blocks every healthy pod it selects on the group: because of its own numbers
(minAvailable ≥ the replicas, maxUnavailable 0) or because some of its pods are not Ready now.
A PDB that allows one disruption or more does not block pods whose replacements can start elsewhere:
EKS retries, and evictions of the same PDB go one after another, each after the previous pod's
replacement is Ready, even when nodes of the same batch draw on the same budget. A workload whose
every replica is on old nodes still drains, because the replacements start on new nodes. What a
budget cannot get back is an eviction with no replacement (a pod without a controller, or one
pinned to an old node): each spends a disruption for good, and in the worst order the pods still
left once the budget is spent stay on their nodes.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from autopatch.models import Check

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
HOSTNAME_LABEL = "kubernetes.io/hostname"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
# Completed pods are deleted with no budget check and count for nothing: the list leaves them out.
LIVE_PODS_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
EVICTION_TIMEOUT_MINUTES = 15
DETAIL_LIMIT = 10

# Phases the eviction API deletes without a budget check (with terminating pods).
_NO_BUDGET_PHASES = frozenset({"Pending", "Succeeded", "Failed"})
# Controllers whose pods are not "replicas of a workload" for the replica and PDB findings.
_NOT_REPLICATED_KINDS = frozenset({"DaemonSet", "Job", "Node"})

JsonObject = dict[str, Any]
JsonObjects = list[JsonObject]  # spelled here: inside KubeLister, `list` names the method


class KubeLister(Protocol):
    """What `read_drain_inputs` needs of a KubeReader: its LIST, across all pages."""

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> JsonObjects: ...


# ---- label selectors ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Requirement:
    """One `matchExpressions` entry: In, NotIn, Exists or DoesNotExist."""

    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist

    def __str__(self) -> str:
        if self.operator in ("In", "NotIn"):
            return f"{self.key} {self.operator.lower()} ({','.join(sorted(self.values))})"
        return self.key if self.operator == "Exists" else f"!{self.key}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A PDB's `spec.selector`. An empty one selects every pod of the namespace (policy/v1); one
    the API server could not parse (an unknown operator, In without values) selects none, as the
    eviction API skips such a budget."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()
    valid: bool = True

    @classmethod
    def from_api(cls, selector: Mapping[str, Any] | None) -> LabelSelector | None:
        """None for a null selector, which selects no pods."""
        if selector is None:
            return None
        labels = tuple(sorted((str(k), str(v)) for k, v in (selector.get("matchLabels") or {}).items()))
        expressions = []
        valid = True
        for expression in selector.get("matchExpressions") or []:
            operator = str(expression.get("operator", ""))
            values = frozenset(str(v) for v in expression.get("values") or [])
            if operator in ("In", "NotIn"):
                valid = valid and bool(values)
            elif operator in ("Exists", "DoesNotExist"):
                valid = valid and not values
            else:
                valid = False
            expressions.append(Requirement(str(expression.get("key", "")), operator, values))
        return cls(labels, tuple(expressions), valid)

    def matches(self, labels: Mapping[str, str]) -> bool:
        if not self.valid:
            return False
        return all(labels.get(key) == value for key, value in self.match_labels) and all(
            requirement.holds(labels) for requirement in self.match_expressions
        )

    def __str__(self) -> str:
        terms = [f"{key}={value}" for key, value in self.match_labels]
        terms += [str(requirement) for requirement in self.match_expressions]
        return ",".join(terms) or "(every pod)"


# ---- what the analysis keeps of each object -------------------------------------------------
@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    hostname: str = ""  # the kubernetes.io/hostname label, which pods pin themselves to

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> NodeInfo:
        meta = obj.get("metadata") or {}
        return cls(
            name=str(meta.get("name", "")), hostname=str((meta.get("labels") or {}).get(HOSTNAME_LABEL, ""))
        )


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What the rehearsal needs of one pod. `labels` may be shared between pods: never mutate it."""

    namespace: str
    name: str
    node: str  # spec.nodeName; "" while unscheduled
    labels: Mapping[str, str] = field(default_factory=dict)
    owner_kind: str = ""  # kind of the controlling ownerReference; "" for a pod with no controller
    owner_name: str = ""
    phase: str = "Running"
    ready: bool = True
    terminating: bool = False  # metadata.deletionTimestamp is set
    mirror: bool = False  # a static pod's mirror
    readiness_probe: bool = True  # some container has a readinessProbe
    pinned_hosts: tuple[str, ...] = ()  # hostnames its nodeSelector or node affinity requires
    tolerates_cordon: bool = False  # tolerates node.kubernetes.io/unschedulable (or every taint)

    @classmethod
    def from_api(cls, obj: Mapping[str, Any], cache: _InternCache | None = None) -> PodInfo:
        cache = cache if cache is not None else _InternCache()
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        owner = next((ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")), None)
        containers = spec.get("containers") or []
        conditions = status.get("conditions") or []
        return cls(
            namespace=cache.text(str(meta.get("namespace", ""))),
            name=str(meta.get("name", "")),
            node=cache.text(str(spec.get("nodeName") or "")),
            labels=cache.labels(meta.get("labels") or {}),
            owner_kind=cache.text(str(owner.get("kind", ""))) if owner else "",
            owner_name=cache.text(str(owner.get("name", ""))) if owner else "",
            phase=cache.text(str(status.get("phase") or "Pending")),
            ready=any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions),
            terminating=bool(meta.get("deletionTimestamp")),
            mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {})
            or (owner is not None and owner.get("kind") == "Node"),
            readiness_probe=any(c.get("readinessProbe") for c in containers),
            pinned_hosts=_pinned_hosts(spec),
            tolerates_cordon=any(_tolerates_cordon(t) for t in spec.get("tolerations") or []),
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def drained(self) -> bool:
        """EKS evicts it when it drains its node (not a DaemonSet or mirror pod)."""
        return not self.mirror and self.owner_kind != "DaemonSet"

    @property
    def budget_checked(self) -> bool:
        """The eviction API checks its PDB (it is not Pending, finished or already terminating)."""
        return self.phase not in _NO_BUDGET_PHASES and not self.terminating

    @property
    def live(self) -> bool:
        return self.phase not in ("Succeeded", "Failed")

    @property
    def workload(self) -> str:
        """ "Deployment shop/web" (a ReplicaSet named after its pod-template-hash belongs to a
        Deployment), "StatefulSet data/db", ...; "" for a pod with no controller."""
        if not self.owner_kind:
            return ""
        kind, name = self.owner_kind, self.owner_name
        template_hash = self.labels.get(POD_TEMPLATE_HASH_LABEL)
        if kind == "ReplicaSet" and template_hash and name.endswith(f"-{template_hash}"):
            kind, name = "Deployment", name[: -len(template_hash) - 1]
        return f"{kind} {self.namespace}/{name}"


@dataclass(frozen=True, slots=True)
class PdbInfo:
    namespace: str
    name: str
    selector: LabelSelector | None  # None: a null selector, which selects no pods
    min_available: int | str | None = None  # an int or a percentage ("50%")
    max_unavailable: int | str | None = None
    unhealthy_pod_eviction_policy: str = "IfHealthyBudget"
    disruptions_allowed: int = 0
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> PdbInfo:
        meta = obj.get("metadata") or {}
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            selector=LabelSelector.from_api(spec.get("selector")),
            min_available=spec.get("minAvailable"),
            max_unavailable=spec.get("maxUnavailable"),
            unhealthy_pod_eviction_policy=str(spec.get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"),
            disruptions_allowed=int(status.get("disruptionsAllowed") or 0),
            current_healthy=int(status.get("currentHealthy") or 0),
            desired_healthy=int(status.get("desiredHealthy") or 0),
            expected_pods=int(status.get("expectedPods") or 0),
        )

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def selects(self, pod: PodInfo) -> bool:
        return (
            pod.namespace == self.namespace
            and self.selector is not None
            and self.selector.matches(pod.labels)
        )

    @property
    def rule(self) -> str:
        """ "minAvailable 3", "maxUnavailable 0", "minAvailable 50%"."""
        if self.min_available is not None:
            return f"minAvailable {self.min_available}"
        if self.max_unavailable is not None:
            return f"maxUnavailable {self.max_unavailable}"
        return "no minAvailable or maxUnavailable"


@dataclass(frozen=True)
class DrainInputs:
    """The node group's nodes, every live pod of the cluster and every PDB, as the rehearsal needs them."""

    nodegroup: str
    nodes: Sequence[NodeInfo]
    pods: Sequence[PodInfo]
    pdbs: Sequence[PdbInfo]


class _InternCache:
    """Pods of one workload repeat the same namespace, node, owner and labels: keep one copy each."""

    def __init__(self) -> None:
        self._labels: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}

    @staticmethod
    def text(value: str) -> str:
        return sys.intern(value)

    def labels(self, labels: Mapping[str, Any]) -> Mapping[str, str]:
        items = tuple((sys.intern(str(k)), sys.intern(str(v))) for k, v in labels.items())
        shared = self._labels.get(items)
        if shared is None:
            shared = self._labels[items] = dict(items)
        return shared


def _pinned_hosts(spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The hostnames a pod may only run on (nodeSelector or required node affinity), or ()."""
    pinned = (spec.get("nodeSelector") or {}).get(HOSTNAME_LABEL)
    if pinned:
        return (str(pinned),)
    affinity = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution"
    ) or {}
    terms = affinity.get("nodeSelectorTerms") or []
    hosts: list[str] = []
    for term in terms:  # terms are ORed: every one of them must name hosts for the pod to be pinned
        named = [
            requirement.get("values") or []
            for requirement in [*(term.get("matchExpressions") or []), *(term.get("matchFields") or [])]
            if requirement.get("key") in (HOSTNAME_LABEL, "metadata.name")
            and requirement.get("operator") == "In"
        ]
        if not named:
            return ()
        hosts.extend(str(value) for values in named for value in values)
    return tuple(sorted(set(hosts)))


def _tolerates_cordon(toleration: Mapping[str, Any]) -> bool:
    if toleration.get("effect") not in (None, "", "NoSchedule"):
        return False
    key, operator = toleration.get("key") or "", toleration.get("operator") or "Equal"
    return (not key and operator == "Exists") or key == UNSCHEDULABLE_TAINT


# ---- reading --------------------------------------------------------------------------------
def read_drain_inputs(kube: KubeLister, *, nodegroup: str) -> DrainInputs:
    """Three LISTs, each paged by the reader: the group's nodes (by label), then every PDB and every
    live pod of the cluster, once each. Only what the rehearsal needs is kept of each object."""
    node_objects = _listed(kube, "Node", label_selector=f"{NODEGROUP_LABEL}={nodegroup}")
    nodes = tuple(NodeInfo.from_api(obj) for obj in node_objects)
    if not nodes:
        return DrainInputs(nodegroup, (), (), ())
    pdbs = tuple(PdbInfo.from_api(obj) for obj in _listed(kube, "PodDisruptionBudget"))
    cache = _InternCache()
    pod_objects = _listed(kube, "Pod", field_selector=LIVE_PODS_FIELD_SELECTOR)
    pods = tuple(PodInfo.from_api(obj, cache) for obj in pod_objects)
    del pod_objects  # the API objects take some 60 times the memory of what is kept
    return DrainInputs(nodegroup, nodes, pods, pdbs)


def _listed(kube: KubeLister, kind: str, **selectors: str) -> Iterable[JsonObject]:
    """The objects of one LIST, page by page where the lister can (KubeReader.iter_list holds one
    page at a time), else as its `list` returns them."""
    iter_list = getattr(kube, "iter_list", None)
    objects: Iterable[JsonObject] = (iter_list or kube.list)(kind, **selectors)
    return objects


# ---- the plan -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BlockingPod:
    """A pod EKS could not evict, the PDB(s) that hold it and why (the fields of models.BlockingPod)."""

    pod: str  # namespace/name
    node: str
    pdb: str | None  # namespace/name; several, comma-separated, when more than one selects the pod
    why: str


@dataclass(frozen=True, slots=True)
class Finding:
    """A recommended finding about one workload (or one pod with no controller) on the group."""

    subject: str  # "Deployment shop/web", or "Pod shop/debug" for a pod with no controller
    pods: tuple[str, ...]  # namespace/name of its pods on the group's old nodes
    note: str  # in plain words

    def __str__(self) -> str:
        return f"{self.subject} ({self.note})"


@dataclass(frozen=True, slots=True)
class BudgetQueue:
    """A PDB whose pods in one batch must be evicted in turn, each after a replacement is Ready."""

    pdb: str
    allowed: int  # status.disruptionsAllowed
    pods_in_batch: int  # its pods on the worst batch of maxUnavailable old nodes
    rounds: int  # ceil(pods_in_batch / allowed): waits for replacements within EKS's 15 minutes

    def __str__(self) -> str:
        return (
            f"PDB {self.pdb} allows {_count(self.allowed, 'disruption')} and the worst batch holds "
            f"{_count(self.pods_in_batch, 'of its pods', 'of its pods')}: {self.rounds} rounds of evictions, "
            "each after the replacements of the previous round are Ready"
        )


@dataclass
class DrainPlan:
    nodegroup: str
    max_unavailable: int
    nodes: dict[str, list[str]]  # old node -> namespace/name of each pod EKS will evict from it
    blocking: list[BlockingPod]
    would_force_evict: list[str]  # exactly the pods a force=true update would delete: the blocking ones
    bare_pods: list[Finding] = field(default_factory=list)  # deleted and not recreated
    single_replica_workloads: list[Finding] = field(default_factory=list)
    workloads_without_pdb: list[Finding] = field(default_factory=list)
    pods_without_readiness_probe: list[Finding] = field(default_factory=list)
    workloads_tolerating_cordon: list[Finding] = field(default_factory=list)
    budget_queues: list[BudgetQueue] = field(default_factory=list)  # most rounds first
    staying_pods: int = 0  # DaemonSet and mirror pods on the old nodes: EKS does not evict them

    @property
    def pods_to_evict(self) -> int:
        return sum(len(pods) for pods in self.nodes.values())

    def checks(self, limit: int = DETAIL_LIMIT) -> list[Check]:
        """`drain_rehearsal` (required), then the recommended findings, each detail naming at most
        `limit` items and "+N more"."""
        group = f"node group {self.nodegroup}"
        if self.blocking:
            nodes = len({b.node for b in self.blocking})
            drain_detail = (
                f"{_count(len(self.blocking), 'pod')} on {_count(nodes, 'node')} of {group} would block "
                f"the drain (EKS gives up after {EVICTION_TIMEOUT_MINUTES} minutes with PodEvictionFailure; "
                "force=true would delete them): " + _blocking_listing(self.blocking, limit)
            )
        elif not self.nodes:
            drain_detail = f"No old nodes in {group}: nothing to drain"
        else:
            drain_detail = (
                f"All {_count(self.pods_to_evict, 'pod')} on {_count(len(self.nodes), 'old node')} "
                f"of {group} can be evicted, {_count(self.max_unavailable, 'node')} at a time"
                + (f"; {self.staying_pods} DaemonSet and mirror pods stay" if self.staying_pods else "")
            )
            if self.budget_queues:
                drain_detail += f". Slowest budget: {self.budget_queues[0]}"
        return [
            Check(
                name="drain_rehearsal",
                severity="required",
                passed=not self.blocking,
                detail=drain_detail,
                reason="drain_blocked" if self.blocking else None,
            ),
            _recommended(
                "bare_pods",
                self.bare_pods,
                "Will be deleted and not recreated: no controller",
                limit,
                noun="pod",
            ),
            _recommended(
                "single_replica_workloads",
                self.single_replica_workloads,
                "One replica only: down from the eviction of its pod until the replacement is Ready",
                limit,
            ),
            _recommended(
                "workloads_without_pdb",
                self.workloads_without_pdb,
                "No PodDisruptionBudget: nothing limits how many of their pods are evicted at once",
                limit,
            ),
            _recommended(
                "pods_without_readiness_probe",
                self.pods_without_readiness_probe,
                "No readinessProbe: a replacement counts as Ready, and the next eviction goes ahead, "
                "as soon as its containers start",
                limit,
            ),
            _recommended(
                "workloads_tolerating_cordon",
                self.workloads_tolerating_cordon,
                f"Tolerate {UNSCHEDULABLE_TAINT}: a replacement can start again on the cordoned node, "
                "which then never empties",
                limit,
            ),
        ]


def _recommended(
    name: str, findings: list[Finding], headline: str, limit: int, noun: str = "workload"
) -> Check:
    detail = f"{headline} ({_count(len(findings), noun)}): " if findings else ""
    if findings:
        detail += _listing([str(f) for f in findings], limit)
    return Check(name=name, severity="recommended", passed=not findings, detail=detail)


def _blocking_listing(blocking: Sequence[BlockingPod], limit: int) -> str:
    """Up to `limit` pods, those of one PDB and reason together: "a on n1, b on n2 (PDB p: why)"."""
    groups: dict[tuple[str | None, str], list[str]] = defaultdict(list)
    for pod in blocking[:limit]:
        groups[(pod.pdb, pod.why)].append(f"{pod.pod} on {pod.node}")
    parts = []
    for (pdb, why), pods in groups.items():
        held = f"PDB {pdb}: " if pdb and "," not in pdb else ""
        parts.append(f"{', '.join(pods)} ({held}{why})")
    more = f"; +{len(blocking) - limit} more" if len(blocking) > limit else ""
    return "; ".join(parts) + more


def _listing(items: Sequence[str], limit: int, separator: str = ", ") -> str:
    shown = separator.join(items[:limit])
    return shown + (f"{separator}+{len(items) - limit} more" if len(items) > limit else "")


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


# ---- the rehearsal --------------------------------------------------------------------------
class _Budgets:
    """Which PDBs select which pods, matched once per distinct (namespace, labels)."""

    def __init__(self, pdbs: Iterable[PdbInfo], pods: Iterable[PodInfo]) -> None:
        self._by_namespace: dict[str, list[PdbInfo]] = defaultdict(list)
        for pdb in pdbs:
            if pdb.selector is not None:
                self._by_namespace[pdb.namespace].append(pdb)
        # Pods read through `read_drain_inputs` share their labels' dict with their siblings, so the
        # id of that dict (alive as long as the inputs are) is a cheap key for "the same labels".
        self._cache: dict[tuple[str, int], tuple[PdbInfo, ...]] = {}
        self.members: dict[str, list[PodInfo]] = defaultdict(list)
        for pod in pods:
            for pdb in self.of(pod):
                self.members[pdb.key].append(pod)

    def of(self, pod: PodInfo) -> tuple[PdbInfo, ...]:
        key = (pod.namespace, id(pod.labels))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = tuple(
                pdb for pdb in self._by_namespace.get(pod.namespace, ()) if pdb.selects(pod)
            )
        return found


@dataclass(frozen=True, slots=True)
class _Verdict:
    held_by: str | None  # the PDB(s) that refuse the eviction now
    why: str | None  # None: the eviction API lets the pod go now
    spends: PdbInfo | None = None  # the budget its eviction spends


def _verdict(pod: PodInfo, budgets: _Budgets) -> _Verdict:
    """What the eviction API answers for this pod, with the budgets as they are now."""
    if not pod.budget_checked:
        return _Verdict(None, None)
    pdbs = budgets.of(pod)
    if not pdbs:
        return _Verdict(None, None)
    if len(pdbs) > 1:
        names = ", ".join(sorted(pdb.key for pdb in pdbs))
        return _Verdict(
            names,
            f"selected by {len(pdbs)} PodDisruptionBudgets ({names}); the eviction API refuses a pod "
            "with more than one (HTTP 500)",
        )
    pdb = pdbs[0]
    if not pod.ready and (
        pdb.unhealthy_pod_eviction_policy == "AlwaysAllow" or 0 < pdb.desired_healthy <= pdb.current_healthy
    ):
        return _Verdict(None, None)  # an unready pod of an otherwise healthy application goes freely
    if pdb.disruptions_allowed <= 0:
        return _Verdict(pdb.key, _zero_budget_why(pdb, budgets.members[pdb.key]))
    return _Verdict(None, None, spends=pdb)


def _zero_budget_why(pdb: PdbInfo, members: Sequence[PodInfo]) -> str:
    replicas = pdb.expected_pods or sum(1 for pod in members if pod.live)
    numbers = f"{pdb.rule} with {_count(replicas, 'replica')}"
    uncounted = [pod for pod in members if not pod.owner_kind]
    if uncounted and (pdb.max_unavailable is not None or "%" in str(pdb.min_available or "")):
        return (
            f"{pdb.rule} selects pods with no controller ({_pod_names(uncounted)}): the disruption "
            "controller cannot count the expected replicas, so it allows 0 disruptions"
        )
    if not (pdb.expected_pods or pdb.current_healthy or pdb.desired_healthy):
        return "its status is not computed yet (expectedPods 0): allows 0 disruptions"
    would_allow = replicas - pdb.desired_healthy
    if would_allow <= 0:
        return f"{numbers}: allows 0 disruptions"
    unready = [pod for pod in members if pod.live and not pod.ready]
    if unready:
        return (
            f"{numbers} would allow {_count(would_allow, 'disruption')}, but "
            f"{_count(len(unready), 'pod is', 'pods are')} not Ready now "
            f"({_pod_names(unready, nodes=True)}): allows 0 disruptions until "
            + ("it is" if len(unready) == 1 else "they are")
        )
    return (
        f"{numbers}: status says 0 disruptions allowed (currentHealthy {pdb.current_healthy}, "
        f"desiredHealthy {pdb.desired_healthy})"
    )


def _pod_names(pods: Sequence[PodInfo], *, nodes: bool = False, limit: int = 3) -> str:
    def one(pod: PodInfo) -> str:
        if not nodes:
            return pod.key
        where = f"on {pod.node}" if pod.node else "not scheduled"
        state = "terminating" if pod.terminating else pod.phase if pod.phase != "Running" else "not Ready"
        return f"{pod.key} {state} {where}" if state != "not Ready" else f"{pod.key} {where}"

    return _listing([one(pod) for pod in pods], limit)


def rehearse_drain(
    inputs: DrainInputs, *, max_unavailable: int, old_nodes: Collection[str] | None = None
) -> DrainPlan:
    """Decide, for each pod EKS would evict from the group's old nodes (all of its nodes unless
    `old_nodes` names them), whether the eviction API would let it go, in the worst order EKS could
    pick its batches of `max_unavailable` nodes."""
    if max_unavailable < 1:
        raise ValueError("max_unavailable must be at least 1")
    old = [node for node in inputs.nodes if old_nodes is None or node.name in old_nodes]
    old_names = {node.name for node in old}
    old_hosts = old_names | {node.hostname for node in old if node.hostname}
    budgets = _Budgets(inputs.pdbs, inputs.pods)

    nodes: dict[str, list[str]] = {node.name: [] for node in old}
    evicted: list[PodInfo] = []
    staying = 0
    for pod in inputs.pods:
        if pod.node not in old_names or not pod.live:
            continue
        if not pod.drained:
            staying += 1
            continue
        nodes[pod.node].append(pod.key)
        evicted.append(pod)

    blocking: list[BlockingPod] = []
    spenders: dict[str, list[PodInfo]] = defaultdict(list)
    pdb_by_key = {pdb.key: pdb for pdb in inputs.pdbs}
    for pod in evicted:
        verdict = _verdict(pod, budgets)
        if verdict.why is not None:
            blocking.append(BlockingPod(pod.key, pod.node, verdict.held_by, verdict.why))
        elif verdict.spends is not None:
            spenders[verdict.spends.key].append(pod)
    for key, pods in spenders.items():
        blocking.extend(_spent_for_good(pdb_by_key[key], pods, old_hosts))
    blocking.sort(key=lambda b: (b.pdb or "", b.pod))

    return DrainPlan(
        nodegroup=inputs.nodegroup,
        max_unavailable=max_unavailable,
        nodes={name: sorted(pods) for name, pods in sorted(nodes.items())},
        blocking=blocking,
        would_force_evict=[b.pod for b in blocking],
        bare_pods=[
            Finding(f"Pod {pod.key}", (pod.key,), f"on {pod.node}")
            for pod in sorted(evicted, key=lambda p: p.key)
            if not pod.owner_kind
        ],
        staying_pods=staying,
        budget_queues=_budget_queues(spenders, pdb_by_key, max_unavailable),
        **_workload_findings(inputs.pods, evicted, budgets, old_names, max_unavailable),
    )


def _replacement_blocked(pod: PodInfo, old_hosts: set[str]) -> str | None:
    """Why an eviction of this pod gets no replacement that becomes Ready elsewhere, or None."""
    if not pod.owner_kind:
        return "no controller recreates it"
    if pod.pinned_hosts and set(pod.pinned_hosts) <= old_hosts:
        return f"its replacement is pinned to {', '.join(pod.pinned_hosts)}, which is being replaced"
    return None


def _spent_for_good(pdb: PdbInfo, pods: Sequence[PodInfo], old_hosts: set[str]) -> list[BlockingPod]:
    """Pods of a PDB that allows disruptions now: they all leave unless evictions with no replacement
    use the budget up. In the worst order those go first; then whatever is left stays."""
    lost = [(pod, why) for pod in pods if (why := _replacement_blocked(pod, old_hosts)) is not None]
    replaced = len(pods) - len(lost)
    if len(lost) + (1 if replaced else 0) <= pdb.disruptions_allowed:
        return []
    stuck = len(pods) - pdb.disruptions_allowed
    causes = "; ".join(f"{pod.key}: {why}" for pod, why in lost[:3]) + (
        f"; +{len(lost) - 3} more" if len(lost) > 3 else ""
    )
    why = (
        f"{pdb.rule} allows {_count(pdb.disruptions_allowed, 'disruption')} and "
        f"{_count(len(lost), 'of its pods', 'of its pods')} on the group will not come back ({causes}), "
        f"so each of their evictions spends the budget for good: in the worst order {stuck} of its "
        f"{len(pods)} pods on the group stay on their nodes"
    )
    return [BlockingPod(pod.key, pod.node, pdb.key, why) for pod in pods]


def _budget_queues(
    spenders: Mapping[str, Sequence[PodInfo]], pdbs: Mapping[str, PdbInfo], max_unavailable: int
) -> list[BudgetQueue]:
    """For each PDB, the batch of `max_unavailable` old nodes holding most of its pods (EKS picks at
    random, so assume the worst): how many rounds of evictions that batch waits for."""
    queues = []
    for key, pods in spenders.items():
        per_node: dict[str, int] = defaultdict(int)
        for pod in pods:
            per_node[pod.node] += 1
        in_batch = sum(sorted(per_node.values(), reverse=True)[:max_unavailable])
        allowed = pdbs[key].disruptions_allowed
        rounds = math.ceil(in_batch / allowed)
        if rounds > 1:
            queues.append(BudgetQueue(key, allowed, in_batch, rounds))
    queues.sort(key=lambda q: (-q.rounds, q.pdb))
    return queues


def _workload_findings(
    pods: Sequence[PodInfo],
    evicted: Sequence[PodInfo],
    budgets: _Budgets,
    old_names: set[str],
    max_unavailable: int,
) -> dict[str, list[Finding]]:
    replicas: dict[str, list[PodInfo]] = defaultdict(list)  # workload -> its live pods, anywhere
    for pod in pods:
        if pod.live and pod.owner_kind not in _NOT_REPLICATED_KINDS and pod.owner_kind:
            replicas[pod.workload].append(pod)
    on_group: dict[str, list[PodInfo]] = defaultdict(list)  # workload or "Pod ns/name" -> evicted pods
    for pod in evicted:
        on_group[pod.workload or f"Pod {pod.key}"].append(pod)

    single, unprotected, unprobed, tolerating = [], [], [], []
    for subject, group_pods in sorted(on_group.items()):
        keys = tuple(sorted(pod.key for pod in group_pods))
        unready_probe = [pod for pod in group_pods if not pod.readiness_probe]
        if unready_probe:
            unprobed.append(Finding(subject, tuple(p.key for p in unready_probe), _pods_text(unready_probe)))
        if subject not in replicas:
            continue  # a pod with no controller, or a Job's: the replica findings do not apply
        everywhere = replicas[subject]
        if any(pod.tolerates_cordon for pod in group_pods):
            tolerating.append(Finding(subject, keys, _pods_text(group_pods)))
        if len(everywhere) == 1:
            single.append(Finding(subject, keys, f"1 replica, on {group_pods[0].node}"))
        if not any(budgets.of(pod) for pod in everywhere):
            unprotected.append(_unprotected(subject, keys, everywhere, old_names, max_unavailable))
    unprotected.sort(key=lambda f: (not f.note.startswith("all"), f.subject))
    return {
        "single_replica_workloads": single,
        "workloads_without_pdb": unprotected,
        "pods_without_readiness_probe": unprobed,
        "workloads_tolerating_cordon": tolerating,
    }


def _pods_text(pods: Sequence[PodInfo]) -> str:
    return _count(len(pods), "pod") + " on the group"


def _unprotected(
    subject: str,
    keys: tuple[str, ...],
    replicas: Sequence[PodInfo],
    old_names: set[str],
    max_unavailable: int,
) -> Finding:
    """A workload no PDB covers: can one batch of old nodes take every replica down at once?"""
    on_old = {pod.node for pod in replicas if pod.node in old_names}
    elsewhere = sum(1 for pod in replicas if pod.node not in old_names and pod.ready)
    count = _count(len(replicas), "replica")
    if len(replicas) == 1:
        note = f"its only replica is on {replicas[0].node or 'no node'}"
    elif not elsewhere and len(on_old) <= max_unavailable:
        note = (
            f"all {count} on {_count(len(on_old), 'old node')}: with maxUnavailable {max_unavailable} "
            "one batch can evict them all at once"
        )
    elif elsewhere:
        note = f"{count}, {elsewhere} Ready off the old nodes"
    else:
        note = f"{count} on {_count(len(on_old), 'old node')}"
    return Finding(subject, keys, note)


# ---- after a PodEvictionFailure -------------------------------------------------------------
def explain_eviction_failure(inputs: DrainInputs, node_names: Iterable[str]) -> list[str]:
    """For the nodes a PodEvictionFailure names (EKS names nothing else), read again after the
    failure: the pods still on each, and the PDB that held each one, in plain words."""
    budgets = _Budgets(inputs.pdbs, inputs.pods)
    known = {node.name for node in inputs.nodes}
    by_node: dict[str, list[PodInfo]] = defaultdict(list)
    for pod in inputs.pods:
        if pod.live and pod.drained:
            by_node[pod.node].append(pod)
    lines: list[str] = []
    for node in node_names:
        if node not in known:
            lines.append(
                f"{node}: no longer a node of node group {inputs.nodegroup} (replaced or terminated)"
            )
            continue
        pods = sorted(by_node.get(node, []), key=lambda p: p.key)
        if not pods:
            lines.append(f"{node}: no pods left to evict now; they left after EKS stopped waiting")
            continue
        free: list[PodInfo] = []
        for pod in pods:
            verdict = _verdict(pod, budgets)
            if verdict.why is None:
                free.append(pod)
            elif verdict.held_by and "," not in verdict.held_by:
                lines.append(f"{node}: {pod.key} is held by PDB {verdict.held_by}: {verdict.why}")
            else:
                lines.append(f"{node}: {pod.key} is {verdict.why}")
        if free:
            lines.append(f"{node}: {_free_text(free, budgets)}")
    return lines


def _free_text(pods: Sequence[PodInfo], budgets: _Budgets) -> str:
    terminating = [pod for pod in pods if pod.terminating]
    returning = [pod for pod in pods if pod.tolerates_cordon and not pod.terminating]
    parts = [
        f"{_count(len(pods), 'pod is', 'pods are')} still here that no budget holds now "
        f"({_pod_names(pods, limit=5)})"
    ]
    if terminating:
        parts.append(f"{_count(len(terminating), 'is', 'are')} terminating ({_pod_names(terminating)})")
    if returning:
        parts.append(
            f"{_pod_names(returning)} {'tolerates' if len(returning) == 1 else 'tolerate'} "
            f"{UNSCHEDULABLE_TAINT}, so replacements can start again on this cordoned node"
        )
    with_budget = [pod for pod in pods if budgets.of(pod) and not pod.terminating]
    if with_budget:
        one = len(with_budget) == 1
        parts.append(
            f"{_count(len(with_budget), 'is', 'are')} under a PDB that allows a disruption now: "
            f"a retry can evict {'it' if one else 'them'}"
        )
    return "; ".join(parts)
