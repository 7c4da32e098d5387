"""Every scenario shipped in scenarios/ is valid, uses only versions the simulator's data knows, and
names clusters its policy covers."""

from __future__ import annotations

from pathlib import Path

import pytest

from rehearsal.eks.catalog import default_addon_catalog
from rehearsal.scenario import load_scenario

SCENARIOS = sorted((Path(__file__).parents[2] / "scenarios").glob("*.yaml"))


def test_the_shipped_scenarios_are_found() -> None:
    assert {p.stem for p in SCENARIOS} >= {"demo", "upgrade-two-hops", "upgrade-blocked-by-removed-api"}


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_is_valid(path: Path) -> None:
    scenario = load_scenario(path)
    policy = scenario.fleet_policy
    catalog = default_addon_catalog()
    for cluster in scenario.clusters:
        assert policy.cluster(
            cluster.accountId or scenario.accountId, cluster.region or scenario.region, cluster.name
        )
        for addon in cluster.addons:
            known = catalog.get(addon.name)
            assert known is not None and known.version(addon.version) is not None, (cluster.name, addon.name)
