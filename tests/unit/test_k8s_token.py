"""The EKS bearer token: the shape aws-iam-authenticator accepts, signed for one cluster only."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
from autopatch.clients.k8s_token import get_token

from rehearsal.kube.server import TokenRejected, verify_token

KEY_ID, SECRET = "AKIAAUTOPATCHLAMBDA0", "lambda-secret"


def session(region: str | None = "eu-west-1", token: str | None = None) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, aws_session_token=token, region_name=region
    )


def presigned_url(token: str) -> str:
    encoded = token.removeprefix("k8s-aws-v1.")
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()


def test_token_is_a_prefixed_unpadded_base64url_presigned_sts_url() -> None:
    token = get_token("prod-eu", session=session())

    assert token.startswith("k8s-aws-v1.")
    assert "=" not in token and "+" not in token and "/" not in token
    url = urlsplit(presigned_url(token))
    assert (url.scheme, url.netloc, url.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")
    params = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert params["Action"] == "GetCallerIdentity"
    assert params["Version"] == "2011-06-15"
    assert params["X-Amz-Expires"] == "60"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert params["X-Amz-Credential"].startswith(f"{KEY_ID}/")
    assert params["X-Amz-Credential"].endswith("/eu-west-1/sts/aws4_request")
    assert "x-k8s-aws-id" in params["X-Amz-SignedHeaders"].split(";")
    assert "x-k8s-aws-id" not in params  # a header, not a query parameter


def test_region_can_be_passed_when_the_session_has_none() -> None:
    token = get_token("prod-us", session=session(region=None), region="us-east-2")

    assert urlsplit(presigned_url(token)).netloc == "sts.us-east-2.amazonaws.com"
    with pytest.raises(ValueError, match="region"):
        get_token("prod-us", session=session(region=None))


def test_temporary_credentials_carry_their_session_token() -> None:
    token = get_token("prod-eu", session=session(token="FwoGZXIvYXdzEXAMPLE"))

    assert parse_qs(urlsplit(presigned_url(token)).query)["X-Amz-Security-Token"] == ["FwoGZXIvYXdzEXAMPLE"]


def test_signature_covers_the_cluster_name() -> None:
    token = get_token("prod-eu", session=session())
    credentials = {KEY_ID: SECRET}

    assert verify_token(f"Bearer {token}", cluster_name="prod-eu", credentials=credentials) == KEY_ID
    with pytest.raises(TokenRejected, match="not signed for cluster staging"):
        verify_token(f"Bearer {token}", cluster_name="staging", credentials=credentials)


def test_token_expires_fifteen_minutes_after_signing_whatever_the_url_expiry_says() -> None:
    token = get_token("prod-eu", session=session())
    credentials = {KEY_ID: SECRET}
    in_14_minutes = datetime.now(UTC) + timedelta(minutes=14)
    in_16_minutes = datetime.now(UTC) + timedelta(minutes=16)

    assert verify_token(f"Bearer {token}", cluster_name="prod-eu", credentials=credentials, now=in_14_minutes)
    with pytest.raises(TokenRejected, match="15 minute expiration"):
        verify_token(f"Bearer {token}", cluster_name="prod-eu", credentials=credentials, now=in_16_minutes)
