"""Errors named so the ASL can tell them apart (`Retry`/`Catch` match the class name).

Retryable: the ASL retries them with backoff. Terminal: the ASL catches them and ends the run.
"""

from __future__ import annotations


class AutopatchError(Exception):
    retryable = False


# ---- retryable ----------------------------------------------------------------------------------
class ClusterBusy(AutopatchError):
    """Another operation holds the cluster's lease; retried within the policy's lockWaitBudget."""

    retryable = True


class UpdateInProgress(AutopatchError):
    """EKS refused the call because an update is already running on the resource."""

    retryable = True


# ---- terminal -----------------------------------------------------------------------------------
class InvalidEvent(AutopatchError):
    """The trigger event does not match the event contract."""


class LockWaitExpired(AutopatchError):
    """The cluster stayed busy for longer than the policy's lockWaitBudget."""


class UpdateRejected(AutopatchError):
    """EKS refused the update request (incompatible version, invalid configuration...)."""


class ApprovalRejected(AutopatchError):
    """An approver rejected the operation."""


class ApprovalError(AutopatchError):
    """An approval decision was refused (unknown approval, not an approver, already decided...)."""
