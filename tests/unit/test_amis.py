"""The amiType → SSM parameter mapping, against every value of the EKS API's `AMITypes` enum."""

from __future__ import annotations

import botocore.session
import pytest
from autopatch.amis import RELEASE_PARAMETER_PATHS, ReleaseVersion, not_tracked_reason, release_parameter

# The enum as the EKS API model shipped with botocore defines it: a new AMI type in a botocore
# upgrade makes this test say whether it is tracked.
AMI_TYPES: list[str] = list(
    botocore.session.get_session().get_service_model("eks").shape_for("AMITypes").enum
)

BASE = "/aws/service/eks/optimized-ami/1.31/"
# Paths documented in the EKS user guide (retrieve-ami-id) for each Amazon Linux AMI type.
DOCUMENTED = {
    "AL2023_x86_64_STANDARD": BASE + "amazon-linux-2023/x86_64/standard/recommended/",
    "AL2023_ARM_64_STANDARD": BASE + "amazon-linux-2023/arm64/standard/recommended/",
    "AL2023_x86_64_NVIDIA": BASE + "amazon-linux-2023/x86_64/nvidia/recommended/",
    "AL2023_ARM_64_NVIDIA": BASE + "amazon-linux-2023/arm64/nvidia/recommended/",
    "AL2023_x86_64_NEURON": BASE + "amazon-linux-2023/x86_64/neuron/recommended/",
    "AL2_x86_64": BASE + "amazon-linux-2/recommended/",
    "AL2_ARM_64": BASE + "amazon-linux-2-arm64/recommended/",
    "AL2_x86_64_GPU": BASE + "amazon-linux-2-gpu/recommended/",
}


def test_the_enum_is_the_one_we_expect_to_cover() -> None:
    assert len(AMI_TYPES) >= 20 and "AL2023_x86_64_STANDARD" in AMI_TYPES and "CUSTOM" in AMI_TYPES


@pytest.mark.parametrize("ami_type", AMI_TYPES)
def test_every_ami_type_is_either_mapped_to_its_documented_path_or_listed_as_not_tracked(
    ami_type: str,
) -> None:
    parameter = release_parameter(ami_type, "1.31")
    reason = not_tracked_reason(ami_type)

    if ami_type in DOCUMENTED:
        assert parameter == DOCUMENTED[ami_type] + "release_version"
        assert reason is None
    else:
        assert parameter is None
        assert reason and ami_type.split("_")[0].lower() in reason.lower()


def test_no_mapping_for_an_ami_type_the_api_does_not_know() -> None:
    assert set(RELEASE_PARAMETER_PATHS) <= set(AMI_TYPES)


def test_al2_is_not_offered_from_kubernetes_1_33() -> None:
    assert release_parameter("AL2_x86_64", "1.32") is not None
    assert release_parameter("AL2_x86_64", "1.33") is None
    assert release_parameter("AL2023_x86_64_STANDARD", "1.33") is not None


def test_release_versions_compare_by_kubelet_then_date() -> None:
    older, newer = ReleaseVersion.parse("1.31.2-20241121"), ReleaseVersion.parse("1.31.14-20260714")

    assert older < newer
    assert newer.kubernetes_minor == "1.31" and newer.kubelet == "v1.31.14"
    assert str(newer) == "1.31.14-20260714"
    with pytest.raises(ValueError):
        ReleaseVersion.parse("ami-0123456789abcdef0")
