from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class CheckpointRead(BaseModel):
    seq: int
    hash: str
    created_at: str
    line: int = Field(description="The checkpoint's line in the checkpoint file.")
    database: str | None = Field(default=None, description="Fingerprint of the database it belongs to.")
    mac: str | None = Field(default=None, description="Its HMAC-SHA256 signature (in exports).")


class ChainVerification(BaseModel):
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    first_broken_id: str | None = None
    problem: str | None = None
    head_seq: int = Field(default=0, description="The last verified row (0: the chain is empty or broken).")
    head_hash: str | None = None
    checkpoints_checked: int = Field(default=0, description="Signed checkpoints the chain was held against.")
    broken_checkpoint: CheckpointRead | None = Field(
        default=None, description="The checkpoint a rewrite of the chain contradicts."
    )


class CheckpointWritten(BaseModel):
    seq: int
    hash: str
    created_at: str
    file: str
