"""The Lambda code asset, built without Docker.

pip downloads the wheels for the Lambda platform (Python 3.12 on arm64) instead of the machine's
own: without `--platform/--python-version/--abi` pip on Python 3.11 would fetch cp311 wheels that
fail to import on the python3.12 runtime. The bundle holds the dependencies, the `autopatch`
package and `fleet.json`, the validated fleet policy.

With context `skipBundling=true` (tests, quick synths) the asset holds only `autopatch/` and
`fleet.json`: the template is the same, the code would not run.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import jsii
from autopatch.policy import FleetPolicy
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

LAMBDA_PIP_PLATFORM = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--abi",
    "cp312",
    "--only-binary=:all:",
)
POLICY_FILE = "fleet.json"
PACKAGE = "autopatch"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def policy_json(policy: FleetPolicy) -> str:
    """The policy as the Lambdas load it (durations already in seconds)."""
    return json.dumps(policy.model_dump(mode="json", exclude_none=True), indent=2, sort_keys=True) + "\n"


def stage_code(*, functions_dir: Path, policy: FleetPolicy, output_dir: Path) -> None:
    """Copy the `autopatch` package (no bytecode) and write `fleet.json` into `output_dir`."""
    shutil.copytree(functions_dir / PACKAGE, output_dir / PACKAGE, ignore=_IGNORED, dirs_exist_ok=True)
    (output_dir / POLICY_FILE).write_text(policy_json(policy), encoding="utf-8")


def install_requirements(*, requirements: Path, output_dir: Path) -> None:
    """pip-install the runtime dependencies as Lambda (cp312, manylinux aarch64) wheels."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-r",
        str(requirements),
        *LAMBDA_PIP_PLATFORM,
        "--target",
        str(output_dir),
        "--no-compile",  # bytecode from this interpreter would be the wrong version anyway
        "--disable-pip-version-check",
        "--quiet",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"bundling the Lambda code failed: {' '.join(command)}\n{result.stdout}{result.stderr}".rstrip()
        )


@jsii.implements(ILocalBundling)
class LocalPipBundling:
    """Builds the asset on this machine; CDK falls back to Docker only if this returns False."""

    def __init__(self, *, functions_dir: Path, policy: FleetPolicy) -> None:
        self._functions_dir = functions_dir
        self._policy = policy

    # jsii passes the BundlingOptions struct as keyword arguments; only the output dir matters here.
    def try_bundle(self, output_dir: str, *, image: DockerImage, **options: Any) -> bool:
        out = Path(output_dir)
        install_requirements(requirements=self._functions_dir / "requirements.txt", output_dir=out)
        stage_code(functions_dir=self._functions_dir, policy=self._policy, output_dir=out)
        return True


def source_hash(*, functions_dir: Path, policy: FleetPolicy) -> str:
    """What the bundle is made of: sources, requirements, policy and pip's platform flags.

    Passed to CDK as the asset hash, so an unchanged bundle already in cdk.out is not rebuilt,
    and a change to the fleet policy alone still yields a new asset.
    """
    digest = hashlib.sha256()
    files = [functions_dir / "requirements.txt"]
    files += sorted(
        path
        for path in (functions_dir / PACKAGE).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )
    for path in files:
        digest.update(path.relative_to(functions_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    digest.update(policy_json(policy).encode())
    digest.update(" ".join(LAMBDA_PIP_PLATFORM).encode())
    return digest.hexdigest()


def lambda_code(*, functions_dir: Path, policy: FleetPolicy, skip_bundling: bool) -> lambda_.Code:
    """One code asset for every function."""
    if skip_bundling:
        staging = Path(tempfile.mkdtemp(prefix="autopatch-asset-"))
        atexit.register(shutil.rmtree, staging, ignore_errors=True)
        stage_code(functions_dir=functions_dir, policy=policy, output_dir=staging)
        return lambda_.Code.from_asset(str(staging))
    return lambda_.Code.from_asset(
        str(functions_dir),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_hash(functions_dir=functions_dir, policy=policy),
        bundling=BundlingOptions(
            # Never pulled: local bundling always succeeds or raises.
            image=DockerImage.from_registry("unused"),
            local=LocalPipBundling(functions_dir=functions_dir, policy=policy),
        ),
    )
