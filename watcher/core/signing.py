"""Signing a webhook the Standard Webhooks way (symmetric scheme, `v1`). Pure.

The specification (standardwebhooks.com, version 1.0.0): the content signed is
`{webhook-id}.{webhook-timestamp}.{body}`, the signature is HMAC-SHA256 keyed with the secret,
base64-encoded and prefixed with `v1,`; the `webhook-signature` header holds one such
signature per secret, separated by spaces, so that a secret can be rotated without a gap
(sign with the new and the old one for a while). A secret is written `whsec_` + the base64 of
24 to 64 random bytes.

    webhook-id         the message's id: the same for every retry of one message
    webhook-timestamp  the attempt's time, whole seconds since the epoch (a retry re-signs)
    webhook-signature  "v1,<base64 HMAC>" for each secret, space-separated
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
SIGNATURE_VERSION = "v1"
MAKE_SECRET = "echo whsec_$(head -c 32 /dev/urandom | base64)"


def parse_secret(text: str) -> bytes:
    """The key bytes of a `whsec_…` secret; ValueError saying what is wrong (never echoing
    the secret). The prefix is required: it tells a signing secret from any other text."""
    text = text.strip()
    if not text.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret starts with {SECRET_PREFIX!r} (then base64)")
    try:
        key = base64.b64decode(text.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX!r} is not valid base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"a signing secret holds {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes "
            f"(this one {len(key)}); make one with: {MAKE_SECRET}"
        )
    return key


def signed_content(msg_id: str, timestamp: int, body: bytes) -> bytes:
    """What is signed: `{msg_id}.{timestamp}.{body}` (the body exactly as sent)."""
    if "." in msg_id:
        raise ValueError("a webhook id must not contain '.' (it delimits the signed content)")
    return f"{msg_id}.{timestamp}.".encode() + body


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of a message with one key."""
    digest = hmac.new(key, signed_content(msg_id, timestamp, body), hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def signature_header(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one signature per key, space-separated, in order."""
    if not keys:
        raise ValueError("at least one signing key is needed")
    return " ".join(signature(key, msg_id, timestamp, body) for key in keys)


def webhook_headers(
    keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt (`timestamp`: Unix seconds)."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, msg_id, timestamp, body),
    }
