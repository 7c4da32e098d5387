"""Signed approval links: what a token names, and every way a token is refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from autopatch.links import (
    BadLinkSignature,
    ExpiredLink,
    LinkClaims,
    MalformedLink,
    sign_link,
    verify_link,
)

KEY = "k3y-generated-by-secrets-manager-for-the-test"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EXPIRES = NOW + timedelta(hours=24)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_signed_link_names_the_approval_the_approver_the_expiry_and_a_nonce() -> None:
    token = sign_link(KEY, "apr-123", "alice", EXPIRES, nonce="n-1")

    assert verify_link(KEY, token, NOW) == LinkClaims("apr-123", "alice", EXPIRES, "n-1")


def test_the_token_carries_only_the_four_claims_and_never_a_task_token() -> None:
    token = sign_link(KEY, "apr-123", "alice", EXPIRES)
    payload = token.split(".")[0]

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))

    assert set(claims) == {"a", "u", "e", "n"}
    assert claims["e"] == int(EXPIRES.timestamp())


def test_each_link_gets_its_own_nonce() -> None:
    first = verify_link(KEY, sign_link(KEY, "apr-123", "alice", EXPIRES), NOW)
    second = verify_link(KEY, sign_link(KEY, "apr-123", "alice", EXPIRES), NOW)

    assert first.nonce != second.nonce
    assert len(first.nonce) >= 16


def test_a_link_signed_with_another_key_is_refused() -> None:
    token = sign_link("another-key", "apr-123", "alice", EXPIRES)

    with pytest.raises(BadLinkSignature, match="signature is not valid"):
        verify_link(KEY, token, NOW)


def test_a_link_whose_claims_were_edited_is_refused() -> None:
    # Given alice's link, when someone swaps in bob (and another approval), keeping the signature
    token = sign_link(KEY, "apr-123", "alice", EXPIRES, nonce="n-1")
    forged = {"a": "apr-999", "u": "bob", "e": int(EXPIRES.timestamp()), "n": "n-1"}
    tampered = (
        b64(json.dumps(forged, separators=(",", ":"), sort_keys=True).encode()) + "." + token.split(".")[1]
    )

    with pytest.raises(BadLinkSignature) as refused:
        verify_link(KEY, tampered, NOW)
    assert refused.value.reason == "link_bad_signature"


def test_an_expired_link_is_refused_and_says_when_it_expired() -> None:
    token = sign_link(KEY, "apr-123", "alice", EXPIRES)

    assert verify_link(KEY, token, EXPIRES - timedelta(seconds=1)).approval_id == "apr-123"
    with pytest.raises(ExpiredLink, match="expired at 2026-03-03T09:00:00Z") as refused:
        verify_link(KEY, token, EXPIRES)
    assert refused.value.reason == "link_expired"


def test_an_expired_link_with_a_bad_signature_is_refused_for_its_signature() -> None:
    token = sign_link("another-key", "apr-123", "alice", NOW - timedelta(hours=1))

    with pytest.raises(BadLinkSignature):
        verify_link(KEY, token, NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "no-dot-at-all",
        "a.b.c",
        "payload.!!not-base64!!",
        "x" * 2000 + "." + "y",
    ],
)
def test_malformed_tokens_are_refused_as_malformed(token: str) -> None:
    with pytest.raises(MalformedLink, match="malformed") as refused:
        verify_link(KEY, token, NOW)
    assert refused.value.reason == "link_malformed"


@pytest.mark.parametrize(
    "claims",
    [
        {"a": "apr-1", "u": "alice", "e": "tomorrow", "n": "n"},
        {"a": "apr-1", "u": "", "e": 1900000000, "n": "n"},
        {"a": "apr-1", "u": "alice", "e": True, "n": "n"},
        {"a": "apr-1", "u": "alice", "e": 1900000000},
        ["apr-1", "alice"],
    ],
)
def test_a_correctly_signed_token_with_bad_claims_is_malformed(claims: object) -> None:
    import hashlib
    import hmac

    payload = b64(json.dumps(claims).encode())
    signature = b64(hmac.new(KEY.encode(), payload.encode(), hashlib.sha256).digest())

    with pytest.raises(MalformedLink):
        verify_link(KEY, f"{payload}.{signature}", NOW)


def test_an_empty_key_signs_nothing() -> None:
    with pytest.raises(ValueError, match="empty"):
        sign_link("", "apr-1", "alice", EXPIRES)
