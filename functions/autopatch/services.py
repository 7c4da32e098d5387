"""The clients a step needs, built once per cold start and handed to the logic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from autopatch.clients.eks import Eks
from autopatch.clients.ledger import Ledger
from autopatch.policy import FleetPolicy, load_policy_cached
from autopatch.settings import Settings, settings

if TYPE_CHECKING:
    from autopatch.clients.kube import KubeReader
    from autopatch.clients.notifier import Notifier


def _kube_for(cluster: str, region: str) -> KubeReader:
    # Imported here: only the steps that read Kubernetes pay for the client at cold start.
    from autopatch.clients.kube import KubeReader

    return KubeReader.for_cluster(cluster, Eks.for_region(region).client, region=region)


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    policy: FleetPolicy
    eks_for: Callable[[str], Eks] = Eks.for_region
    kube_for: Callable[[str, str], Any] = _kube_for
    _notifier: Any = field(default=None, repr=False)

    @property
    def notifier(self) -> Notifier:
        if self._notifier is None:
            from autopatch.clients.notifier import Notifier

            self._notifier = Notifier.from_settings(self.settings)
        return self._notifier


@lru_cache(maxsize=1)
def services() -> Services:
    config = settings()
    return Services(
        settings=config,
        ledger=Ledger(config.ledger_table),
        policy=load_policy_cached(config.policy_path),
    )
