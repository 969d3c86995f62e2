"""Canvas and custom component shapes on the wire, with their bounds."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from atom.canvas.components import MAX_CSS, MAX_HTML, MAX_JS, NAME_PATTERN
from atom.canvas.models import CanvasKind, CoordinationMode, ParticipantRole

AgentId = Annotated[str, Field(min_length=1, max_length=36)]


class ParticipantIn(BaseModel):
    agent_id: AgentId
    role: ParticipantRole = ParticipantRole.CONTRIBUTOR


class CanvasCreate(BaseModel):
    """A canvas a person sets up (agents present theirs with tools); agents join as participants."""

    kind: CanvasKind = Field(description="component canvases are presented by agents only")
    title: Annotated[str, Field(max_length=200)] = ""
    content: dict[str, Any]
    mode: CoordinationMode = CoordinationMode.PARALLEL
    participants: list[ParticipantIn] = Field(default_factory=list, max_length=20)
    session_id: Annotated[str | None, Field(max_length=36)] = None


class CanvasEdit(BaseModel):
    op: Literal["replace", "merge", "append"]
    content: dict[str, Any]
    expected_version: int | None = Field(default=None, ge=1, description="Required for replace and merge.")
    title: Annotated[str | None, Field(max_length=200)] = None


class SubmitRequest(BaseModel):
    values: dict[str, Any]


class LockRequest(BaseModel):
    acquire: bool = True


class ModeRequest(BaseModel):
    mode: CoordinationMode


class ParticipantRequest(BaseModel):
    role: ParticipantRole | None = Field(description="null removes the agent from the canvas")


class ParticipantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    agent_id: str
    role: str
    position: int


class CanvasRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    title: str
    status: str
    version: int
    mode: str
    content: dict[str, Any]
    lock_holder: str | None
    lock_expires_at: datetime | None
    turn_agent_id: str | None
    owner_agent_id: str | None
    session_id: str | None
    workflow_run_id: str | None
    submission: dict[str, Any] | None
    submitted_by: str | None
    submitted_at: datetime | None
    reviews: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime


class CanvasDetail(CanvasRead):
    participants: list[ParticipantRead]
    rendered: dict[str, Any] = Field(description="Chart geometry, sheet values, code tokens or form fields.")


class CanvasAuditRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    canvas_id: str
    action: str
    actor: str
    agent_id: str | None
    user_id: str | None
    version: int
    outcome: str
    details: dict[str, Any]
    created_at: datetime


class ComponentCreate(BaseModel):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: Annotated[str, Field(max_length=2000)] = ""
    html: Annotated[str, Field(max_length=MAX_HTML)]
    css: Annotated[str, Field(max_length=MAX_CSS)] = ""
    js: Annotated[str | None, Field(max_length=MAX_JS)] = None


class ComponentVersionCreate(BaseModel):
    html: Annotated[str, Field(max_length=MAX_HTML)]
    css: Annotated[str, Field(max_length=MAX_CSS)] = ""
    js: Annotated[str | None, Field(max_length=MAX_JS)] = None


class ComponentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    current_version: int
    usage_count: int
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class ComponentVersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    component_id: str
    version: int
    html: str
    css: str
    js: str | None
    status: str
    usage_count: int
    sanitized_changes: bool
    created_by: str | None
    approved_by: str | None
    approved_at: datetime | None
    created_at: datetime


class ComponentDetail(ComponentRead):
    versions: list[ComponentVersionRead]


class ApprovalRequest(BaseModel):
    decision: Literal["approve", "reject"]
    reason: Annotated[str, Field(max_length=2000)] = ""


class RollbackRequest(BaseModel):
    version: int = Field(ge=1)
