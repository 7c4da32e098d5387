"""Signed approval links: a token that names one approval and one approver, and expires.

A token is `base64url(JSON {a, u, e, n})` + "." + `base64url(HMAC-SHA256(key, first part))`:
`a` the approval id, `u` the approver's name, `e` the expiry (epoch seconds), `n` a random nonce
that makes each link single-use (the decider records it). The task token is never in a link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from autopatch import clock

# Far larger than any token we sign; a longer one is refused before any work is done on it.
MAX_TOKEN_LENGTH = 1024
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


class LinkError(ValueError):
    """A link that decides nothing; `reason` is the code logged and counted."""

    reason = "link_malformed"


class MalformedLink(LinkError):
    reason = "link_malformed"


class BadLinkSignature(LinkError):
    reason = "link_bad_signature"


class ExpiredLink(LinkError):
    reason = "link_expired"


@dataclass(frozen=True)
class LinkClaims:
    approval_id: str
    approver: str
    expires_at: datetime
    nonce: str


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _decode(text: str) -> bytes:
    if not _BASE64URL.match(text):
        raise MalformedLink("the link is malformed")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedLink("the link is malformed") from exc


def _mac(key: str | bytes, payload: str) -> bytes:
    secret = key.encode("utf-8") if isinstance(key, str) else key
    if not secret:
        raise ValueError("the link key is empty")
    return hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()


def sign_link(
    key: str | bytes, approval_id: str, approver: str, expires_at: datetime, *, nonce: str | None = None
) -> str:
    """A token for `approver` to decide `approval_id` until `expires_at`."""
    claims = {
        "a": approval_id,
        "u": approver,
        "e": clock.epoch(expires_at),
        "n": nonce or secrets.token_urlsafe(16),
    }
    payload = _encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{payload}.{_encode(_mac(key, payload))}"


def verify_link(key: str | bytes, token: str, now: datetime) -> LinkClaims:
    """The claims of a token signed with `key` that has not expired at `now`; else a LinkError."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise MalformedLink("the link is malformed")
    payload, signature = token.split(".")
    given = _decode(signature)
    # The signature first: nothing of an unsigned token is read, not even its expiry.
    if not hmac.compare_digest(given, _mac(key, payload)):
        raise BadLinkSignature("the link's signature is not valid")
    try:
        claims = json.loads(_decode(payload))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedLink("the link is malformed") from exc
    if not isinstance(claims, dict):
        raise MalformedLink("the link is malformed")
    approval_id, approver, expiry, nonce = (claims.get(k) for k in ("a", "u", "e", "n"))
    if not all(isinstance(v, str) and v for v in (approval_id, approver, nonce)) or (
        not isinstance(expiry, int) or isinstance(expiry, bool)
    ):
        raise MalformedLink("the link is malformed")
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if now >= expires_at:
        raise ExpiredLink(f"the link expired at {clock.iso(expires_at)}")
    return LinkClaims(str(approval_id), str(approver), expires_at, str(nonce))
