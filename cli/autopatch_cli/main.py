"""`autopatch`: rehearse a fleet patching run locally, serve a simulated fleet, and decide approvals."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autopatch", description="Hands-off patching of Amazon EKS clusters."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    rehearse = commands.add_parser(
        "rehearse", help="run a scenario in the local engine (no AWS account needed)"
    )
    rehearse.add_argument("scenario", type=Path, help="scenario file, e.g. scenarios/demo.yaml")
    rehearse.add_argument(
        "--approve",
        choices=("auto", "reject", "prompt"),
        help="how approval requests are answered (default: the scenario's; auto approves as the "
        "cluster's first listed approver, through the same decide() the approve command uses)",
    )
    rehearse.add_argument("--report-dir", type=Path, help="where report.json and report.md go")
    rehearse.add_argument("--quiet", action="store_true", help="no live progress, only the summary")

    box = commands.add_parser(
        "sandbox", help="serve a scenario's simulated fleet to any AWS or Kubernetes tool, on 127.0.0.1"
    )
    box.add_argument("scenario", type=Path, help="scenario file, e.g. scenarios/demo.yaml")
    box.add_argument("--port-aws", type=int, default=0, help="the AWS endpoint's port (default: a free one)")
    box.add_argument(
        "--port-k8s",
        type=int,
        default=0,
        help="the first cluster's Kubernetes API port; the next clusters take the next ports "
        "(default: free ones)",
    )
    box.add_argument("--tls", action="store_true", help="serve the Kubernetes APIs over HTTPS (generated CA)")
    box.add_argument(
        "--speed", type=float, default=60.0, help="simulated seconds per real second (default 60)"
    )
    box.add_argument("--env-file", type=Path, default=Path("sandbox.env"), help="default ./sandbox.env")
    box.add_argument(
        "--kubeconfig", type=Path, default=Path("sandbox.kubeconfig"), help="default ./sandbox.kubeconfig"
    )
    box.add_argument("--state-out", type=Path, help="write the final simulated state here as JSON on exit")

    for verb in ("approve", "reject"):
        decide = commands.add_parser(verb, help=f"{verb} a pending operation")
        decide.add_argument("approval_id")
        decide.add_argument("--as", dest="approver", required=True, help="your name as listed in the policy")
        decide.add_argument("--reason", default=None)
        decide.add_argument(
            "--table", default=os.environ.get("AUTOPATCH_LEDGER_TABLE"), help="ledger table name"
        )
        decide.add_argument(
            "--policy",
            type=Path,
            default=Path("fleet.example.yaml"),
            help="the fleet policy that was deployed",
        )
        decide.add_argument("--region", default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "rehearse":
        from autopatch_cli.rehearse import rehearse

        return rehearse(args.scenario, approve=args.approve, report_dir=args.report_dir, quiet=args.quiet)
    if args.command == "sandbox":
        from autopatch_cli.sandbox import sandbox

        return sandbox(
            args.scenario,
            port_aws=args.port_aws,
            port_k8s=args.port_k8s,
            tls=args.tls,
            speed=args.speed,
            env_file=args.env_file,
            kubeconfig_file=args.kubeconfig,
            state_out=args.state_out,
        )
    return _decide(args)


def _decide(args: argparse.Namespace) -> int:
    import boto3
    from autopatch.clients.ledger import Ledger
    from autopatch.errors import ApprovalError
    from autopatch.logic.approval import decide
    from autopatch.policy import PolicyError, load_policy

    if not args.table:
        print("autopatch: name the ledger table with --table or AUTOPATCH_LEDGER_TABLE", file=sys.stderr)
        return 2
    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        print(f"autopatch: {exc}", file=sys.stderr)
        return 2
    session = boto3.Session(region_name=args.region)
    try:
        decision = decide(
            args.approval_id,
            args.command,
            args.approver,
            args.reason,
            ledger=Ledger(args.table, resource=session.resource("dynamodb")),
            policy=policy,
            sfn=session.client("stepfunctions"),
        )
    except ApprovalError as exc:
        print(f"autopatch: refused: {exc}", file=sys.stderr)
        return 1
    print(f"{decision.cluster}: {decision.decision} by {decision.by} at {decision.at}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
