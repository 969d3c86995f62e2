from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seq: int
    created_at: datetime
    actor_type: str
    actor_id: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    decision: str | None
    reason: str | None
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


class ChainVerification(BaseModel):
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    first_broken_id: str | None = None
    problem: str | None = None
