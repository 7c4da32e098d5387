"""The fleet policy: what a cluster inherits, what it overrides, and how a broken file is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from autopatch.policy import PolicyError, load_policy, parse_duration, parse_policy

ACCOUNT = "111122223333"
REGION = "eu-west-1"

FLEET_YAML = """\
version: 1
defaults:
  approval: none
  retryAfter: 6h
  lockWaitBudget: 30m
  approvalTimeout: 90
  addons: [vpc-cni, coredns]
clusters:
  - name: dev
    accountId: "111122223333"
    region: eu-west-1
  - name: prod
    accountId: "111122223333"
    region: eu-west-1
    approval: required
    rollbackOnFailure: false
    lockWaitBudget: 2h
    addons: [coredns, kube-proxy, aws-ebs-csi-driver]
    approvers:
      - name: alice
        slackUserId: U0ALICE
        email: alice@example.com
      - name: bob
"""


def entry(name: str = "dev", **settings: Any) -> dict[str, Any]:
    return {"name": name, "accountId": ACCOUNT, "region": REGION, **settings}


def write(tmp_path: Path, text: str, name: str = "fleet.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def policy_error(data: Any) -> str:
    with pytest.raises(PolicyError) as raised:
        parse_policy(data)
    return str(raised.value)


# ---- inheritance ------------------------------------------------------------------------------


def test_a_cluster_without_settings_inherits_the_fleet_defaults(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, FLEET_YAML))

    dev = policy.cluster(ACCOUNT, REGION, "dev")

    assert dev is not None
    assert dev.approval == "none"
    assert dev.approvers == []
    assert dev.rollbackOnFailure is True
    assert dev.resolveConflicts == "PRESERVE"
    assert (dev.retryAfter, dev.lockWaitBudget, dev.approvalTimeout) == (6 * 3600, 30 * 60, 90)
    assert dev.addons == ["vpc-cni", "coredns"]


def test_a_cluster_overrides_only_what_it_names(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, FLEET_YAML))

    prod = policy.cluster(ACCOUNT, REGION, "prod")

    assert prod is not None
    assert prod.approval == "required"
    assert prod.rollbackOnFailure is False
    assert prod.lockWaitBudget == 2 * 3600
    assert prod.addons == ["coredns", "kube-proxy", "aws-ebs-csi-driver"]
    assert [a.name for a in prod.approvers] == ["alice", "bob"]
    # not overridden: still the fleet's
    assert (prod.retryAfter, prod.approvalTimeout) == (6 * 3600, 90)


def test_built_in_defaults_apply_when_the_file_has_no_defaults_block() -> None:
    policy = parse_policy({"clusters": [entry()]})

    (dev,) = policy.effective()

    assert dev.approval == "none"
    assert dev.addons == ["vpc-cni", "coredns", "kube-proxy"]
    assert (dev.retryAfter, dev.lockWaitBudget, dev.approvalTimeout) == (86400, 6 * 3600, 86400)


def test_a_cluster_may_clear_an_inherited_list() -> None:
    policy = parse_policy({"defaults": {"windows": ["sat 02:00-06:00"]}, "clusters": [entry(windows=[])]})

    (dev,) = policy.effective()

    assert dev.windows == []


def test_clusters_are_told_apart_by_account_region_and_name() -> None:
    policy = parse_policy(
        {
            "clusters": [
                entry("prod", approval="none"),
                {**entry("prod", approval="required", approvers=[{"name": "alice"}]), "region": "us-east-1"},
            ]
        }
    )

    eu = policy.cluster(ACCOUNT, REGION, "prod")
    us = policy.cluster(ACCOUNT, "us-east-1", "prod")

    assert eu is not None and eu.approval == "none"
    assert us is not None and us.approval == "required"
    assert policy.cluster("999999999999", REGION, "prod") is None
    assert policy.cluster(ACCOUNT, REGION, "unknown") is None


def test_the_example_fleet_file_in_the_repository_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "fleet.example.yaml"
    if not example.exists():
        pytest.skip("fleet.example.yaml is not in this checkout")

    policy = load_policy(example)

    assert {p.name for p in policy.effective()} >= {"dev", "prod"}


# ---- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "seconds"),
    [("6h", 21600), ("30m", 1800), (90, 90), ("90s", 90), ("1d", 86400), (" 2h ", 7200)],
)
def test_durations_are_read_as_seconds(written: Any, seconds: int) -> None:
    assert parse_duration(written) == seconds
    assert parse_policy({"clusters": [entry(retryAfter=written)]}).effective()[0].retryAfter == seconds


@pytest.mark.parametrize("written", ["6 hours", "h6", "1w", "", "-5m", 0, -30, True, None, [6]])
def test_a_duration_that_is_not_one_is_refused(written: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(written)


def test_a_bad_duration_in_a_file_names_the_field_and_the_value() -> None:
    message = policy_error({"clusters": [entry(lockWaitBudget="6 hours")]})

    assert "clusters.0.lockWaitBudget" in message
    assert "'6 hours'" in message


def test_a_zero_duration_in_the_defaults_is_refused() -> None:
    message = policy_error({"defaults": {"approvalTimeout": 0}, "clusters": [entry()]})

    assert "defaults.approvalTimeout" in message
    assert "positive" in message


# ---- broken files -----------------------------------------------------------------------------


def test_a_file_that_is_not_yaml_is_refused_with_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, "clusters: [name: dev\n  region: : :\n")

    with pytest.raises(PolicyError, match="not valid YAML/JSON") as raised:
        load_policy(path)
    assert str(path) in str(raised.value)


def test_a_json_file_is_read_as_json(tmp_path: Path) -> None:
    text = '{"clusters": [{"name": "dev", "accountId": "111122223333", "region": "eu-west-1"}]}'
    path = write(tmp_path, text, name="fleet.json")

    assert [p.name for p in load_policy(path).effective()] == ["dev"]


def test_broken_json_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '{"clusters": [', name="fleet.json")

    with pytest.raises(PolicyError, match="not valid YAML/JSON"):
        load_policy(path)


@pytest.mark.parametrize("text", ["- dev\n- prod\n", "just a string\n", ""])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(PolicyError, match="must hold a mapping with 'defaults' and 'clusters'"):
        load_policy(write(tmp_path, text))


def test_a_missing_file_is_reported_not_raised_as_oserror(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read fleet policy"):
        load_policy(tmp_path / "nowhere.yaml")


def test_a_list_given_to_parse_policy_is_refused() -> None:
    assert "(top)" in policy_error([entry()])


@pytest.mark.parametrize(
    ("data", "names"),
    [
        ({"clusters": [entry(approvel="required")]}, ["clusters.0.approvel", "Extra inputs"]),
        ({"defaults": {"rollback": True}, "clusters": [entry()]}, ["defaults.rollback", "Extra inputs"]),
        ({"clusters": [entry()], "owner": "platform"}, ["owner", "Extra inputs"]),
        ({"clusters": [entry(accountId="1111-2222-3333")]}, ["clusters.0.accountId"]),
        ({"clusters": [entry(accountId=111122223333)]}, ["clusters.0.accountId"]),
        ({"clusters": [entry(region="Ireland")]}, ["clusters.0.region"]),
        ({"clusters": [entry(approval="sometimes")]}, ["clusters.0.approval"]),
        ({"clusters": [entry(resolveConflicts="NONE")]}, ["clusters.0.resolveConflicts"]),
        ({"clusters": [entry(approvers=[{"slackUserId": "U01"}])]}, ["clusters.0.approvers.0.name"]),
        ({"version": 2, "clusters": [entry()]}, ["version"]),
        ({"defaults": {}}, ["clusters", "Field required"]),
    ],
)
def test_an_invalid_field_is_named_in_the_error(data: dict[str, Any], names: list[str]) -> None:
    message = policy_error(data)

    assert message.startswith("policy is not a valid fleet policy: ")
    for name in names:
        assert name in message


def test_a_cluster_listed_twice_is_refused() -> None:
    message = policy_error({"clusters": [entry("dev"), entry("dev", approval="none")]})

    assert "cluster dev in 111122223333/eu-west-1 is listed twice" in message


def test_approval_required_without_approvers_is_refused_for_that_cluster() -> None:
    message = policy_error({"clusters": [entry("dev"), entry("prod", approval="required")]})

    assert "cluster prod requires approval but lists no approvers" in message


def test_approval_required_by_default_needs_approvers_on_every_cluster_that_keeps_it() -> None:
    data = {
        "defaults": {"approval": "required", "approvers": [{"name": "alice"}]},
        "clusters": [entry("dev", approval="none"), entry("prod"), entry("qa", approvers=[])],
    }

    message = policy_error(data)

    assert "cluster qa requires approval but lists no approvers" in message


def test_an_unknown_addon_is_named_with_the_supported_ones() -> None:
    message = policy_error({"clusters": [entry(addons=["coredns", "istio"])]})

    assert "clusters.0" in message
    assert "unknown add-on 'istio'" in message
    assert "supported: vpc-cni, coredns, kube-proxy" in message


def test_an_unknown_addon_in_the_defaults_is_refused_too() -> None:
    assert "defaults" in policy_error({"defaults": {"addons": ["cilium"]}, "clusters": [entry()]})


def test_a_null_in_the_defaults_is_reported_at_defaults() -> None:
    assert "defaults.approval" in policy_error({"defaults": {"approval": None}, "clusters": [entry()]})


# ---- approvers --------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["alice", "U0ALICE", "alice@example.com"])
def test_an_approver_is_found_by_name_slack_id_or_email(tmp_path: Path, who: str) -> None:
    prod = load_policy(write(tmp_path, FLEET_YAML)).cluster(ACCOUNT, REGION, "prod")
    assert prod is not None

    approver = prod.approver(who)

    assert approver is not None
    assert approver.name == "alice"


@pytest.mark.parametrize("who", ["mallory", "U0BOB", "ALICE", ""])
def test_someone_not_listed_is_not_an_approver(tmp_path: Path, who: str) -> None:
    prod = load_policy(write(tmp_path, FLEET_YAML)).cluster(ACCOUNT, REGION, "prod")
    assert prod is not None

    assert prod.approver(who) is None


def test_an_approver_of_one_cluster_does_not_approve_another(tmp_path: Path) -> None:
    dev = load_policy(write(tmp_path, FLEET_YAML)).cluster(ACCOUNT, REGION, "dev")
    assert dev is not None

    assert dev.approver("alice") is None


def test_force_without_anyone_to_approve_it_is_refused() -> None:
    data = {
        "clusters": [{"name": "prod", "accountId": "111122223333", "region": "eu-west-1", "allowForce": True}]
    }

    with pytest.raises(PolicyError, match="allows force but lists no approvers"):
        parse_policy(data)


def test_node_group_settings_are_inherited_and_exclusive() -> None:
    data = {
        "defaults": {"maxUnavailable": 2},
        "clusters": [
            {"name": "prod", "accountId": "111122223333", "region": "eu-west-1", "nodegroups": ["a"]}
        ],
    }
    (prod,) = parse_policy(data).effective()
    assert (prod.maxUnavailable, prod.nodegroups, prod.allowForce) == (2, ["a"], False)

    data["defaults"] = {"maxUnavailable": 2, "maxUnavailablePercentage": 20}
    with pytest.raises(PolicyError, match="not both"):
        parse_policy(data)


def test_a_cluster_percentage_replaces_the_defaults_node_count() -> None:
    data = {
        "defaults": {"maxUnavailable": 2},
        "clusters": [
            {
                "name": "prod",
                "accountId": "111122223333",
                "region": "eu-west-1",
                "maxUnavailablePercentage": 25,
            }
        ],
    }

    (prod,) = parse_policy(data).effective()

    assert (prod.maxUnavailable, prod.maxUnavailablePercentage) == (None, 25)
