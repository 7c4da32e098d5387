"""Bearer tokens for the Kubernetes API of an EKS cluster, without kubectl or the AWS CLI.

A token is a presigned STS GetCallerIdentity URL: the API server's authenticator calls it to learn
who we are. The cluster name travels in the signed `x-k8s-aws-id` header, so a token made for one
cluster is useless against another. This follows aws-cli's `awscli/customizations/eks/get_token.py`.
"""

from __future__ import annotations

import base64
from typing import Any

import boto3

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# STS ignores the expiry of the URL (tokens live 15 minutes from X-Amz-Date); 60 s is what the CLI sends.
PRESIGNED_URL_EXPIRES_SECONDS = 60


def get_token(
    cluster_name: str, *, session: boto3.session.Session | None = None, region: str | None = None
) -> str:
    """A `k8s-aws-v1.` token for `cluster_name`, signed with the session's credentials."""
    session = session or boto3.session.Session()
    region = region or session.region_name
    if not region:
        raise ValueError("no AWS region: pass region= or configure one for the session")
    sts = session.client("sts", region_name=region, endpoint_url=_regional_sts_endpoint(region))
    # GetCallerIdentity has no parameter for the header: carry it from the params to the request
    # through the request context, so it is added before signing and therefore signed.
    sts.meta.events.register("provide-client-params.sts.GetCallerIdentity", _take_cluster_id_param)
    sts.meta.events.register("before-sign.sts.GetCallerIdentity", _add_cluster_id_header)
    url: str = sts.generate_presigned_url(
        "get_caller_identity",
        Params={CLUSTER_ID_HEADER: cluster_name},
        ExpiresIn=PRESIGNED_URL_EXPIRES_SECONDS,
        HttpMethod="GET",
    )
    encoded = base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")
    return TOKEN_PREFIX + encoded


def _regional_sts_endpoint(region: str) -> str:
    # The global endpoint only exists in us-east-1; a regional one keeps the call inside the region.
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sts.{region}.{suffix}"


def _take_cluster_id_param(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _add_cluster_id_header(request: Any, **_: Any) -> None:
    if CLUSTER_ID_HEADER in request.context:
        request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]
