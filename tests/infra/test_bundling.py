"""The real Lambda bundle, built once through CDK's local bundling (pip, no Docker; needs PyPI).

Deselect with `-m "not bundling"` on a machine without access to PyPI.
"""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from autopatch.policy import load_policy

pytestmark = pytest.mark.bundling

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(statemachines_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app import build_app

    outdir = tmp_path_factory.mktemp("cdk.out.bundled")
    app, stack = build_app(outdir=str(outdir), statemachines_dir=statemachines_dir, env=cdk.Environment())
    app.synth()
    template = json.loads((outdir / f"{stack.stack_name}.template.json").read_text())
    keys = {
        resource["Properties"]["Code"]["S3Key"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    (key,) = keys  # one asset shared by every function
    return outdir / f"asset.{key.removesuffix('.zip')}"


def test_compiled_wheels_are_for_the_lambda_runtime(bundle: Path) -> None:
    assert (bundle / "pydantic_core" / "_pydantic_core.cpython-312-aarch64-linux-gnu.so").is_file()
    compiled = [path.name for path in bundle.rglob("*.so")]
    assert compiled
    wrong = [name for name in compiled if "cpython-311" in name or "x86_64" in name]
    assert wrong == []
    # --no-compile: no bytecode from the interpreter that ran pip.
    assert not list(bundle.rglob("*.pyc"))


def test_bundle_holds_the_package_the_policy_and_the_dependencies(bundle: Path) -> None:
    assert (bundle / "autopatch" / "__init__.py").is_file()
    assert load_policy(bundle / "fleet.json") == load_policy(ROOT / "fleet.example.yaml")
    for package in ("aws_lambda_powertools", "pydantic", "kubernetes", "slack_sdk", "yaml", "jsonschema"):
        assert (bundle / package).is_dir(), package
    assert not (bundle / "requirements.txt").exists()
