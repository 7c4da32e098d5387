"""The event contract and the operation record that flows through every workflow step.

Field names are the ones the ASL paths use (`$.status`, `$.approval.required`, `$.update.status`...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EVENT_SOURCE = "autopatch"
ADDON_VERSION_AVAILABLE = "EKS Add-on Version Available"
AMI_RELEASE_AVAILABLE = "EKS AMI Release Available"
END_OF_SUPPORT_APPROACHING = "EKS Version End Of Support Approaching"
APPROVAL_REQUESTED = "Autopatch Approval Requested"
OPERATION_FINISHED = "Autopatch Operation Finished"
TRIGGER_DETAIL_TYPES = (ADDON_VERSION_AVAILABLE, AMI_RELEASE_AVAILABLE, END_OF_SUPPORT_APPROACHING)

Status = Literal["running", "succeeded", "failed", "rolled_back", "rejected", "skipped", "blocked"]
FINAL_STATUSES: tuple[str, ...] = ("succeeded", "failed", "rolled_back", "rejected", "skipped", "blocked")
# A target that ended like this is announced again after the policy's `retryAfter`.
RETRYABLE_STATUSES: tuple[str, ...] = ("failed", "rejected", "blocked")
# A target in one of these is not claimed again.
HOLDING_STATUSES: tuple[str, ...] = ("running", "succeeded")

ComponentKind = Literal["addon", "nodegroup", "control-plane"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Component(_Model):
    kind: ComponentKind
    name: str = Field(min_length=1, max_length=100)


class TriggerDetail(_Model):
    clusterName: str = Field(min_length=1, max_length=100, pattern=r"^[0-9A-Za-z][A-Za-z0-9\-_]*$")
    accountId: str = Field(pattern=r"^\d{12}$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    component: Component
    currentVersion: str = Field(min_length=1, max_length=64)
    targetVersion: str = Field(min_length=1, max_length=64)
    detectedAt: datetime
    deadline: datetime | None = None
    # End of support only: which support the deadline ends, the cluster's upgrade policy, and the
    # notice threshold (days before the deadline) this announcement is for.
    supportPhase: Literal["standard", "extended"] | None = None
    supportType: Literal["STANDARD", "EXTENDED"] | None = None
    thresholdDays: int | None = Field(default=None, ge=0, le=3650)


class TriggerEvent(BaseModel):
    """The EventBridge envelope of a trigger, as a rule hands it to Step Functions."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    id: str
    detail_type: Literal[
        "EKS Add-on Version Available", "EKS AMI Release Available", "EKS Version End Of Support Approaching"
    ] = Field(alias="detail-type")
    source: Literal["autopatch"]
    account: str | None = None
    time: datetime | None = None
    region: str | None = None
    detail: TriggerDetail


class ClusterRef(_Model):
    name: str
    accountId: str
    region: str

    @property
    def key(self) -> str:
        return f"{self.accountId}#{self.region}#{self.name}"


class Check(_Model):
    name: str
    severity: Literal["required", "recommended"]
    passed: bool
    detail: str = ""
    reason: str | None = None  # the operation's reason code if this check blocks it


class StepRecord(_Model):
    name: str
    started: datetime
    ended: datetime
    outcome: str


class Approval(_Model):
    required: bool = False
    id: str | None = None
    timeoutSeconds: int = 86400
    decision: Literal["approved", "rejected"] | None = None
    by: str | None = None
    at: datetime | None = None
    reason: str | None = None


class EditedField(_Model):
    """A field of an add-on object set by a manager other than EKS (a customer's edit)."""

    object: str  # "ConfigMap kube-system/coredns"
    path: str  # ".data.Corefile"
    steps: list[str] = Field(default_factory=list)  # the same path, unambiguous
    manager: str
    before: Any = None
    after: Any = None


class WorkloadState(_Model):
    object: str  # "Deployment kube-system/coredns"
    desired: int
    ready: int
    updated: int
    image: str | None = None

    @property
    def rolled_out(self) -> bool:
        return self.desired > 0 and self.ready == self.desired and self.updated == self.desired


class Baseline(_Model):
    workloads: list[WorkloadState] = Field(default_factory=list)
    edits: list[EditedField] = Field(default_factory=list)
    configurationValues: str | None = None


