"""The `autopatch` console script: approve/reject against the ledger, and bad input to rehearse."""

from __future__ import annotations

from pathlib import Path

import pytest
from autopatch.clients.ledger import Ledger
from autopatch_cli.main import main

from tests.conftest import LEDGER_TABLE

POLICY = """
defaults: {addons: [coredns]}
clusters:
  - name: prod
    accountId: "111122223333"
    region: eu-west-1
    approval: required
    approvers: [{name: alice, slackUserId: U0ALICE, email: alice@example.com}]
"""


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def pending(aws: Ledger) -> str:
    aws.put_approval(
        "apr-test",
        {
            "taskToken": "token-that-step-functions-no-longer-knows",
            "clusterKey": "111122223333#eu-west-1#prod",
            "cluster": "prod",
            "approvers": ["alice"],
        },
    )
    return "apr-test"


def run(*args: str) -> int:
    return main(list(args))


def test_a_person_not_listed_is_refused_and_nothing_changes(
    aws: Ledger, pending: str, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = aws.get_approval(pending)

    code = run("approve", pending, "--as", "mallory", "--table", LEDGER_TABLE, "--policy", str(policy_file))

    assert code == 1
    assert "mallory is not an approver for prod" in capsys.readouterr().err
    assert aws.get_approval(pending) == before


def test_an_unknown_approval_is_refused(
    aws: Ledger, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run("reject", "apr-nope", "--as", "alice", "--table", LEDGER_TABLE, "--policy", str(policy_file))

    assert code == 1
    assert "no approval 'apr-nope'" in capsys.readouterr().err


def test_a_broken_policy_file_is_a_clear_error(
    tmp_path: Path, pending: str, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [{name: prod, accountId: '12'}]\n")

    code = run("approve", pending, "--as", "alice", "--table", LEDGER_TABLE, "--policy", str(broken))

    assert code == 2
    err = capsys.readouterr().err
    assert "not a valid fleet policy" in err and "accountId" in err


def test_the_table_must_be_named(
    monkeypatch: pytest.MonkeyPatch, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUTOPATCH_LEDGER_TABLE", raising=False)

    code = run("approve", "apr-x", "--as", "alice", "--table", "", "--policy", str(policy_file))

    assert code == 2
    assert "--table" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: [unclosed", "not valid YAML"),
        ("name: x\nnow: 2026-11-23T09:00:00Z\npolicy: {clusters: []}\nclusters: [{name: a}]\n", "version"),
        ("name: x\nnow: yesterday\npolicy: {clusters: []}\nclusters: []\n", "now"),
    ],
)
def test_a_broken_scenario_is_a_clear_error(
    tmp_path: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(content)

    code = run("rehearse", str(path))

    assert code == 2
    assert message in capsys.readouterr().err


def test_a_missing_scenario_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("rehearse", str(tmp_path / "nope.yaml")) == 2
    assert "cannot read scenario" in capsys.readouterr().err
