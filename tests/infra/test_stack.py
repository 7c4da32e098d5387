"""The synthesized Autopatch stack: what a reviewer of the CloudFormation template would check.

One synth per session (see conftest.py); the few tests that need another app build a small one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import yaml
from autopatch import settings
from autopatch.policy import PolicyError, load_policy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

ROOT = Path(__file__).resolve().parents[2]
FLEET_EXAMPLE = ROOT / "fleet.example.yaml"
# Read as it is (not through stacks/): every workflow it lists is checked on its own.
RULES_JSON: dict[str, Any] = json.loads((ROOT / "statemachines" / "rules.json").read_text())
STATE_MACHINES = sorted(RULES_JSON["stateMachines"])

# The IAM contract of each function, written out independently of stacks/constructs/functions.py.
CHECKS = {
    "eks:DescribeCluster",
    "eks:DescribeAddon",
    "eks:DescribeAddonVersions",
    "eks:DescribeAddonConfiguration",
    "eks:ListUpdates",
    "eks:DescribeUpdate",
}
CHANGE_ADDON = {"eks:UpdateAddon", "eks:DescribeAddon", "eks:DescribeCluster", "eks:DescribeUpdate"}
CHECK_NODEGROUP = {"eks:DescribeNodegroup", "eks:ListUpdates", "eks:DescribeUpdate"}
CHANGE_NODEGROUP = {"eks:UpdateNodegroupVersion", "eks:UpdateNodegroupConfig", "eks:DescribeNodegroup"}
# Before a control-plane hop: upgrade insights, the version catalogue, the node groups to match.
CHECK_CONTROL_PLANE = {
    "eks:ListInsights",
    "eks:DescribeInsight",
    "eks:DescribeClusterVersions",
    "eks:ListNodegroups",
}
# The EKS actions each function is granted on the fleet's managed node groups (nodegroup/<cluster>/*).
EXPECTED_NODEGROUP_ACTIONS: dict[str, set[str]] = {
    "Preflight": CHECK_NODEGROUP,
    "Recheck": CHECK_NODEGROUP,
    "Verify": {"eks:DescribeNodegroup"},
    "Apply": CHANGE_NODEGROUP,
    "Poll": {"eks:DescribeUpdate"},
    "ReleaseWatcher": {"eks:DescribeNodegroup"},
    "Upgrade": {"eks:DescribeNodegroup"},
}
EXPECTED_EKS_ACTIONS: dict[str, set[str]] = {
    "Validate": set(),
    "Claim": set(),
    "Lock": set(),
    "ReleaseLock": set(),
    "Preflight": CHECKS | CHECK_CONTROL_PLANE | CHECK_NODEGROUP,
    "Recheck": CHECKS | CHECK_CONTROL_PLANE | CHECK_NODEGROUP,
    "Verify": CHECKS | {"eks:ListNodegroups", "eks:ListAddons", "eks:DescribeNodegroup"},
    "RequestApproval": set(),
    "Apply": CHANGE_ADDON | CHANGE_NODEGROUP | {"eks:UpdateClusterVersion"},
    "Rollback": CHANGE_ADDON,  # add-ons only: a node group cannot go back to an older release
    "Poll": {"eks:DescribeUpdate", "eks:DescribeAddon"},
    "Notify": set(),
    "ReleaseWatcher": {
        "eks:ListClusters",
        "eks:DescribeCluster",
        "eks:ListAddons",
        "eks:DescribeAddon",
        "eks:DescribeAddonVersions",
        "eks:ListNodegroups",
        "eks:DescribeNodegroup",
    },
    "EndOfSupportWatcher": {"eks:ListClusters", "eks:DescribeCluster", "eks:DescribeClusterVersions"},
    "HealthTranslator": {"eks:DescribeCluster", "eks:DescribeClusterVersions"},
    "Upgrade": {
        "eks:DescribeCluster",
        "eks:ListAddons",
        "eks:DescribeAddon",
        "eks:DescribeAddonVersions",
        "eks:ListNodegroups",
        "eks:DescribeNodegroup",
    },
    "ApprovalReceiver": set(),
    "ApprovalDecider": set(),
}
NOTIFIERS = {"RequestApproval", "Notify"}
# The approval API's functions: each reads its own secrets, and neither may write the whole ledger.
APPROVAL_API = {"ApprovalReceiver", "ApprovalDecider"}
# Functions that update the operation's Slack message in place: they read the bot token secret.
SLACK_UPDATERS = {"RequestApproval", "Apply", "Verify", "Notify", "ApprovalDecider"}
EVENT_PUBLISHERS = {"Notify", "ReleaseWatcher", "EndOfSupportWatcher", "HealthTranslator"}
SCHEDULED = {"ReleaseWatcher", "EndOfSupportWatcher"}  # started by EventBridge Scheduler, 300 s timeout
SUBNET_READERS = {"Preflight", "Recheck"}  # ec2:DescribeSubnets: free IPs for a roll's surge
AMI_RELEASE_READERS = {"ReleaseWatcher"}  # ssm:GetParameter on the public EKS AMI parameters
# The public parameters of the EKS optimized AMIs: AWS-owned, so no account in the ARN.
EKS_AMI_PARAMETERS = "arn:<AWS::Partition>:ssm:{region}::parameter/aws/service/eks/optimized-ami/*"
# The only EKS actions without resource-level permissions that Autopatch uses.
EKS_ACTIONS_WITHOUT_RESOURCES = {
    "eks:ListClusters",
    "eks:DescribeAddonVersions",
    "eks:DescribeAddonConfiguration",
    "eks:DescribeClusterVersions",
}
# AWS Health's EKS planned lifecycle events, as the translator's rule on the default bus matches them.
HEALTH_PATTERN = {
    "source": ["aws.health"],
    "detail-type": ["AWS Health Event"],
    "detail": {"service": ["EKS"], "eventTypeCode": ["AWS_EKS_PLANNED_LIFECYCLE_EVENT"]},
}


# --- helpers ------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def flatten(value: Any) -> str:
    """A CloudFormation value as text: Fn::Join joined, references written as <...>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return delimiter.join(flatten(part) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    return json.dumps(value, sort_keys=True)


def logical_id(stack: cdk.Stack, construct: Any) -> str:
    return stack.get_logical_id(construct.node.default_child)


def all_statements(s: Any) -> list[dict[str, Any]]:
    statements = []
    for resource in s.resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            statements += props["PolicyDocument"]["Statement"]
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                statements += policy["PolicyDocument"]["Statement"]
    return statements


def role_statements(s: Any, role_id: str) -> list[dict[str, Any]]:
    statements = []
    for resource in s.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in resource["Properties"].get("Roles", []):
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
    return statements


def actions_of(statements: list[dict[str, Any]]) -> set[str]:
    return {action for statement in statements for action in as_list(statement["Action"])}


def function_ids(s: Any, catalog: Any) -> dict[str, str]:
    """functions.json key -> logical id of its AWS::Lambda::Function."""
    by_handler = {r["Properties"]["Handler"]: name for name, r in s.of_type("AWS::Lambda::Function").items()}
    return {key: by_handler[spec.handler] for key, spec in catalog.functions.items()}


def role_of(s: Any, function_id: str) -> str:
    return s.resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]