class UpdateState(_Model):
    id: str | None = None
    type: str | None = None  # AddonUpdate, VersionUpdate, ConfigUpdate
    status: Literal["InProgress", "Failed", "Cancelled", "Successful"] | None = None
    errors: list[dict[str, Any]] = Field(default_factory=list)
    errorCode: str = ""  # the first error's code, where a Choice state can read it
    toVersion: str | None = None


class BlockingPod(_Model):
    """A pod the drain rehearsal (or EKS) found could not leave its node, and why."""

    pod: str  # namespace/name
    node: str
    pdb: str | None = None  # namespace/name
    why: str


class NodegroupPlan(_Model):
    """What preflight learned about a managed node group, and what the roll should do."""

    amiType: str
    version: str  # the node group's Kubernetes minor
    oldNodes: list[str] = Field(default_factory=list)
    updateConfig: dict[str, Any] = Field(default_factory=dict)
    desiredUpdateConfig: dict[str, Any] | None = None
    configChange: bool = False
    maxUnavailable: int = 1
    surge: int = 0
    force: bool = False
    forcePods: list[str] = Field(default_factory=list)  # exactly what force=true would delete
    blocking: list[BlockingPod] = Field(default_factory=list)
    baselinePods: dict[str, int] = Field(default_factory=dict)  # owner -> Ready pods before
    baselineUnhealthy: list[str] = Field(default_factory=list)  # pods Pending/CrashLoopBackOff before
    evictionFailure: list[str] = Field(default_factory=list)  # what held the nodes EKS named


class PollState(_Model):
    attempt: int = 0
    waitSeconds: int = 15


class VerifyState(_Model):
    attempt: int = 0
    passed: bool = False
    retry: bool = False
    waitSeconds: int = 60
    findings: list[str] = Field(default_factory=list)


class Notification(_Model):
    channel: Literal["slack", "sns", "eventbridge"]
    at: datetime
    status: str
    summary: str
    delivered: bool
    detail: str | None = None


class ChildResult(_Model):
    """An add-on or node group step of a control-plane hop, as the hop remembers it."""

    id: str
    kind: Literal["addon", "nodegroup"]
    name: str
    fromVersion: str
    toVersion: str
    status: Status = "running"
    reason: str | None = None
    message: str | None = None
    startedAt: datetime | None = None
    endedAt: datetime | None = None


class PlannedChild(_Model):
    kind: Literal["addon", "nodegroup"]
    name: str
    fromVersion: str
    toVersion: str


class Hop(_Model):
    """One minor version of a control-plane upgrade: control plane, then add-ons, then node groups."""

    fromVersion: str
    toVersion: str
    status: Status = "running"
    reason: str | None = None
    checks: list[Check] = Field(default_factory=list)
    approval: Approval | None = None
    insights: list[dict[str, Any]] = Field(default_factory=list)  # informational (ROLLBACK_READINESS)
    updateId: str | None = None
    startedAt: datetime | None = None
    controlPlaneStarted: datetime | None = None
    controlPlaneEnded: datetime | None = None
    addonsStarted: datetime | None = None
    addonsEnded: datetime | None = None
    nodegroupsStarted: datetime | None = None
    nodegroupsEnded: datetime | None = None
    endedAt: datetime | None = None
    children: list[ChildResult] = Field(default_factory=list)

    def durations(self) -> dict[str, int | None]:
        def seconds(start: datetime | None, end: datetime | None) -> int | None:
            return int((end - start).total_seconds()) if start and end else None

        return {
            "controlPlane": seconds(self.controlPlaneStarted, self.controlPlaneEnded),
            "addons": seconds(self.addonsStarted, self.addonsEnded),
            "nodegroups": seconds(self.nodegroupsStarted, self.nodegroupsEnded),
            "total": seconds(self.startedAt, self.endedAt),
        }


class SupportState(_Model):
    """Where the cluster's version stands in the EKS support calendar."""

    versionStatus: str | None = None  # STANDARD_SUPPORT | EXTENDED_SUPPORT | UNSUPPORTED
    supportType: str | None = None  # the cluster's upgradePolicy.supportType
    endOfStandardSupport: datetime | None = None
    endOfExtendedSupport: datetime | None = None

    @property
    def in_extended_support(self) -> bool:
        return self.versionStatus == "EXTENDED_SUPPORT"


class ErrorInfo(BaseModel):
    """What a `Catch` puts at `$.error`."""

    model_config = ConfigDict(extra="allow")

    Error: str
    Cause: str | None = None


