"""The event contract, add-on versions, the operation record, and Kubernetes field paths."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from autopatch.addons import AddonVersion, compare
from autopatch.fields import (
    fieldsv1_to_paths,
    format_path,
    get_path,
    item_step,
    merge_fieldsv1,
    parse_path,
    path_to_fieldsv1,
    remove_path_from_fieldsv1,
    set_path,
)
from autopatch.models import Operation, TriggerEvent
from pydantic import ValidationError

# ---- the trigger event ------------------------------------------------------------------------


def test_the_sample_addon_event_is_a_valid_trigger(load_event: Callable[[str], Any]) -> None:
    event = TriggerEvent.model_validate(load_event("addon_version_available"))

    assert event.detail_type == "EKS Add-on Version Available"
    assert event.detail.clusterName == "prod"
    assert (event.detail.component.kind, event.detail.component.name) == ("addon", "coredns")
    assert (event.detail.currentVersion, event.detail.targetVersion) == (
        "v1.11.4-eksbuild.22",
        "v1.11.4-eksbuild.24",
    )
    assert event.detail.detectedAt == datetime(2026, 3, 2, 8, 55, tzinfo=UTC)


def test_envelope_fields_the_contract_does_not_use_are_ignored(load_event: Callable[[str], Any]) -> None:
    raw = load_event("addon_version_available") | {"replay-name": "again", "version": "1"}

    assert TriggerEvent.model_validate(raw).id == raw["id"]


def test_an_unknown_field_inside_detail_is_refused(load_event: Callable[[str], Any]) -> None:
    raw = load_event("addon_version_available")
    raw["detail"]["targetVersoin"] = "v1.11.4-eksbuild.30"

    with pytest.raises(ValidationError, match="targetVersoin"):
        TriggerEvent.model_validate(raw)


@pytest.mark.parametrize(
    ("sample", "location"),
    [
        ("invalid_missing_detail", ("detail",)),
        ("invalid_wrong_source", ("source",)),
        ("invalid_bad_account_id", ("detail", "accountId")),
        ("invalid_unknown_component_kind", ("detail", "component", "kind")),
        ("invalid_empty_target_version", ("detail", "targetVersion")),
        ("invalid_not_an_object", ()),
    ],
)
def test_each_malformed_sample_fails_on_the_field_that_is_wrong(
    load_event: Callable[[str], Any], sample: str, location: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as raised:
        TriggerEvent.model_validate(load_event(sample))

    assert [tuple(err["loc"]) for err in raised.value.errors()] == [location]


def test_a_cluster_name_kubernetes_would_refuse_is_refused(load_event: Callable[[str], Any]) -> None:
    raw = load_event("addon_version_available")
    raw["detail"]["clusterName"] = "-prod"

    with pytest.raises(ValidationError, match="clusterName"):
        TriggerEvent.model_validate(raw)


# ---- add-on versions --------------------------------------------------------------------------


def test_an_addon_version_is_read_into_its_numbers() -> None:
    version = AddonVersion.parse(" v1.11.4-eksbuild.22 ")

    assert (version.major, version.minor, version.patch, version.build) == (1, 11, 4, 22)
    assert version.text == "v1.11.4-eksbuild.22"


def test_a_version_without_an_eks_build_counts_as_build_zero() -> None:
    assert AddonVersion.parse("v1.19.2").build == 0
    assert compare("v1.19.2", "v1.19.2-eksbuild.1") == -1


@pytest.mark.parametrize("text", ["1.11.4", "v1.11", "v1.11.4-build.2", "latest", "", "v1.11.4-eksbuild."])
def test_text_that_is_not_an_addon_version_is_refused(text: str) -> None:
    assert not AddonVersion.is_valid(text)
    with pytest.raises(ValueError, match="is not an EKS add-on version"):
        AddonVersion.parse(text)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("v1.11.4-eksbuild.22", "v1.11.4-eksbuild.24", -1),
        ("v1.11.4-eksbuild.24", "v1.11.4-eksbuild.22", 1),
        ("v1.11.4-eksbuild.22", "v1.11.4-eksbuild.22", 0),
        ("v1.11.4-eksbuild.10", "v1.11.4-eksbuild.9", 1),  # numbers, not strings
        ("v1.19.2-eksbuild.5", "v1.20.0-eksbuild.1", -1),
        ("v1.9.9-eksbuild.1", "v1.10.0-eksbuild.1", -1),
        ("v2.0.0-eksbuild.1", "v1.99.99-eksbuild.99", 1),
    ],
)
def test_versions_compare_by_number(a: str, b: str, expected: int) -> None:
    assert compare(a, b) == expected


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("v1.19.2-eksbuild.5", "v1.19.6-eksbuild.1", 0),
        ("v1.19.2-eksbuild.5", "v1.20.0-eksbuild.1", 1),
        ("v1.20.0-eksbuild.1", "v1.18.3-eksbuild.1", 2),
        ("v1.19.2-eksbuild.5", "v2.19.2-eksbuild.5", 99),
    ],
)
def test_minor_distance_counts_minor_versions_within_a_major(a: str, b: str, distance: int) -> None:
    assert AddonVersion.parse(a).minor_distance(AddonVersion.parse(b)) == distance
    assert AddonVersion.parse(b).minor_distance(AddonVersion.parse(a)) == distance


# ---- the operation record ---------------------------------------------------------------------


def full_operation(make_operation: Callable[..., Operation]) -> Operation:
    return make_operation(
        status="rolled_back",
        phase="rollback",
        reason="verify_failed",
        message="Back on v1.11.4-eksbuild.22.",
        kubernetesVersion="1.31",
        deadline="2026-04-01T00:00:00Z",
        approval={"required": True, "id": "apr-1", "timeoutSeconds": 3600},
        checks=[{"name": "addon_active", "severity": "required", "passed": True}],
        baseline={
            "workloads": [
                {"object": "Deployment kube-system/coredns", "desired": 2, "ready": 2, "updated": 2}
            ],
            "edits": [
                {
                    "object": "ConfigMap kube-system/coredns",
                    "path": ".data.Corefile",
                    "steps": ["data", "Corefile"],
                    "manager": "kubectl-edit",
                    "before": ".:53 {\n    cache 15\n}",
                }
            ],
            "configurationValues": '{"replicaCount": 3}',
        },
        update={"id": "u-1", "status": "Successful", "toVersion": "v1.11.4-eksbuild.22", "errors": []},
        steps=[
            {
                "name": "apply",
                "started": "2026-03-02T09:10:00Z",
                "ended": "2026-03-02T09:10:01Z",
                "outcome": "ok",
            }
        ],
        notifications=[
            {
                "channel": "slack",
                "at": "2026-03-02T09:30:00Z",
                "status": "rolled_back",
                "summary": "rolled back",
                "delivered": False,
                "detail": "Slack webhook not configured",
            }
        ],
        error={"Error": "States.TaskFailed", "Cause": "boom", "extra": 1},
        lockHeld=True,
    )


def test_an_operation_survives_the_json_between_steps_unchanged(
    make_operation: Callable[..., Operation],
) -> None:
    op = full_operation(make_operation)

    again = Operation.model_validate(op.model_dump(mode="json"))

    assert again == op
    assert again.model_dump(mode="json") == op.model_dump(mode="json")


def test_the_operation_record_refuses_fields_it_does_not_know(
    make_operation: Callable[..., Operation],
) -> None:
    with pytest.raises(ValidationError, match="colour"):
        make_operation(colour="blue")


def approval_outcome(**overrides: Any) -> dict[str, Any]:
    outcome = {
        "approvalId": "apr-7",
        "decision": "approved",
        "by": "alice",
        "at": "2026-03-02T10:00:00Z",
        "reason": "window agreed",
        "requestedAt": "2026-03-02T09:05:00Z",
        "notifications": [
            {
                "channel": "slack",
                "at": "2026-03-02T09:05:00Z",
                "status": "awaiting_approval",
                "summary": "approval requested from alice",
                "delivered": True,
            }
        ],
    }
    return outcome | overrides


def test_the_approval_task_output_is_folded_into_the_approval(
    make_operation: Callable[..., Operation],
) -> None:
    # Given the state after the approval task: its output at `$.approvalOutcome`
    state = make_operation(approval={"required": True}).model_dump(mode="json")
    state["approvalOutcome"] = approval_outcome()

    # When the next step reads it
    op = Operation.model_validate(state)

    # Then the decision is part of the record, with the wait as a step of its own
    assert op.approvalOutcome is None
    assert op.approval.required is True
    assert (op.approval.id, op.approval.decision, op.approval.by) == ("apr-7", "approved", "alice")
    assert op.approval.reason == "window agreed"
    assert op.approval.at == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    (step,) = op.steps
    assert step.name == "approval"
    assert step.outcome == "approved by alice"
    assert (step.ended - step.started).total_seconds() == 55 * 60
    assert [n.summary for n in op.notifications] == ["approval requested from alice"]


def test_a_folded_decision_is_folded_once_across_later_steps(
    make_operation: Callable[..., Operation],
) -> None:
    state = make_operation(approval={"required": True}).model_dump(mode="json")
    state["approvalOutcome"] = approval_outcome()
    op = Operation.model_validate(state)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a datetime field holding text warns when dumped
        later = Operation.model_validate(op.model_dump(mode="json"))

    assert later == op
    assert len(later.steps) == 1
    assert len(later.notifications) == 1


def test_an_outcome_without_a_request_time_adds_no_step(make_operation: Callable[..., Operation]) -> None:
    state = make_operation().model_dump(mode="json")
    state["approvalOutcome"] = approval_outcome(requestedAt=None, notifications=None)

    op = Operation.model_validate(state)

    assert op.approval.decision == "approved"
    assert op.steps == []
    assert op.notifications == []


def test_a_missing_approval_id_in_the_outcome_keeps_the_known_one(
    make_operation: Callable[..., Operation],
) -> None:
    state = make_operation(approval={"required": True, "id": "apr-known"}).model_dump(mode="json")
    state["approvalOutcome"] = approval_outcome(approvalId=None)

    assert Operation.model_validate(state).approval.id == "apr-known"


def test_keys_name_cluster_component_and_target(make_operation: Callable[..., Operation]) -> None:
    op = make_operation()

    assert op.cluster.key == "111122223333#eu-west-1#prod"
    assert op.target_key == "addon#coredns#v1.11.4-eksbuild.24"
    assert op.op_sort_key == "OP#addon#coredns#v1.11.4-eksbuild.24#exec-1"


def test_ending_an_operation_keeps_an_earlier_message_when_given_none(
    make_operation: Callable[..., Operation],
) -> None:
    op = make_operation(message="The event said v1.11.4-eksbuild.21; EKS reports v1.11.4-eksbuild.22.")

    op.end("skipped", "already_current")

    assert op.finished
    assert (op.status, op.reason) == ("skipped", "already_current")
    assert op.message is not None and op.message.startswith("The event said")


# ---- field paths ------------------------------------------------------------------------------


def named(name: str) -> str:
    return item_step({"name": name})


CONTAINER_RESOURCES = ("spec", "template", "spec", "containers", named("coredns"), "resources")


def test_a_path_becomes_nested_fieldsv1() -> None:
    assert path_to_fieldsv1(("data", "Corefile")) == {"f:data": {"f:Corefile": {}}}
    assert path_to_fieldsv1(CONTAINER_RESOURCES) == {
        "f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"coredns"}': {"f:resources": {}}}}}}
    }


@pytest.mark.parametrize(
    "path",
    [
        ("data", "Corefile"),
        CONTAINER_RESOURCES,
        ("metadata", "annotations", "eks.amazonaws.com/role-arn"),
        ("spec", "template", "spec", "containers", named("coredns"), "env", named("GOGC"), "value"),
    ],
)
def test_path_to_fieldsv1_and_back_is_the_same_path(path: tuple[str, ...]) -> None:
    assert fieldsv1_to_paths(path_to_fieldsv1(path)) == [path]


def test_fieldsv1_self_markers_are_not_paths() -> None:
    fields = {
        "f:data": {".": {}, "f:Corefile": {}},
        "f:spec": {"f:containers": {'k:{"name":"coredns"}': {".": {}, "f:image": {}}}},
        "f:metadata": {"f:labels": {".": {}}},
    }

    paths = fieldsv1_to_paths(fields)

    assert sorted(paths) == sorted(
        [("data", "Corefile"), ("metadata", "labels"), ("spec", "containers", named("coredns"), "image")]
    )


def test_a_merge_key_with_two_fields_is_read() -> None:
    fields: dict[str, Any] = {
        "f:spec": {"f:ports": {'k:{"port":53,"protocol":"UDP"}': {".": {}, "f:targetPort": {}}}}
    }

    paths = fieldsv1_to_paths(fields)

    assert len(paths) == 1
    assert paths[0][-1] == "targetPort"


def test_a_numeric_merge_key_survives_the_round_trip() -> None:
    fields: dict[str, Any] = {"f:spec": {"f:ports": {'k:{"containerPort":53}': {"f:name": {}}}}}
    (path,) = fieldsv1_to_paths(fields)

    assert path_to_fieldsv1(path) == fields
    assert remove_path_from_fieldsv1(fields, path) == {}


def test_merging_and_removing_fieldsv1_paths() -> None:
    owned: dict[str, Any] = {}
    merge_fieldsv1(owned, path_to_fieldsv1(("data", "Corefile")))
    merge_fieldsv1(owned, path_to_fieldsv1(CONTAINER_RESOURCES))

    assert sorted(fieldsv1_to_paths(owned)) == sorted([("data", "Corefile"), CONTAINER_RESOURCES])

    rest = remove_path_from_fieldsv1(owned, CONTAINER_RESOURCES)

    assert fieldsv1_to_paths(rest) == [("data", "Corefile")]
    assert rest == {"f:data": {"f:Corefile": {}}}  # empty parents are pruned
    assert fieldsv1_to_paths(owned) != []  # the original is left as it was
    assert remove_path_from_fieldsv1(rest, ("metadata", "labels")) == rest


def deployment() -> dict[str, Any]:
    return {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "coredns",
                            "image": "coredns:1.11.4",
                            "resources": {"limits": {"memory": "170Mi"}},
                        },
                        {"name": "sidecar", "image": "busybox"},
                    ]
                }
            }
        }
    }


def test_get_path_finds_a_list_element_by_its_merge_key() -> None:
    obj = deployment()

    assert get_path(obj, (*CONTAINER_RESOURCES, "limits", "memory")) == "170Mi"
    assert get_path(obj, ("spec", "template", "spec", "containers", named("sidecar"), "image")) == "busybox"


def test_get_path_of_a_missing_field_raises_or_returns_the_default() -> None:
    obj = deployment()
    missing = ("spec", "template", "spec", "containers", named("ghost"), "image")

    with pytest.raises(KeyError):
        get_path(obj, missing)
    assert get_path(obj, missing, None) is None
    assert get_path(obj, ("spec", "template", "spec", "containers", "image"), "n/a") == "n/a"


def test_set_path_changes_the_element_named_by_its_merge_key() -> None:
    obj = deployment()

    set_path(obj, (*CONTAINER_RESOURCES, "limits", "memory"), "300Mi")

    containers = obj["spec"]["template"]["spec"]["containers"]
    assert containers[0]["resources"]["limits"]["memory"] == "300Mi"
    assert containers[1] == {"name": "sidecar", "image": "busybox"}


def test_set_path_creates_missing_maps_and_list_elements() -> None:
    obj = deployment()

    set_path(obj, ("data", "Corefile"), ".:53 {}")
    set_path(obj, ("spec", "template", "spec", "containers", named("debug"), "image"), "alpine")

    assert obj["data"] == {"Corefile": ".:53 {}"}
    assert obj["spec"]["template"]["spec"]["containers"][-1] == {"name": "debug", "image": "alpine"}


def test_set_path_must_end_on_a_map_key() -> None:
    with pytest.raises(ValueError, match="must end on a map key"):
        set_path(deployment(), ("spec", "template", "spec", "containers", named("coredns")), {})


def test_format_and_parse_path_are_inverse() -> None:
    text = format_path(CONTAINER_RESOURCES)

    assert text == '.spec.template.spec.containers[name="coredns"].resources'
    assert parse_path(text) == CONTAINER_RESOURCES
    assert parse_path(".data.Corefile") == ("data", "Corefile")
    assert parse_path(".spec.containers[name=coredns].image") == (
        "spec",
        "containers",
        named("coredns"),
        "image",
    )


@pytest.mark.parametrize("text", ["", "Corefile", "data Corefile"])
def test_text_that_is_no_path_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a field path"):
        parse_path(text)


def test_a_path_without_its_leading_dot_is_refused_not_shortened() -> None:
    with pytest.raises(ValueError):
        parse_path("data.Corefile")
