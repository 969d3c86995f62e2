"""HMAC-SHA256 webhook signatures, shared by the /hooks receiver and the webhook_call action.

`X-Atom-Timestamp: <unix seconds>` and `X-Atom-Signature: sha256=<hex>` where the hex digest is
HMAC-SHA256(secret, "<timestamp>." + raw body). Signing the timestamp with the body lets the
receiver refuse old or replayed deliveries.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Atom-Timestamp"
SIGNATURE_HEADER = "X-Atom-Signature"
PREFIX = "sha256="


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature.strip())


def headers(secret: str, timestamp: str, body: bytes) -> dict[str, str]:
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}
