"""Chat and execution request/response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atom.governance.policy import TriggerKind

MAX_INPUT = 100_000


class SessionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=100, description="Agent id or name.")
    title: str = Field(default="", max_length=200)


class SessionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    user_id: str | None
    title: str
    created_at: datetime
    updated_at: datetime


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    session_id: str
    execution_id: str | None
    role: str
    content: str
    tool_calls: list[dict[str, Any]]
    tool_call_id: str | None
    created_at: datetime


class SessionDetail(SessionRead):
    messages: list[MessageRead]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(min_length=1, max_length=MAX_INPUT)
    model: str | None = Field(
        default=None, max_length=200, description="Explicit model (else the agent's, else routed)."
    )
    stream: bool = Field(default=True, description="Answer as server-sent events (else one JSON body at the end).")


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=100, description="Agent id or name.")
    task: str = Field(min_length=1, max_length=MAX_INPUT)
    model: str | None = Field(default=None, max_length=200)
    trigger: TriggerKind = Field(
        default=TriggerKind.MANUAL,
        description=(
            "`manual` (a person asked): per-action governance only. `automated` (a schedule or system): routed "
            "by the agent's maturity (docs/chat.md); a run routed to training or supervision answers 202."
        ),
    )
    stream: bool = Field(default=False, description="Answer as server-sent events instead of one JSON body.")


class ExecutionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    session_id: str | None
    parent_execution_id: str | None
    user_id: str | None
    status: str
    trigger: str
    trigger_kind: str
    depth: int
    input: str
    output: str
    error: str | None
    error_code: str | None
    provider: str | None
    model: str | None
    streamed: bool
    steps: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    duration_ms: float | None
    tool_calls: list[dict[str, Any]]
    started_at: datetime
    finished_at: datetime | None


class RoutedRead(BaseModel):
    """An automated run the trigger interceptor routed elsewhere (HTTP 202): it did not run here."""

    route: str = Field(description="`training` (STUDENT), `supervised` (SUPERVISED) or `refused` (agent not active).")
    code: str = Field(description="`ROUTED_TO_TRAINING`, `ROUTED_TO_SUPERVISION` or `TRIGGER_REFUSED`.")
    message: str
    agent_id: str
    agent_level: str
    reason: str
    blocked_trigger_id: str | None = None
    proposal_id: str | None = Field(default=None, description="The training proposal (STUDENT).")
    supervision_session_id: str | None = None
    supervision_status: str | None = Field(default=None, description="`queued` until a supervisor connects.")
    estimate_hours: float | None = Field(default=None, description="Training estimate (STUDENT).")


class CancelRead(BaseModel):
    execution_id: str
    cancelled: bool
    status: str
