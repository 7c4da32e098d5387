"""Amazon EKS calls the workflows make, with the errors they must tell apart.

`UpdateInProgress` (ResourceInUseException: "currently has update …", FIDELITY 1.21-1.23) is
retryable; an incompatible version (InvalidParameterException) is terminal.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from autopatch.errors import UpdateInProgress, UpdateRejected

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


@lru_cache(maxsize=16)
def eks_client(region: str) -> Any:
    return boto3.client("eks", region_name=region, config=_RETRIES)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


class Eks:
    """The EKS API of one region."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def for_region(cls, region: str) -> Eks:
        return cls(eks_client(region))

    def describe_cluster(self, name: str) -> dict[str, Any]:
        return dict(self.client.describe_cluster(name=name)["cluster"])

    def describe_addon(self, cluster: str, addon: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.describe_addon(clusterName=cluster, addonName=addon)["addon"])
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def list_addons(self, cluster: str) -> list[str]:
        names: list[str] = []
        for page in self.client.get_paginator("list_addons").paginate(clusterName=cluster):
            names.extend(page.get("addons", []))
        return names

    def list_clusters(self) -> tuple[list[str], int]:
        """All cluster names, and how many pages that took."""
        names: list[str] = []
        pages = 0
        for page in self.client.get_paginator("list_clusters").paginate():
            pages += 1
            names.extend(page.get("clusters", []))
        return names, pages

    def addon_versions(self, addon: str, kubernetes_version: str) -> list[dict[str, Any]]:
        """Versions of `addon` offered for `kubernetes_version`, as DescribeAddonVersions lists them."""
        versions: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("describe_addon_versions")
        for page in paginator.paginate(addonName=addon, kubernetesVersion=kubernetes_version):
            for entry in page.get("addons", []):
                if entry.get("addonName") == addon:
                    versions.extend(entry.get("addonVersions", []))
        return versions

    def cluster_versions(self, versions: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """The EKS Kubernetes version catalogue (`DescribeClusterVersions`), by version, in one paged call.

        `includeAll` so that versions past the end of extended support (UNSUPPORTED) are listed too.
        The wanted versions are picked out here rather than sent as `clusterVersions`: a public
        report has `clusterVersions` and `includeAll` refused together, and the whole catalogue is
        one page. Dates come back as timezone-aware datetimes.
        """
        wanted = set(versions) if versions is not None else None
        found: dict[str, dict[str, Any]] = {}
        for page in self.client.get_paginator("describe_cluster_versions").paginate(includeAll=True):
            for entry in page.get("clusterVersions", []):
                if entry.get("clusterType", "eks") != "eks":  # e.g. local clusters on Outposts
                    continue
                version = str(entry.get("clusterVersion", ""))
                if wanted is None or version in wanted:
                    found[version] = dict(entry)
        return found

    def configuration_schema(self, addon: str, version: str) -> str | None:
        response = self.client.describe_addon_configuration(addonName=addon, addonVersion=version)
        return response.get("configurationSchema")

    def updates_in_progress(self, cluster: str, addon: str) -> list[str]:
        in_progress = []
        for page in self.client.get_paginator("list_updates").paginate(name=cluster, addonName=addon):
            for update_id in page.get("updateIds", []):
                update = self.describe_update(cluster, update_id, addon=addon)
                if update.get("status") == "InProgress":
                    in_progress.append(update_id)
        return in_progress

    def describe_update(
        self, cluster: str, update_id: str, *, addon: str | None = None, nodegroup: str | None = None
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"name": cluster, "updateId": update_id}
        if addon:
            kwargs["addonName"] = addon
        if nodegroup:
            kwargs["nodegroupName"] = nodegroup
        return dict(self.client.describe_update(**kwargs)["update"])

    # ---- managed node groups --------------------------------------------------------------------
    def list_nodegroups(self, cluster: str) -> list[str]:
        names: list[str] = []
        for page in self.client.get_paginator("list_nodegroups").paginate(clusterName=cluster):
            names.extend(page.get("nodegroups", []))
        return names

    def describe_nodegroup(self, cluster: str, nodegroup: str) -> dict[str, Any] | None:
        try:
            return dict(
                self.client.describe_nodegroup(clusterName=cluster, nodegroupName=nodegroup)["nodegroup"]
            )
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def nodegroup_updates_in_progress(self, cluster: str, nodegroup: str) -> list[str]:
        in_progress = []
        for page in self.client.get_paginator("list_updates").paginate(name=cluster, nodegroupName=nodegroup):
            for update_id in page.get("updateIds", []):
                if (
                    self.describe_update(cluster, update_id, nodegroup=nodegroup).get("status")
                    == "InProgress"
                ):
                    in_progress.append(update_id)
        return in_progress

    def update_nodegroup_version(
        self, cluster: str, nodegroup: str, *, version: str, release_version: str, force: bool, token: str
    ) -> dict[str, Any]:
        """Always pass `version`: what EKS does without it is documented both ways (FIDELITY 1.5-1.6)."""
        return self._start_update(
            "update_nodegroup_version",
            clusterName=cluster,
            nodegroupName=nodegroup,
            version=version,
            releaseVersion=release_version,
            force=force,
            clientRequestToken=token,
        )

    def update_nodegroup_config(
        self, cluster: str, nodegroup: str, *, update_config: dict[str, Any], token: str
    ) -> dict[str, Any]:
        return self._start_update(
            "update_nodegroup_config",
            clusterName=cluster,
            nodegroupName=nodegroup,
            updateConfig=update_config,
            clientRequestToken=token,
        )

    def _start_update(self, method: str, **kwargs: Any) -> dict[str, Any]:
        """Call an EKS update operation; tell "busy, try later" from "refused"."""
        try:
            response = getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            code, message = error_code(exc), error_message(exc)
            if code == "ResourceInUseException" or ("currently has" in message and "update" in message):
                raise UpdateInProgress(message) from exc
            if code in ("InvalidParameterException", "InvalidRequestException"):
                raise UpdateRejected(message) from exc
            raise
        return dict(response["update"])

    def update_addon(
        self, cluster: str, addon: str, version: str, *, resolve_conflicts: str, token: str
    ) -> dict[str, Any]:
        """Start an add-on update. The add-on's IAM role, pod identity associations and
        configuration values are left out on purpose: omitted, EKS keeps them as they are."""
        return self._start_update(
            "update_addon",
            clusterName=cluster,
            addonName=addon,
            addonVersion=version,
            resolveConflicts=resolve_conflicts,
            clientRequestToken=token,
        )

    # ---- the control plane ----------------------------------------------------------------------
    def update_cluster_version(self, cluster: str, version: str, *, token: str) -> dict[str, Any]:
        """One minor version up (EKS refuses more, FIDELITY 3.6). `force` is never sent: an upgrade
        that insights block is reported, not pushed through."""
        return self._start_update(
            "update_cluster_version", name=cluster, version=version, clientRequestToken=token
        )

    def list_insights(self, cluster: str, *, category: str, kubernetes_version: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "clusterName": cluster,
            "filter": {"categories": [category], "kubernetesVersions": [kubernetes_version]},
        }
        for page in self.client.get_paginator("list_insights").paginate(**kwargs):
            found.extend(page.get("insights", []))
        return found

    def describe_insight(self, cluster: str, insight_id: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.describe_insight(clusterName=cluster, id=insight_id)["insight"])
        except ClientError as exc:
            if error_code(exc) == "ResourceNotFoundException":
                return None
            raise

    def cluster_updates_in_progress(self, cluster: str) -> list[str]:
        in_progress = []
        for page in self.client.get_paginator("list_updates").paginate(name=cluster):
            for update_id in page.get("updateIds", []):
                if self.describe_update(cluster, update_id).get("status") == "InProgress":
                    in_progress.append(update_id)
        return in_progress
