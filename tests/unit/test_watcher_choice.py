"""Which version the release watcher announces for one installed add-on."""

from __future__ import annotations

from typing import Any

from autopatch.logic.watcher import choose_target


def offered(*versions: str, kubernetes: tuple[str, ...] = ("1.30", "1.31")) -> list[dict[str, Any]]:
    """Entries shaped like DescribeAddonVersions' `addonVersions`."""
    return [
        {
            "addonVersion": version,
            "architecture": ["amd64", "arm64"],
            "compatibilities": [{"clusterVersion": k, "defaultVersion": False} for k in kubernetes],
        }
        for version in versions
    ]


def test_the_newest_compatible_version_is_chosen_whatever_the_listing_order() -> None:
    versions = offered(
        "v1.11.4-eksbuild.24", "v1.11.4-eksbuild.2", "v1.11.4-eksbuild.28", "v1.11.3-eksbuild.1"
    )

    assert choose_target("coredns", "v1.11.4-eksbuild.22", versions, "1.31") == "v1.11.4-eksbuild.28"


def test_versions_not_offered_for_the_cluster_kubernetes_version_are_ignored() -> None:
    versions = [
        *offered("v1.11.4-eksbuild.24", kubernetes=("1.31",)),
        *offered("v1.12.1-eksbuild.1", kubernetes=("1.32", "1.33")),
    ]

    assert choose_target("coredns", "v1.11.4-eksbuild.22", versions, "1.31") == "v1.11.4-eksbuild.24"


def test_an_entry_without_compatibilities_is_never_chosen() -> None:
    versions = [{"addonVersion": "v1.11.4-eksbuild.30"}, *offered("v1.11.4-eksbuild.24")]

    assert choose_target("coredns", "v1.11.4-eksbuild.22", versions, "1.31") == "v1.11.4-eksbuild.24"


def test_vpc_cni_is_offered_at_most_one_minor_ahead() -> None:
    versions = offered("v1.19.6-eksbuild.1", "v1.20.4-eksbuild.2", "v1.21.1-eksbuild.1")

    assert choose_target("vpc-cni", "v1.19.2-eksbuild.5", versions, "1.31") == "v1.20.4-eksbuild.2"


def test_vpc_cni_never_jumps_a_major_version() -> None:
    versions = offered("v2.0.0-eksbuild.1")

    assert choose_target("vpc-cni", "v1.19.2-eksbuild.5", versions, "1.31") is None


def test_other_addons_may_move_several_minors_at_once() -> None:
    versions = offered("v1.31.3-eksbuild.2", "v1.33.0-eksbuild.1")

    assert choose_target("kube-proxy", "v1.31.0-eksbuild.5", versions, "1.31") == "v1.33.0-eksbuild.1"


def test_nothing_is_chosen_when_the_installed_version_is_the_newest() -> None:
    versions = offered("v1.11.4-eksbuild.22", "v1.11.3-eksbuild.1")

    assert choose_target("coredns", "v1.11.4-eksbuild.22", versions, "1.31") is None


def test_nothing_is_chosen_when_nothing_is_offered() -> None:
    assert choose_target("coredns", "v1.11.4-eksbuild.22", [], "1.31") is None


def test_a_newer_build_of_the_same_version_counts_as_newer() -> None:
    versions = offered("v1.11.4-eksbuild.9", "v1.11.4-eksbuild.10")

    assert choose_target("coredns", "v1.11.4-eksbuild.9", versions, "1.31") == "v1.11.4-eksbuild.10"


def test_an_unreadable_installed_version_gives_no_target() -> None:
    versions = offered("v1.11.4-eksbuild.24")

    assert choose_target("coredns", "", versions, "1.31") is None
    assert choose_target("coredns", "1.11.4", versions, "1.31") is None


def test_unreadable_offered_versions_are_skipped() -> None:
    versions = offered("latest", "v1.11.4-eksbuild.24", "v9.9")

    assert choose_target("coredns", "v1.11.4-eksbuild.22", versions, "1.31") == "v1.11.4-eksbuild.24"
