#!/usr/bin/env python3
"""The CDK app of Autopatch for EKS.

    .venv/bin/python app.py                     # synth into cdk.out (no AWS credentials needed)
    npx aws-cdk@2 deploy                        # cdk.json runs this file with the venv's python

Context (`-c key=value`):
    fleetPolicy          fleet policy file, validated at synth (default: fleet.example.yaml)
    skipBundling         true: ship only the autopatch package and fleet.json, no pip run
    createAccessEntries  true: create EKS access entries for the fleet clusters in the stack's
                         account and region (needs the account and region to be known)
    watcherRate          how often the release watcher runs, e.g. 6h or 30m (default: 6h)

cdk-nag's AwsSolutions checks run on every synth; any finding that is not acknowledged with a
reason fails the synth.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "functions") not in sys.path:
    sys.path.insert(0, str(ROOT / "functions"))

import aws_cdk as cdk  # noqa: E402
from autopatch.policy import PolicyError, load_policy, parse_duration  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from stacks.autopatch_stack import AutopatchStack  # noqa: E402
from stacks.bundling import lambda_code  # noqa: E402

STACK_NAME = "Autopatch"
DEFAULT_POLICY = ROOT / "fleet.example.yaml"
DEFAULT_WATCHER_RATE = "6h"


def context_flag(app: cdk.App, key: str) -> bool:
    """A boolean from context; `-c key=true` on the command line arrives as a string."""
    value = app.node.try_get_context(key)
    if isinstance(value, str):
        value = value.strip().lower()
        if value not in ("true", "false", ""):
            raise ValueError(f"context {key} must be true or false, not {value!r}")
        return value == "true"
    return bool(value)


def watcher_rate(app: cdk.App) -> cdk.Duration:
    raw = app.node.try_get_context("watcherRate") or DEFAULT_WATCHER_RATE
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        raise ValueError(f"context watcherRate: {exc}") from exc
    if seconds < 60 or seconds % 60:
        raise ValueError(f"context watcherRate must be a whole number of minutes, not {raw!r}")
    return cdk.Duration.minutes(seconds // 60)


def build_app(
    *,
    context: dict[str, Any] | None = None,
    outdir: str | None = None,
    statemachines_dir: Path = ROOT / "statemachines",
    env: cdk.Environment | None = None,
) -> tuple[cdk.App, AutopatchStack]:
    """The app with its one stack and cdk-nag registered. Raises PolicyError for a bad fleet policy."""
    app = cdk.App(context=context, outdir=outdir)
    policy_path = Path(app.node.try_get_context("fleetPolicy") or DEFAULT_POLICY)
    policy = load_policy(policy_path)
    if env is None:
        env = cdk.Environment(
            account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=os.environ.get("CDK_DEFAULT_REGION")
        )
    stack = AutopatchStack(
        app,
        STACK_NAME,
        description="Autopatch for EKS: event-driven patching of EKS add-ons and managed node groups",
        env=env,
        policy=policy,
        code=lambda_code(
            functions_dir=ROOT / "functions",
            policy=policy,
            skip_bundling=context_flag(app, "skipBundling"),
        ),
        statemachines_dir=statemachines_dir,
        watcher_rate=watcher_rate(app),
        create_access_entries=context_flag(app, "createAccessEntries"),
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, stack


def main() -> None:
    # Run by the cdk CLI, CDK_OUTDIR says where to write; run directly, write to ./cdk.out like it.
    outdir = None if os.environ.get("CDK_OUTDIR") else str(ROOT / "cdk.out")
    try:
        app, _ = build_app(outdir=outdir)
    except (PolicyError, ValueError) as exc:
        sys.exit(f"autopatch: {exc}")
    app.synth()


if __name__ == "__main__":
    main()