class Operation(_Model):
    """One patch of one component of one cluster: the state every step reads and returns."""

    id: str  # the execution name
    executionArn: str
    eventId: str
    cluster: ClusterRef
    component: Component
    fromVersion: str
    toVersion: str
    detectedAt: datetime
    startedAt: datetime
    deadline: datetime | None = None
    phase: Literal["config", "update", "rollback"] = "update"
    status: Status = "running"
    reason: str | None = None
    message: str | None = None
    kubernetesVersion: str | None = None
    rollbackOnFailure: bool = True
    lockWaitBudget: int = 6 * 3600
    resolveConflicts: Literal["PRESERVE", "OVERWRITE"] = "PRESERVE"
    approval: Approval = Field(default_factory=Approval)
    checks: list[Check] = Field(default_factory=list)
    baseline: Baseline = Field(default_factory=Baseline)
    update: UpdateState = Field(default_factory=UpdateState)
    nodegroup: NodegroupPlan | None = None
    poll: PollState = Field(default_factory=PollState)
    verify: VerifyState = Field(default_factory=VerifyState)
    preservedEdits: list[EditedField] = Field(default_factory=list)
    lockHeld: bool = False
    steps: list[StepRecord] = Field(default_factory=list)
    notifications: list[Notification] = Field(default_factory=list)
    error: ErrorInfo | None = None
    # Where the approval task's output lands (`ResultPath`); folded into `approval` on read.
    approvalOutcome: dict[str, Any] | None = None
    # Control-plane upgrades: the hops so far, what the current hop still has to do, the step in
    # hand (an operation of its own, `parent` = this id), and the stage the ASL branches on.
    parent: str | None = None
    hops: list[Hop] = Field(default_factory=list)
    pending: list[PlannedChild] = Field(default_factory=list)
    child: Operation | None = None
    stage: Literal["", "preflight", "control-plane", "addons", "nodegroups", "verify", "done"] = ""
    support: SupportState | None = None

    @model_validator(mode="after")
    def _fold_approval_outcome(self) -> Operation:
        outcome, self.approvalOutcome = self.approvalOutcome, None
        if outcome:
            self.absorb_decision(outcome)
        return self

    def absorb_decision(self, outcome: dict[str, Any]) -> None:
        """Fold a decision (what decide() sends back to the workflow) into the record."""
        self.approval = Approval.model_validate(
            {
                **self.approval.model_dump(),
                "id": outcome.get("approvalId") or self.approval.id,
                "decision": outcome.get("decision"),
                "by": outcome.get("by"),
                "at": outcome.get("at"),
                "reason": outcome.get("reason"),
            }
        )
        self.notifications.extend(Notification.model_validate(n) for n in outcome.get("notifications") or [])
        requested = outcome.get("requestedAt")
        if requested and self.approval.at:
            self.steps.append(
                StepRecord(
                    name="approval",
                    started=requested,
                    ended=self.approval.at,
                    outcome=f"{self.approval.decision} by {self.approval.by}",
                )
            )

    def event_detail(self, **extra: Any) -> dict[str, Any]:
        """The fields every event about this operation carries (the trigger's contract), plus `extra`."""
        return {
            "clusterName": self.cluster.name,
            "accountId": self.cluster.accountId,
            "region": self.cluster.region,
            "component": self.component.model_dump(),
            "currentVersion": self.fromVersion,
            "targetVersion": self.toVersion,
            **extra,
        }

    @property
    def hop(self) -> Hop | None:
        return self.hops[-1] if self.hops else None

    @property
    def lock_holder(self) -> str:
        """The steps of an upgrade run under the upgrade's lease."""
        return self.parent or self.id

    @property
    def op_sort_key(self) -> str:
        return f"OP#{self.component.kind}#{self.component.name}#{self.toVersion}#{self.id}"

    @property
    def target_key(self) -> str:
        return f"{self.component.kind}#{self.component.name}#{self.toVersion}"

    @property
    def finished(self) -> bool:
        return self.status != "running"

    def end(self, status: Status, reason: str, message: str = "") -> Operation:
        self.status = status
        self.reason = reason
        self.message = message or self.message
        return self


class ExecutionInfo(_Model):
    id: str
    name: str


class ValidateInput(BaseModel):
    """What the first state hands to `validate`: the raw event plus the execution's identity."""

    model_config = ConfigDict(extra="ignore")

    event: Any
    execution: ExecutionInfo


class ApprovalTaskInput(_Model):
    operation: Operation
    taskToken: str
