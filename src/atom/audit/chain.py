"""The hash that links audit rows: SHA-256 over the previous hash and the row's canonical content."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

HASHED_FIELDS = (
    "id",
    "seq",
    "created_at",
    "actor_type",
    "actor_id",
    "action",
    "resource_type",
    "resource_id",
    "decision",
    "reason",
    "request_id",
    "details",
)


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not serializable in an audit record: {type(value).__name__}")


def canonical(content: dict[str, Any]) -> str:
    return json.dumps(
        {name: content.get(name) for name in HASHED_FIELDS},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_default,
    )


def link_hash(prev_hash: str, content: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical(content)).encode()).hexdigest()