def functions_by_role(s: Any, catalog: Any) -> dict[str, set[str]]:
    """Role logical id -> the functions.json keys of the functions that run with it."""
    by_role: dict[str, set[str]] = {}
    for key, function_id in function_ids(s, catalog).items():
        by_role.setdefault(role_of(s, function_id), set()).add(key)
    return by_role


def fleet() -> list[Any]:
    return list(load_policy(FLEET_EXAMPLE).effective())


def nodegroup_arns() -> set[str]:
    return {f"arn:<AWS::Partition>:eks:{c.region}:{c.accountId}:nodegroup/{c.name}/*" for c in fleet()}


def statements_granting(s: Any, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """(role logical id, statement) for every policy statement with an action starting with prefix."""
    found = []
    for resource in s.of_type("AWS::IAM::Policy").values():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            if any(action.startswith(prefix) for action in as_list(statement["Action"])):
                found += [(role["Ref"], statement) for role in resource["Properties"]["Roles"]]
    return found


def rules_starting(s: Any, state_machine_id: str) -> dict[str, dict[str, Any]]:
    return {
        rule_id: rule
        for rule_id, rule in s.of_type("AWS::Events::Rule").items()
        if any(t["Arn"] == {"Ref": state_machine_id} for t in rule["Properties"]["Targets"])
    }


# --- synth and cdk-nag --------------------------------------------------------------------------


def test_synth_is_clean_of_cdk_nag_findings(synthesized: Any) -> None:
    # Given the synth succeeded (an unacknowledged finding fails it), the report it wrote must be empty too:
    # warnings would not fail the synth on their own once other findings are acknowledged.
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    findings = [
        f"{plugin['pluginName']}: {violation['ruleName']} at "
        + ", ".join(c.get("constructPath", "?") for c in violation.get("violatingConstructs", []))
        for plugin in report["pluginReports"]
        for violation in plugin.get("violations", [])
    ]
    assert findings == []


def test_cdk_nag_fails_synth_on_a_bad_construct(tmp_path: Path) -> None:
    # Given a throwaway app with an unencrypted queue that accepts plain HTTP
    app = cdk.App(outdir=str(tmp_path))
    stack = cdk.Stack(app, "Throwaway")
    sqs.Queue(stack, "Careless", encryption=sqs.QueueEncryption.UNENCRYPTED)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    # When it is synthesized, then cdk-nag stops it and names the rules
    with pytest.raises(RuntimeError, match="AwsSolutions-SQS4") as failure:
        Template.from_stack(stack)
    assert "AwsSolutions-SQS2" in str(failure.value)


def test_every_acknowledgment_covers_a_real_finding(
    statemachines_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the acknowledgments left out, cdk-nag reports exactly what they covered: none is stale."""
    from app import build_app

    acknowledged: list[tuple[str, str]] = []

    def record(self: cdk.Validations, *rules: cdk.Acknowledgment) -> None:
        for rule in rules:
            assert len(rule.reason) >= 20
            acknowledged.append((self._scope_path, rule.id))  # type: ignore[attr-defined]

    original_of = cdk.Validations.of

    def of(scope: Any) -> cdk.Validations:
        validations = original_of(scope)
        validations._scope_path = scope.node.path  # type: ignore[attr-defined]
        return validations

    monkeypatch.setattr(cdk.Validations, "of", staticmethod(of))
    monkeypatch.setattr(cdk.Validations, "acknowledge", record)
    app, _ = build_app(
        context={"skipBundling": "true"},
        outdir=str(tmp_path),
        statemachines_dir=statemachines_dir,
        env=cdk.Environment(),
    )
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()

    report = json.loads((tmp_path / "validation-report.json").read_text())
    findings = {
        (violating["constructPath"], violation["ruleName"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for violating in violation["violatingConstructs"]
    }
    assert acknowledged

    def covers(ack: tuple[str, str], finding: tuple[str, str]) -> bool:
        return finding[1] == ack[1] and (finding[0] == ack[0] or finding[0].startswith(ack[0] + "/"))

    stale = [ack for ack in acknowledged if not any(covers(ack, finding) for finding in findings)]
    uncovered = [finding for finding in findings if not any(covers(ack, finding) for ack in acknowledged)]
    assert stale == []
    assert uncovered == []


def test_invalid_fleet_policy_fails_synth(statemachines_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text("clusters:\n  - name: prod\n    accountId: '12345'\n    region: eu-west-1\n")
    from app import build_app

    with pytest.raises(PolicyError, match=r"clusters\.0\.accountId"):
        build_app(
            context={"fleetPolicy": str(bad), "skipBundling": "true"}, statemachines_dir=statemachines_dir
        )


def test_app_py_reports_an_invalid_fleet_policy_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "fleet.yaml"
    bad.write_text(
        "clusters:\n"
        "  - name: prod\n"
        "    accountId: '111122223333'\n"
        "    region: eu-west-1\n"
        "    approval: required\n"
    )
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps({"fleetPolicy": str(bad)}),
        "CDK_OUTDIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1
    assert "is not a valid fleet policy" in result.stderr
    assert "cluster prod requires approval but lists no approvers" in result.stderr
    assert "Traceback" not in result.stderr


# --- workflows and rules ------------------------------------------------------------------------


def test_each_rule_has_the_pattern_of_rules_json_and_starts_its_workflow(
    synthesized: Any, catalog: Any
) -> None:
    stack = synthesized.stack
    bus_id = logical_id(stack, stack.event_bus)
    on_our_bus = [
        r for r in synthesized.of_type("AWS::Events::Rule").values() if r["Properties"].get("EventBusName")
    ]
    assert len(on_our_bus) == len(catalog.rules)
    assert all(r["Properties"]["EventBusName"] == {"Ref": bus_id} for r in on_our_bus)
    for rule in catalog.rules:
        props = synthesized.resources[logical_id(stack, stack.workflows.rules[rule.name])]["Properties"]
        assert props["EventPattern"] == rule.event_pattern
        assert props["EventBusName"] == {"Ref": bus_id}
        (target,) = props["Targets"]
        state_machine = stack.workflows.state_machines[rule.state_machine]
        assert target["Arn"] == {"Ref": logical_id(stack, state_machine)}


def test_each_rule_target_has_a_dead_letter_queue_and_retry_policy(synthesized: Any) -> None:
    queues = synthesized.of_type("AWS::SQS::Queue")
    for rule in synthesized.of_type("AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in queues
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
            assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0


def test_one_state_machine_per_entry_of_rules_json(synthesized: Any) -> None:
    assert set(synthesized.stack.workflows.state_machines) == set(STATE_MACHINES)
    assert len(synthesized.of_type("AWS::StepFunctions::StateMachine")) == len(STATE_MACHINES)


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_workflow_is_started_by_its_rules_with_the_exact_patterns(synthesized: Any, name: str) -> None:
    stack = synthesized.stack
    state_machine_id = logical_id(stack, stack.workflows.state_machines[name])
    expected = [rule["eventPattern"] for rule in RULES_JSON["rules"] if rule["stateMachine"] == name]
    assert expected, f"rules.json has no rule that starts {name}"
    started_by = rules_starting(synthesized, state_machine_id)
    patterns = [rule["Properties"]["EventPattern"] for rule in started_by.values()]
    assert sorted(json.dumps(p, sort_keys=True) for p in patterns) == sorted(
        json.dumps(p, sort_keys=True) for p in expected
    )
    for rule in started_by.values():
        assert rule["Properties"]["EventBusName"] == {"Ref": logical_id(stack, stack.event_bus)}
        assert rule["Properties"].get("State", "ENABLED") == "ENABLED"


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_workflow_rule_targets_have_a_dead_letter_queue_and_retry_policy(synthesized: Any, name: str) -> None:
    stack = synthesized.stack
    state_machine_id = logical_id(stack, stack.workflows.state_machines[name])
    queues = synthesized.of_type("AWS::SQS::Queue")
    alarms = synthesized.of_type("AWS::CloudWatch::Alarm").values()
    started_by = rules_starting(synthesized, state_machine_id)
    assert started_by
    for rule in started_by.values():
        (target,) = rule["Properties"]["Targets"]
        queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
        assert queue in queues
        assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0
        # Undelivered events page someone instead of waiting unseen in the queue.
        assert any(
            a["Properties"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
            and {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
            in a["Properties"]["Dimensions"]
            for a in alarms
        )
        # The rule's role may start this workflow and nothing else.
        statements = role_statements(synthesized, target["RoleArn"]["Fn::GetAtt"][0])
        assert actions_of(statements) == {"states:StartExecution"}
        assert all(as_list(st["Resource"]) == [{"Ref": state_machine_id}] for st in statements)


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_workflow_has_a_failed_executions_alarm(synthesized: Any, name: str) -> None:
    stack = synthesized.stack
    state_machine_id = logical_id(stack, stack.workflows.state_machines[name])
    topic = {"Ref": logical_id(stack, stack.notifications.topic)}
    (alarm,) = [
        a["Properties"]
        for a in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["MetricName"] == "ExecutionsFailed"
        and a["Properties"]["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": state_machine_id}}]
    ]
    assert alarm["Namespace"] == "AWS/States"
    assert alarm["Statistic"] == "Sum"
    assert alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"
    assert alarm["AlarmActions"] == [topic]


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_workflow_is_its_asl_file_with_every_placeholder_filled(
    synthesized: Any, catalog: Any, name: str
) -> None:
    stack = synthesized.stack
    functions = function_ids(synthesized, catalog)
    spec = catalog.state_machines[name]
    assert spec.definition_path.name == RULES_JSON["stateMachines"][name]["definition"]
    props = synthesized.resources[logical_id(stack, stack.workflows.state_machines[name])]["Properties"]
    definition = flatten(props["DefinitionString"])
    substitutions = props.get("DefinitionSubstitutions", {})
    # The ASL file is the single definition: the template carries its text unchanged.
    assert definition == spec.definition_path.read_text()
    for placeholder, value in substitutions.items():
        definition = definition.replace("${" + placeholder + "}", flatten(value))
    assert "${" not in definition
    for key, spec_fn in catalog.functions.items():
        if spec_fn.arn_placeholder in substitutions:
            assert substitutions[spec_fn.arn_placeholder] == {"Fn::GetAtt": [functions[key], "Arn"]}
    json.loads(definition)


def test_state_machine_role_invokes_exactly_the_functions_its_definition_names(
    synthesized: Any, catalog: Any
) -> None:
    stack = synthesized.stack
    functions = function_ids(synthesized, catalog)
    for name, state_machine in stack.workflows.state_machines.items():
        props = synthesized.resources[logical_id(stack, state_machine)]["Properties"]
        named = {
            functions[key]
            for key, spec in catalog.functions.items()
            if "${" + spec.arn_placeholder + "}" in flatten(props["DefinitionString"])
        }
        statements = role_statements(synthesized, props["RoleArn"]["Fn::GetAtt"][0])
        invoked = {
            flatten(resource).removeprefix("<").split(".Arn>")[0]
            for statement in statements
            if "lambda:InvokeFunction" in as_list(statement["Action"])
            for resource in as_list(statement["Resource"])
        }
        assert named, name
        assert invoked == named
        assert not invoked & {
            functions[k] for k in ("ReleaseWatcher", "EndOfSupportWatcher", "HealthTranslator")
        }


@pytest.mark.parametrize("name", STATE_MACHINES)
def test_workflow_logs_everything_and_traces(synthesized: Any, name: str) -> None:
    stack = synthesized.stack
    props = synthesized.resources[logical_id(stack, stack.workflows.state_machines[name])]["Properties"]
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["LoggingConfiguration"]["IncludeExecutionData"] is False  # task tokens stay out of logs
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["StateMachineType"] == "STANDARD"
    (destination,) = props["LoggingConfiguration"]["Destinations"]
    log_group = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    assert synthesized.resources[log_group]["Type"] == "AWS::Logs::LogGroup"
    assert synthesized.resources[log_group]["Properties"]["RetentionInDays"] > 0


# --- IAM ----------------------------------------------------------------------------------------


def test_no_statement_allows_every_action_of_a_service(synthesized: Any) -> None:
    actions = actions_of(all_statements(synthesized))
    assert actions
    assert not {action for action in actions if action == "*" or action.endswith(":*")}


def test_each_role_gets_exactly_the_eks_actions_of_its_functions(synthesized: Any, catalog: Any) -> None:
    """A role shared by several functions (the Kubernetes reader) holds the union of their contracts."""
    assert set(catalog.functions) == set(EXPECTED_EKS_ACTIONS), "add the new function to the IAM contract"
    for role_id, keys in functions_by_role(synthesized, catalog).items():
        actions = actions_of(role_statements(synthesized, role_id))
        eks = {action for action in actions if action.startswith("eks:")}
        assert eks == set().union(*(EXPECTED_EKS_ACTIONS[key] for key in keys)), keys
        assert "iam:PassRole" not in actions
        if not keys & APPROVAL_API:  # their ledger access is checked in the approval API tests
            assert {"dynamodb:PutItem", "dynamodb:Query", "dynamodb:Scan"} <= actions, keys
        assert ("sns:Publish" in actions) == bool(keys & NOTIFIERS), keys
        readers = NOTIFIERS | APPROVAL_API | SLACK_UPDATERS
        assert ("secretsmanager:GetSecretValue" in actions) == bool(keys & readers), keys
        assert ("events:PutEvents" in actions) == bool(keys & EVENT_PUBLISHERS), keys
        assert ("ec2:DescribeSubnets" in actions) == bool(keys & SUBNET_READERS), keys
        assert ("ssm:GetParameter" in actions) == bool(keys & AMI_RELEASE_READERS), keys


def test_the_slack_bot_token_is_readable_exactly_by_the_functions_that_update_messages(
    synthesized: Any, catalog: Any
) -> None:
    """Apply and Verify move the message to "applying" and "verifying"; RequestApproval, Notify and
    the decider post and update it. Verify shares the Kubernetes reader role with Preflight and
    Recheck (one access entry per cluster), so that role holds it too."""
    (secret,) = [key for key in synthesized.of_type("AWS::SecretsManager::Secret") if "SlackBotToken" in key]
    holders: set[str] = set()
    for role_id, keys in functions_by_role(synthesized, catalog).items():
        for statement in role_statements(synthesized, role_id):
            if "secretsmanager:GetSecretValue" in as_list(statement["Action"]) and secret in json.dumps(
                statement["Resource"]
            ):
                holders |= keys
    assert holders == SLACK_UPDATERS | {"Preflight", "Recheck"}
    functions = synthesized.of_type("AWS::Lambda::Function")
    with_setting = {
        key
        for key, function_id in function_ids(synthesized, catalog).items()
        if "AUTOPATCH_SLACK_BOT_SECRET_ARN"
        in functions[function_id]["Properties"]["Environment"]["Variables"]
    }
    assert with_setting == SLACK_UPDATERS


def test_node_group_actions_are_granted_on_the_fleets_node_groups_only_where_listed(
    synthesized: Any, catalog: Any
) -> None:
    for role_id, keys in functions_by_role(synthesized, catalog).items():
        on_nodegroups: set[str] = set()
        for statement in role_statements(synthesized, role_id):
            resources = {flatten(resource) for resource in as_list(statement["Resource"])}
            if any(":nodegroup/" in resource for resource in resources):
                assert resources == nodegroup_arns(), keys  # every fleet cluster's groups, nothing else
                on_nodegroups |= set(as_list(statement["Action"]))
        assert on_nodegroups == set().union(*(EXPECTED_NODEGROUP_ACTIONS.get(key, set()) for key in keys)), (
            keys
        )


def test_only_apply_changes_node_groups(synthesized: Any, catalog: Any) -> None:
    functions = function_ids(synthesized, catalog)
    for action in ("eks:UpdateNodegroupVersion", "eks:UpdateNodegroupConfig"):
        holders = {
            role for role, st in statements_granting(synthesized, "eks:") if action in as_list(st["Action"])
        }
        assert holders == {role_of(synthesized, functions["Apply"])}, action


def test_subnets_are_read_only_by_the_node_group_checks(synthesized: Any, catalog: Any) -> None:
    functions = function_ids(synthesized, catalog)
    granted = statements_granting(synthesized, "ec2:")
    assert {role for role, _ in granted} == {role_of(synthesized, functions[k]) for k in SUBNET_READERS}
    for _, statement in granted:
        # ec2:DescribeSubnets has no resource-level permissions; the statement holds nothing else.
        assert as_list(statement["Action"]) == ["ec2:DescribeSubnets"]
        assert statement["Resource"] == "*"


def test_only_the_watcher_reads_ssm_and_only_the_public_eks_ami_parameters(
    synthesized: Any, catalog: Any
) -> None:
    functions = function_ids(synthesized, catalog)
    granted = statements_granting(synthesized, "ssm:")
    assert {role for role, _ in granted} == {role_of(synthesized, functions[k]) for k in AMI_RELEASE_READERS}
    regions = {c.region for c in fleet()}
    for _, statement in granted:
        assert as_list(statement["Action"]) == ["ssm:GetParameter"]
        resources = {flatten(resource) for resource in as_list(statement["Resource"])}
        assert resources == {EKS_AMI_PARAMETERS.format(region=region) for region in regions}
    assert len([s for s in all_statements(synthesized) if actions_of([s]) & {"ssm:GetParameter"}]) == len(
        granted
    )


def test_eks_permissions_are_scoped_to_the_fleet(synthesized: Any) -> None:
    names = "|".join(re.escape(c.name) for c in load_policy(FLEET_EXAMPLE).effective())
    scoped = re.compile(
        rf"^arn:<AWS::Partition>:eks:eu-west-1:111122223333:"
        rf"(cluster/({names})|addon/({names})/\*|nodegroup/({names})/\*)$"
    )
    for statement in all_statements(synthesized):
        actions = [a for a in as_list(statement["Action"]) if a.startswith("eks:")]
        if not actions:
            continue
        resources = [flatten(resource) for resource in as_list(statement["Resource"])]
        if resources == ["*"]:
            assert set(actions) <= EKS_ACTIONS_WITHOUT_RESOURCES
        else:
            assert all(scoped.match(resource) for resource in resources), resources


def test_kubernetes_reading_functions_share_one_role(synthesized: Any, catalog: Any) -> None:
    functions = function_ids(synthesized, catalog)
    readers = {key for key, spec in catalog.functions.items() if spec.kubernetes}
    assert readers == {"Preflight", "Recheck", "Verify"}
    reader_roles = {role_of(synthesized, functions[key]) for key in readers}
    assert len(reader_roles) == 1
    others = {role_of(synthesized, functions[key]) for key in set(functions) - readers}
    assert reader_roles.isdisjoint(others)
    assert len(others) == len(functions) - len(readers)  # every other function has its own role
    (reader_role,) = reader_roles
    assert synthesized.outputs["KubernetesReaderRoleArn"]["Value"] == {"Fn::GetAtt": [reader_role, "Arn"]}


def test_no_role_uses_an_aws_managed_policy(synthesized: Any) -> None:
    for role in synthesized.of_type("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


# --- data, notifications, alarms ----------------------------------------------------------------


def test_ledger_table(synthesized: Any) -> None:
    (table,) = synthesized.of_type("AWS::DynamoDB::Table").values()
    props = table["Properties"]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert {"AttributeName": "pk", "AttributeType": "S"} in props["AttributeDefinitions"]
    assert {"AttributeName": "sk", "AttributeType": "S"} in props["AttributeDefinitions"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


def test_topics_are_encrypted_and_the_secrets_hold_only_placeholders_or_generated_keys(
    synthesized: Any,
) -> None:
    stack = synthesized.stack
    topics = synthesized.of_type("AWS::SNS::Topic")
    assert set(topics) == {
        logical_id(stack, stack.notifications.topic),
        logical_id(stack, stack.approval_resources.topic),
    }
    for topic in topics.values():
        key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
        assert synthesized.resources[key_id]["Properties"]["EnableKeyRotation"] is True
    secrets = synthesized.of_type("AWS::SecretsManager::Secret")
    placeholders = {
        logical_id(stack, stack.notifications.slack_webhook_secret),
        logical_id(stack, stack.notifications.slack_bot_token_secret),
        logical_id(stack, stack.approval_resources.slack_signing_secret),
    }
    link_key = logical_id(stack, stack.approval_resources.link_key)
    assert set(secrets) == placeholders | {link_key}
    for secret_id in placeholders:
        assert secrets[secret_id]["Properties"]["SecretString"] == "REPLACE_ME"
    # the link key is generated by Secrets Manager: no value of it is in the template
    assert "SecretString" not in secrets[link_key]["Properties"]
    assert secrets[link_key]["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32


def test_alarms_page_the_topic(synthesized: Any) -> None:
    stack = synthesized.stack
    topic = {"Ref": logical_id(stack, stack.notifications.topic)}
    alarms = list(synthesized.of_type("AWS::CloudWatch::Alarm").values())
    assert alarms
    assert all(alarm["Properties"]["AlarmActions"] == [topic] for alarm in alarms)

    def alarmed(metric: str, dimension: Any) -> bool:
        return any(
            a["Properties"]["MetricName"] == metric
            and dimension in [d["Value"] for d in a["Properties"]["Dimensions"]]
            for a in alarms
        )

    for state_machine in synthesized.of_type("AWS::StepFunctions::StateMachine"):
        assert alarmed("ExecutionsFailed", {"Ref": state_machine})
    for key in ("ReleaseWatcher", "EndOfSupportWatcher", "HealthTranslator"):
        assert alarmed("Errors", {"Ref": logical_id(stack, stack.functions.functions[key])}), key
    queues = synthesized.of_type("AWS::SQS::Queue")
    decisions = logical_id(stack, stack.approval_resources.queue)
    dead_letter_queues = set(queues) - {decisions}
    # one per rule (the Health rule included) + one per schedule + the approval decisions'
    assert len(dead_letter_queues) == len(synthesized.of_type("AWS::Events::Rule")) + len(SCHEDULED) + 1
    for queue in dead_letter_queues:
        assert alarmed("ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [queue, "QueueName"]})


def test_dead_letter_queues_are_encrypted_and_tls_only(synthesized: Any) -> None:
    policies = synthesized.of_type("AWS::SQS::QueuePolicy").values()
    for queue_id, queue in synthesized.of_type("AWS::SQS::Queue").items():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True
        assert any(
            {"Ref": queue_id} in policy["Properties"]["Queues"]
            and any(
                s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
            )
            for policy in policies
        ), queue_id


# --- Lambda -------------------------------------------------------------------------------------


def test_functions_share_the_lambda_defaults(synthesized: Any, catalog: Any) -> None:
    functions = function_ids(synthesized, catalog)
    required_env = {
        settings.ENV_LEDGER_TABLE,
        settings.ENV_EVENT_BUS,
        settings.ENV_TOPIC_ARN,
        settings.ENV_SLACK_WEBHOOK_SECRET_ARN,
        settings.ENV_POLICY_PATH,
    }
    assert len(synthesized.of_type("AWS::Lambda::Function")) == len(catalog.functions)
    for key, function_id in functions.items():
        props = synthesized.resources[function_id]["Properties"]
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props["MemorySize"] == 512
        assert props["Timeout"] == (300 if key in SCHEDULED else 60)
        assert props["Handler"] == catalog.functions[key].handler
        assert props["LoggingConfig"]["LogFormat"] == "JSON"
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert synthesized.resources[log_group]["Type"] == "AWS::Logs::LogGroup"
        variables = props["Environment"]["Variables"]
        assert required_env <= set(variables)
        assert variables[settings.ENV_POLICY_PATH] == "/var/task/fleet.json"


def test_every_log_group_has_a_retention(synthesized: Any) -> None:
    log_groups = synthesized.of_type("AWS::Logs::LogGroup").values()
    assert len(log_groups) == len(synthesized.of_type("AWS::Lambda::Function")) + len(
        synthesized.of_type("AWS::StepFunctions::StateMachine")
    ) + len(synthesized.of_type("AWS::ApiGatewayV2::Stage"))
    assert all(group["Properties"].get("RetentionInDays", 0) > 0 for group in log_groups)


def test_asset_holds_the_package_and_the_validated_policy(synthesized: Any) -> None:
    (key,) = {
        fn["Properties"]["Code"]["S3Key"] for fn in synthesized.of_type("AWS::Lambda::Function").values()
    }
    asset = synthesized.outdir / f"asset.{key.removesuffix('.zip')}"
    assert (asset / "autopatch" / "policy.py").is_file()
    assert not list(asset.rglob("__pycache__"))
    assert load_policy(asset / "fleet.json") == load_policy(FLEET_EXAMPLE)


# --- release watching ---------------------------------------------------------------------------


def schedule_of(synthesized: Any, key: str) -> dict[str, Any]:
    """The properties of the one schedule that invokes the function `key`."""
    function = logical_id(synthesized.stack, synthesized.stack.functions.functions[key])
    (props,) = [
        s["Properties"]
        for s in synthesized.of_type("AWS::Scheduler::Schedule").values()
        if s["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [function, "Arn"]}
    ]
    return dict(props)


def test_only_the_watchers_are_scheduled(synthesized: Any, catalog: Any) -> None:
    functions = function_ids(synthesized, catalog)
    targets = {
        s["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
        for s in synthesized.of_type("AWS::Scheduler::Schedule").values()
    }
    assert targets == {functions[key] for key in SCHEDULED}
    assert len(synthesized.of_type("AWS::Scheduler::Schedule")) == len(SCHEDULED)


def test_schedule_runs_the_release_watcher_every_six_hours(synthesized: Any) -> None:
    props = schedule_of(synthesized, "ReleaseWatcher")
    assert props["ScheduleExpression"] == "rate(6 hours)"
    assert props["Target"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in synthesized.of_type(
        "AWS::SQS::Queue"
    )
    assert props["Target"]["RetryPolicy"]["MaximumRetryAttempts"] > 0


def test_schedule_runs_the_end_of_support_watcher_daily_with_a_dead_letter_queue(synthesized: Any) -> None:
    props = schedule_of(synthesized, "EndOfSupportWatcher")
    assert props["ScheduleExpression"] == "rate(1 day)"
    assert props["State"] == "ENABLED"
    target = props["Target"]
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in synthesized.of_type("AWS::SQS::Queue")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    # the scheduler's role may invoke this function (and its versions) and write to its DLQ, nothing else
    role = target["RoleArn"]["Fn::GetAtt"][0]
    statements = role_statements(synthesized, role)
    assert actions_of(statements) == {"lambda:InvokeFunction", "sqs:SendMessage"}
    watcher = logical_id(synthesized.stack, synthesized.stack.functions.functions["EndOfSupportWatcher"])
    queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]

    def resources(action: str) -> set[str]:
        return {
            flatten(r)
            for st in statements
            if action in as_list(st["Action"])
            for r in as_list(st["Resource"])
        }

    assert resources("lambda:InvokeFunction") == {f"<{watcher}.Arn>", f"<{watcher}.Arn>:*"}
    assert resources("sqs:SendMessage") == {f"<{queue}.Arn>"}


def test_aws_health_rule_is_on_the_default_bus_and_feeds_the_translator(synthesized: Any) -> None:
    stack = synthesized.stack
    translator = logical_id(stack, stack.functions.functions["HealthTranslator"])
    (rule_id, rule) = next(
        (rule_id, rule)
        for rule_id, rule in synthesized.of_type("AWS::Events::Rule").items()
        if rule["Properties"]["EventPattern"].get("source") == ["aws.health"]
    )
    props = rule["Properties"]
    assert props["EventPattern"] == HEALTH_PATTERN
    assert "EventBusName" not in props  # the account's default bus: the only one Health delivers to
    assert props.get("State", "ENABLED") == "ENABLED"
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [translator, "Arn"]}
    queue = target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert queue in synthesized.of_type("AWS::SQS::Queue")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0
    # EventBridge may invoke the translator for this rule only
    (permission,) = [
        p["Properties"]
        for p in synthesized.of_type("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [translator, "Arn"]}
    ]
    assert permission["Principal"] == "events.amazonaws.com"
    assert permission["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}


def test_only_apply_changes_the_control_plane_version(synthesized: Any, catalog: Any) -> None:
    functions = function_ids(synthesized, catalog)
    granted = [
        (role, st)
        for role, st in statements_granting(synthesized, "eks:")
        if "eks:UpdateClusterVersion" in as_list(st["Action"])
    ]
    assert {role for role, _ in granted} == {role_of(synthesized, functions["Apply"])}
    for _, statement in granted:
        resources = {flatten(r) for r in as_list(statement["Resource"])}
        assert all(":cluster/" in r for r in resources), resources


def test_watcher_rate_comes_from_context() -> None:
    from app import watcher_rate

    assert watcher_rate(cdk.App(context={"watcherRate": "30m"})).to_minutes() == 30
    assert watcher_rate(cdk.App()).to_hours() == 6
    with pytest.raises(ValueError, match="whole number of minutes"):
        watcher_rate(cdk.App(context={"watcherRate": "90s"}))


# --- outputs ------------------------------------------------------------------------------------


def test_outputs_name_what_an_operator_needs(synthesized: Any) -> None:
    stack = synthesized.stack
    outputs = synthesized.outputs
    assert outputs["EventBusName"]["Value"] == {"Ref": logical_id(stack, stack.event_bus)}
    assert outputs["TopicArn"]["Value"] == {"Ref": logical_id(stack, stack.notifications.topic)}
    secret = stack.notifications.slack_webhook_secret
    assert outputs["SlackWebhookSecretArn"]["Value"] == {"Ref": logical_id(stack, secret)}
    assert outputs["LedgerTableName"]["Value"] == {"Ref": logical_id(stack, stack.ledger.table)}
    for state_machine in synthesized.of_type("AWS::StepFunctions::StateMachine"):
        assert {"Ref": state_machine} in [output["Value"] for output in outputs.values()]


# --- Kubernetes access --------------------------------------------------------------------------


def _access_stack(*, account: str | None, create: bool) -> cdk.Stack:
    from stacks.constructs.fleet import fleet_clusters
    from stacks.constructs.kubernetes_access import KubernetesAccess

    stack = cdk.Stack(cdk.App(), "Access", env=cdk.Environment(account=account, region="eu-west-1"))
    role = iam.Role(stack, "Reader", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
    clusters = fleet_clusters(load_policy(FLEET_EXAMPLE))
    clusters.append(type(clusters[0])(name="elsewhere", account="444455556666", region="eu-west-1"))
    KubernetesAccess(
        stack, "KubernetesAccess", reader_role=role, clusters=clusters, create_access_entries=create
    )
    return stack


def test_access_entries_only_when_asked_and_only_for_clusters_in_the_stacks_account() -> None:
    access: Any = _access_stack(account="111122223333", create=False).node.find_child("KubernetesAccess")
    assert access.access_entries == {}
    template = Template.from_stack(_access_stack(account="111122223333", create=True))
    entries = template.find_resources("AWS::EKS::AccessEntry")
    assert sorted(e["Properties"]["ClusterName"] for e in entries.values()) == ["dev", "prod", "staging"]
    template.all_resources_properties(
        "AWS::EKS::AccessEntry",
        {
            "Type": "STANDARD",
            "KubernetesGroups": ["autopatch-readers"],
            "PrincipalArn": {"Fn::GetAtt": [Match.string_like_regexp("^Reader"), "Arn"]},
        },
    )


def test_access_entries_need_a_stack_bound_to_an_account() -> None:
    with pytest.raises(ValueError, match="createAccessEntries=true needs a stack bound to an account"):
        _access_stack(account=None, create=True)


def removed_api_resources() -> set[tuple[str, str]]:
    """(group, plural) of every stored kind with an API removed in 1.24 or later: what the
    control-plane preflight lists to find objects last applied with a removed version."""
    from autopatch.logic.control_plane import _NOT_STORED, removed_apis

    irregular = {"Ingress": "ingresses"}
    found = set()
    for entry in removed_apis():
        if entry["kind"] in _NOT_STORED or tuple(map(int, entry["removed_in"].split("."))) < (1, 24):
            continue
        kind = entry["kind"]
        plural = irregular.get(kind) or (
            kind.lower()[:-1] + "ies"
            if kind.endswith("y")
            else kind.lower() + ("es" if kind.endswith("s") else "s")
        )
        group = entry["group_version"].split("/")[0] if "/" in entry["group_version"] else ""
        found.add((group, plural))
    return found


def test_rbac_manifest_grants_read_only_access_to_the_group() -> None:
    from stacks.constructs.kubernetes_access import KUBERNETES_GROUP

    role, binding = yaml.safe_load_all((ROOT / "deploy/rbac/autopatch-reader.yaml").read_text())
    # A ClusterRole bound by a ClusterRoleBinding: pods and the rest are read in every namespace.
    assert role["kind"] == "ClusterRole" and role["metadata"]["name"] == "autopatch-reader"
    granted = {
        (group, resource)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert (
        granted
        == {
            ("", "nodes"),
            ("", "pods"),
            ("", "configmaps"),
            ("", "namespaces"),
            ("", "services"),
            ("", "serviceaccounts"),
            ("policy", "poddisruptionbudgets"),
            ("apps", "deployments"),
            ("apps", "daemonsets"),
            ("apps", "replicasets"),
            ("apps", "statefulsets"),
        }
        | removed_api_resources()
    )
    assert ("", "secrets") not in granted
    assert all(rule["verbs"] == ["get", "list", "watch"] for rule in role["rules"])
    assert all("resourceNames" not in rule and "nonResourceURLs" not in rule for rule in role["rules"])
    assert binding["kind"] == "ClusterRoleBinding"
    assert binding["roleRef"]["name"] == "autopatch-reader"
    assert binding["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": KUBERNETES_GROUP}
    ]


# --- catalogue and policy files -----------------------------------------------------------------


def test_fleet_example_is_a_valid_policy() -> None:
    clusters = {c.name: c for c in load_policy(FLEET_EXAMPLE).effective()}
    assert set(clusters) == {"dev", "staging", "prod"}
    assert {(c.accountId, c.region) for c in clusters.values()} == {("111122223333", "eu-west-1")}
    assert clusters["staging"].approval == "none"
    assert clusters["prod"].approval == "required"
    assert [a.model_dump() for a in clusters["prod"].approvers] == [
        {"name": "demo-approver", "slackUserId": "U0123DEMO", "email": "approver@example.com"}
    ]


def _stack_from(statemachines: Path) -> None:
    from app import build_app

    build_app(context={"skipBundling": "true"}, statemachines_dir=statemachines, env=cdk.Environment())


def test_a_placeholder_the_stack_cannot_fill_fails_synth(statemachines_dir: Path, tmp_path: Path) -> None:
    from stacks.constructs.definitions import CatalogError

    for name in ("functions.json", "rules.json"):
        (tmp_path / name).write_text((statemachines_dir / name).read_text())
    rules = json.loads((tmp_path / "rules.json").read_text())
    for spec in rules["stateMachines"].values():
        (tmp_path / spec["definition"]).write_text(
            json.dumps(
                {
                    "StartAt": "A",
                    "States": {"A": {"Type": "Task", "Resource": "${MissingFunctionArn}", "End": True}},
                }
            )
        )
    with pytest.raises(CatalogError, match=r"\$\{MissingFunctionArn\}"):
        _stack_from(tmp_path)


def test_a_function_without_declared_permissions_fails_synth(statemachines_dir: Path, tmp_path: Path) -> None:
    from stacks.constructs.definitions import CatalogError

    for path in statemachines_dir.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    functions = json.loads((tmp_path / "functions.json").read_text())
    functions["functions"]["Surprise"] = {"handler": "autopatch.handlers.surprise.handler"}
    (tmp_path / "functions.json").write_text(json.dumps(functions))
    with pytest.raises(CatalogError, match="Surprise"):
        _stack_from(tmp_path)


# --- the approval API ---------------------------------------------------------------------------


def approval_ids(synthesized: Any) -> dict[str, str]:
    stack = synthesized.stack
    resources = stack.approval_resources
    return {
        "queue": logical_id(stack, resources.queue),
        "dead_letters": logical_id(stack, resources.dead_letter_queue),
        "signing_secret": logical_id(stack, resources.slack_signing_secret),
        "link_key": logical_id(stack, resources.link_key),
        "bot_token": logical_id(stack, stack.notifications.slack_bot_token_secret),
        "approvals_topic": logical_id(stack, resources.topic),
        "approvals_key": logical_id(stack, resources.topic_key),
        "table": logical_id(stack, stack.ledger.table),
    }


def granted(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Action -> the resources it is granted on (as flattened text)."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            found.setdefault(action, set()).update(flatten(r) for r in as_list(statement["Resource"]))
    return found


LOGS_AND_TRACES = {
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}


def test_approval_api_is_an_http_api_with_a_throttled_access_logged_default_stage(synthesized: Any) -> None:
    (api,) = synthesized.of_type("AWS::ApiGatewayV2::Api").values()
    assert api["Properties"]["ProtocolType"] == "HTTP"
    (stage,) = synthesized.of_type("AWS::ApiGatewayV2::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "$default" and props["AutoDeploy"] is True
    throttling = props["DefaultRouteSettings"]
    assert 0 < throttling["ThrottlingRateLimit"] <= 50
    assert 0 < throttling["ThrottlingBurstLimit"] <= 100
    logs = props["AccessLogSettings"]
    log_group = logs["DestinationArn"]["Fn::GetAtt"][0]
    assert synthesized.resources[log_group]["Properties"]["RetentionInDays"] > 0
    fields = json.loads(logs["Format"])
    assert fields["requestId"] == "$context.requestId"
    # the route key, never the path with its query: an emailed link's token is not logged
    assert fields["routeKey"] == "$context.routeKey"
    assert not any("path" in value.lower() or "query" in value.lower() for value in fields.values())


def test_approval_api_routes_all_go_to_the_receiver_with_payload_v2(synthesized: Any, catalog: Any) -> None:
    receiver = function_ids(synthesized, catalog)["ApprovalReceiver"]
    routes = synthesized.of_type("AWS::ApiGatewayV2::Route").values()
    assert {r["Properties"]["RouteKey"] for r in routes} == {
        "POST /slack/interactions",
        "GET /approvals/confirm",
        "GET /approvals/decide",
        "POST /approvals/decide",
    }
    integrations = synthesized.of_type("AWS::ApiGatewayV2::Integration")
    for route in routes:
        target = route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]
        integration = integrations[target]["Properties"]
        assert integration["IntegrationUri"] == {"Fn::GetAtt": [receiver, "Arn"]}
        assert integration["PayloadFormatVersion"] == "2.0"
    assert synthesized.outputs["ApprovalApiUrl"]["Value"] == {
        "Fn::GetAtt": [next(iter(synthesized.of_type("AWS::ApiGatewayV2::Api"))), "ApiEndpoint"]
    }


def test_receiver_may_read_its_two_secrets_send_to_the_queue_and_view_approvals_nothing_else(
    synthesized: Any, catalog: Any
) -> None:
    from autopatch.clients.approvals import APPROVAL_VIEW_ATTRIBUTES

    ids = approval_ids(synthesized)
    role = role_of(synthesized, function_ids(synthesized, catalog)["ApprovalReceiver"])
    statements = role_statements(synthesized, role)
    actions = granted(statements)
    assert set(actions) == LOGS_AND_TRACES | {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
        "sqs:SendMessage",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "dynamodb:GetItem",
    }
    assert actions["secretsmanager:GetSecretValue"] == {f"<{ids['signing_secret']}>", f"<{ids['link_key']}>"}
    assert actions["sqs:SendMessage"] == {f"<{ids['queue']}.Arn>"}
    # the ledger: GetItem of approval summaries and used links only, never the task token
    (view,) = [s for s in statements if "dynamodb:GetItem" in as_list(s["Action"])]
    assert as_list(view["Action"]) == ["dynamodb:GetItem"]
    assert as_list(view["Resource"]) == [{"Fn::GetAtt": [ids["table"], "Arn"]}]
    condition = view["Condition"]
    assert condition["ForAllValues:StringLike"] == {"dynamodb:LeadingKeys": ["APPROVAL#*", "LINK#*"]}
    attributes = condition["ForAllValues:StringEquals"]["dynamodb:Attributes"]
    assert attributes == list(APPROVAL_VIEW_ATTRIBUTES)
    assert "taskToken" not in attributes
    assert condition["StringEqualsIfExists"] == {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"}


def test_decider_may_answer_task_tokens_use_approval_items_and_read_the_bot_token_nothing_else(
    synthesized: Any, catalog: Any
) -> None:
    ids = approval_ids(synthesized)
    role = role_of(synthesized, function_ids(synthesized, catalog)["ApprovalDecider"])
    statements = role_statements(synthesized, role)
    actions = granted(statements)
    ledger_actions = {
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:ConditionCheckItem",
    }
    queue_consumer = {
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    assert set(actions) == LOGS_AND_TRACES | ledger_actions | queue_consumer | {
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    state_machines = {f"<{sm}>" for sm in synthesized.of_type("AWS::StepFunctions::StateMachine")}
    assert actions["states:SendTaskSuccess"] == actions["states:SendTaskFailure"] == state_machines
    assert actions["secretsmanager:GetSecretValue"] == {f"<{ids['bot_token']}>"}
    assert all(actions[a] == {f"<{ids['queue']}.Arn>"} for a in queue_consumer - {"sqs:GetQueueAttributes"})
    (ledger,) = [s for s in statements if "dynamodb:PutItem" in as_list(s["Action"])]
    assert as_list(ledger["Resource"]) == [{"Fn::GetAtt": [ids["table"], "Arn"]}]  # no other table, no index
    assert ledger["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["APPROVAL#*", "LINK#*", "CLUSTER#*"]}
    }


def test_request_approval_may_email_links_through_the_approvals_topic(synthesized: Any, catalog: Any) -> None:
    ids = approval_ids(synthesized)
    functions = function_ids(synthesized, catalog)
    actions = granted(role_statements(synthesized, role_of(synthesized, functions["RequestApproval"])))
    assert f"<{ids['approvals_topic']}>" in actions["sns:Publish"]
    assert f"<{ids['link_key']}>" in actions["secretsmanager:GetSecretValue"]
    assert f"<{ids['signing_secret']}>" not in actions["secretsmanager:GetSecretValue"]
    variables = synthesized.resources[functions["RequestApproval"]]["Properties"]["Environment"]["Variables"]
    assert variables[settings.ENV_APPROVAL_TOPIC_ARN] == {"Ref": ids["approvals_topic"]}
    assert variables[settings.ENV_LINK_KEY_SECRET_ARN] == {"Ref": ids["link_key"]}
    assert settings.ENV_APPROVAL_API_URL in variables
    # no other function may publish approval links or read the link key
    for key, function_id in functions.items():
        if key in {"RequestApproval", "ApprovalReceiver"}:
            continue
        others = granted(role_statements(synthesized, role_of(synthesized, function_id)))
        assert f"<{ids['approvals_topic']}>" not in others.get("sns:Publish", set()), key
        assert f"<{ids['link_key']}>" not in others.get("secretsmanager:GetSecretValue", set()), key


def test_secrets_are_named_by_arn_never_given_as_values(synthesized: Any, catalog: Any) -> None:
    for function_id in function_ids(synthesized, catalog).values():
        variables = synthesized.resources[function_id]["Properties"]["Environment"]["Variables"]
        for name, value in variables.items():
            if "SECRET" in name or "KEY" in name:
                assert name.endswith("_ARN") and isinstance(value, dict) and "Ref" in value, name


def test_each_approver_with_an_email_has_a_subscription_that_lets_only_their_messages_through(
    synthesized: Any,
) -> None:
    ids = approval_ids(synthesized)
    expected = {
        (approver.email, approver.name)
        for cluster in fleet()
        for approver in cluster.approvers
        if approver.email
    }
    assert expected
    found = set()
    for subscription in synthesized.of_type("AWS::SNS::Subscription").values():
        props = subscription["Properties"]
        assert props["TopicArn"] == {"Ref": ids["approvals_topic"]}
        assert props["Protocol"] == "email"
        (name,) = props["FilterPolicy"]["approver"]  # exactly one approver's messages
        assert set(props["FilterPolicy"]) == {"approver"}
        found.add((props["Endpoint"], name))
    assert found == expected


def test_an_approver_with_two_emails_fails_synth() -> None:
    from autopatch.policy import parse_policy

    from stacks.constructs.approvals import approver_emails

    policy = parse_policy(
        {
            "clusters": [
                {
                    "name": name,
                    "accountId": "111122223333",
                    "region": "eu-west-1",
                    "approvers": [{"name": "alice", "email": email}],
                }
                for name, email in (("a", "alice@example.com"), ("b", "alice@elsewhere.example"))
            ]
        }
    )
    with pytest.raises(ValueError, match="approver alice has two emails"):
        approver_emails(policy)


def test_decider_reads_the_decision_queue_reporting_partial_batch_failures(
    synthesized: Any, catalog: Any
) -> None:
    ids = approval_ids(synthesized)
    decider = function_ids(synthesized, catalog)["ApprovalDecider"]
    (mapping,) = synthesized.of_type("AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": decider}
    assert props["EventSourceArn"] == {"Fn::GetAtt": [ids["queue"], "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    queue = synthesized.resources[ids["queue"]]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [ids["dead_letters"], "Arn"]}
    assert queue["VisibilityTimeout"] >= 6 * synthesized.resources[decider]["Properties"]["Timeout"]
