"""Preflight and recheck of an add-on update: every check named, with its severity and evidence.

A failed `required` check ends the operation `blocked` before anything changes. Preflight also
takes the baseline that verify compares against: the add-on's workloads and every field of its
objects that a manager other than EKS set (the customer's edits, read from `managedFields`).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from autopatch.addons import ADDON_OBJECTS, ONE_MINOR_PER_STEP, AddonVersion, compare
from autopatch.clients.eks import Eks
from autopatch.fields import fieldsv1_to_paths, format_path, get_path
from autopatch.models import Baseline, Check, EditedField, Operation, WorkloadState

EKS_MANAGER = "eks"


def _required(
    name: str, passed: bool, failed_detail: str = "", reason: str | None = None, *, passed_detail: str = ""
) -> Check:
    """A required check; its detail says what was found, in the words that fit the outcome."""
    return Check(
        name=name,
        severity="required",
        passed=passed,
        detail=passed_detail if passed else failed_detail,
        reason=None if passed else reason,
    )


def _block_on_first_failure(op: Operation) -> Operation:
    failed = next((c for c in op.checks if c.severity == "required" and not c.passed), None)
    if failed is not None:
        op.end("blocked", failed.reason or "preflight_failed", f"Check {failed.name} failed: {failed.detail}")
    return op


def preflight_addon(op: Operation, *, eks: Eks, kube: Any) -> Operation:
    addon_name, cluster_name = op.component.name, op.cluster.name
    cluster = eks.describe_cluster(cluster_name)
    op.kubernetesVersion = str(cluster["version"])
    addon = eks.describe_addon(cluster_name, addon_name)
    op.checks = []
    if addon is None:
        op.checks.append(
            _required("addon_installed", False, "not installed as an EKS add-on", "addon_not_installed")
        )
        return _block_on_first_failure(op)
    installed = str(addon["addonVersion"])
    if installed != op.fromVersion:
        op.message = f"The event said {op.fromVersion}; EKS reports {installed}, which is used."
        op.fromVersion = installed
    if not AddonVersion.is_valid(op.toVersion):
        op.checks.append(
            _required(
                "target_version_format", False, f"{op.toVersion!r} is not an add-on version", "incompatible"
            )
        )
        return _block_on_first_failure(op)
    if compare(op.toVersion, installed) == 0:
        return op.end("skipped", "already_current", f"{addon_name} already runs {installed}.")

    offered = {v["addonVersion"]: v for v in eks.addon_versions(addon_name, op.kubernetesVersion)}
    target = offered.get(op.toVersion)
    op.checks.append(
        _required(
            "not_a_downgrade",
            compare(op.toVersion, installed) > 0,
            f"{op.toVersion} is older than the installed {installed}",
            "downgrade",
            passed_detail=f"{installed} → {op.toVersion} is an upgrade",
        )
    )
    compatible = target is not None and any(
        c.get("clusterVersion") == op.kubernetesVersion for c in target.get("compatibilities", [])
    )
    op.checks.append(
        _required(
            "target_compatible",
            compatible,
            f"{op.toVersion} is not offered for Kubernetes {op.kubernetesVersion}",
            "incompatible",
            passed_detail=f"{op.toVersion} is offered for Kubernetes {op.kubernetesVersion}",
        )
    )
    if addon_name in ONE_MINOR_PER_STEP:
        distance = AddonVersion.parse(op.toVersion).minor_distance(AddonVersion.parse(installed))
        op.checks.append(
            _required(
                "one_minor_per_step",
                distance <= 1,
                f"{addon_name} moves one minor version per update; {installed} → {op.toVersion} "
                f"is {distance}",
                "minor_skip",
            )
        )
    op.checks.extend(_state_checks(op, eks=eks, addon=addon))
    op.checks.append(_configuration_check(op, eks=eks, addon=addon))
    op.baseline = take_baseline(addon_name, kube, configuration_values=addon.get("configurationValues"))
    unhealthy = [w.object for w in op.baseline.workloads if not w.rolled_out]
    op.checks.append(
        Check(
            name="workloads_ready_before",
            severity="recommended",
            passed=not unhealthy,
            detail="not ready before the update: " + ", ".join(unhealthy) if unhealthy else "",
        )
    )
    return _block_on_first_failure(op)


def recheck_addon(op: Operation, *, eks: Eks) -> Operation:
    """Under the lock: has the add-on moved, or has someone started an update, since preflight?"""
    addon = eks.describe_addon(op.cluster.name, op.component.name)
    rechecks: list[Check] = []
    if addon is None:
        rechecks.append(
            _required("recheck_installed", False, "the add-on was removed", "addon_not_installed")
        )
    else:
        installed = str(addon["addonVersion"])
        if installed == op.toVersion:
            return op.end("skipped", "already_current", f"{op.component.name} reached {installed} meanwhile.")
        if AddonVersion.is_valid(installed) and compare(installed, op.toVersion) > 0:
            # e.g. a control-plane upgrade moved it on while this update waited for the lock
            return op.end("skipped", "superseded", f"{op.component.name} moved on to {installed} meanwhile.")
        rechecks.append(
            _required(
                "recheck_version_unchanged",
                installed == op.fromVersion,
                f"the add-on moved from {op.fromVersion} to {installed} since preflight",
                "state_changed",
            )
        )
        rechecks.extend(_state_checks(op, eks=eks, addon=addon, prefix="recheck_"))
    op.checks = [c for c in op.checks if not c.name.startswith("recheck_")] + rechecks
    return _block_on_first_failure(op)


def _state_checks(op: Operation, *, eks: Eks, addon: dict[str, Any], prefix: str = "") -> list[Check]:
    status = str(addon.get("status"))
    busy = eks.updates_in_progress(op.cluster.name, op.component.name)
    return [
        _required(f"{prefix}addon_active", status == "ACTIVE", f"the add-on is {status}", "addon_not_active"),
        _required(
            f"{prefix}no_update_in_progress",
            not busy,
            f"update {', '.join(busy)} is still in progress",
            "update_in_progress",
        ),
    ]


def _configuration_check(op: Operation, *, eks: Eks, addon: dict[str, Any]) -> Check:
    """The add-on's configuration values must still be valid for the target version's schema."""
    values_text = addon.get("configurationValues")
    if not values_text:
        return Check(name="configuration_valid", severity="required", passed=True, detail="no custom values")

    try:
        values = (
            json.loads(values_text) if values_text.strip().startswith("{") else yaml.safe_load(values_text)
        )
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        return _required(
            "configuration_valid", False, f"unreadable configuration values: {exc}", "invalid_configuration"
        )
    schema_text = eks.configuration_schema(op.component.name, op.toVersion)
    if not schema_text:
        return _required("configuration_valid", True, "no schema published")
    errors = sorted(_validator(json.loads(schema_text)).iter_errors(values or {}), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "$" + "".join(f".{p}" for p in first.absolute_path)
        return _required(
            "configuration_valid",
            False,
            f"{where}: {first.message} (schema of {op.toVersion})",
            "invalid_configuration",
        )
    return _required("configuration_valid", True, passed_detail=f"valid for {op.toVersion}")


def take_baseline(addon_name: str, kube: Any, *, configuration_values: str | None = None) -> Baseline:
    baseline = Baseline(configurationValues=configuration_values)
    for ref in ADDON_OBJECTS.get(addon_name, ()):
        obj = kube.get(ref.kind, ref.namespace, ref.name)
        if obj is None:
            continue
        workload = workload_state(obj)
        if workload is not None:
            baseline.workloads.append(workload)
        baseline.edits.extend(customer_edits(obj))
    return baseline


def customer_edits(obj: dict[str, Any]) -> list[EditedField]:
    """Fields of `obj` last set by a manager other than EKS, with their current values."""
    edits = []
    label = f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
    for entry in obj["metadata"].get("managedFields") or []:
        manager = entry.get("manager", "")
        if manager == EKS_MANAGER or entry.get("subresource") == "status":
            continue
        for path in fieldsv1_to_paths(entry.get("fieldsV1") or {}):
            if path[0] in ("status",):
                continue
            edits.append(
                EditedField(
                    object=label,
                    path=format_path(path),
                    steps=list(path),
                    manager=manager,
                    before=get_path(obj, path, None),
                )
            )
    return edits


def workload_state(obj: dict[str, Any]) -> WorkloadState | None:
    kind = obj.get("kind")
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    containers = get_path(obj, ("spec", "template", "spec", "containers"), []) or []
    image = containers[0].get("image") if containers else None
    label = f"{kind} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
    stale = (status.get("observedGeneration") or 0) < (obj["metadata"].get("generation") or 0)
    if kind == "Deployment" or kind == "StatefulSet":
        desired = int(spec.get("replicas", 1))
        updated = 0 if stale else int(status.get("updatedReplicas") or 0)
        return WorkloadState(
            object=label,
            desired=desired,
            ready=int(status.get("readyReplicas") or 0),
            updated=updated,
            image=image,
        )
    if kind == "DaemonSet":
        updated = 0 if stale else int(status.get("updatedNumberScheduled") or 0)
        return WorkloadState(
            object=label,
            desired=int(status.get("desiredNumberScheduled") or 0),
            ready=int(status.get("numberReady") or 0),
            updated=updated,
            image=image,
        )
    return None


def _validator(schema: dict[str, Any]) -> Any:
    import jsonschema

    return jsonschema.validators.validator_for(schema)(schema)
