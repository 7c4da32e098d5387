"""The other AWS reads the node group checks need: SSM public parameters and EC2 subnets."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.exceptions import ClientError


@lru_cache(maxsize=16)
def _client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)


def ssm_parameter(region: str, name: str) -> str | None:
    """A public parameter's value, or None if AWS publishes no such parameter."""
    try:
        return str(_client("ssm", region).get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise


def subnets(region: str, subnet_ids: list[str]) -> list[dict[str, Any]]:
    """`SubnetId`, `AvailabilityZone` and `AvailableIpAddressCount` of each subnet."""
    if not subnet_ids:
        return []
    return list(_client("ec2", region).describe_subnets(SubnetIds=subnet_ids)["Subnets"])


def clear_clients() -> None:
    _client.cache_clear()
