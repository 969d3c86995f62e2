from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atom.governance.maturity import MaturityLevel
from atom.governance.policy import TriggerKind
from atom.training.interceptor import Route
from atom.training.models import ProposalKind, ProposalStatus, SupervisionStatus, TrainingStatus
from atom.training.plan import Plan
from atom.training.supervision import Command


class TriggerRequest(BaseModel):
    agent_id: str = Field(min_length=1, max_length=64)
    plan: Plan
    kind: TriggerKind = TriggerKind.AUTOMATED
    source: str = Field(default="api", pattern=r"^[a-z_]{1,32}$")
    payload: dict[str, Any] = Field(default_factory=dict)
    executor: str = Field(default="plan", max_length=32)


class RoutingRead(BaseModel):
    route: Route
    agent_id: str
    agent_level: MaturityLevel
    reason: str
    blocked_trigger_id: str | None
    proposal_id: str | None
    supervision_session_id: str | None
    run: dict[str, Any] | None
    extra: dict[str, Any]


class ProposalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    kind: ProposalKind
    status: ProposalStatus
    source: str
    plan: list[dict[str, Any]]
    plan_hash: str
    original_plan_hash: str
    modified: bool
    created_at: datetime
    expires_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    decision_reason: str | None
    executed_at: datetime | None
    result: dict[str, Any] | None
    error: str | None
    estimate_hours: float | None
    estimate_low_hours: float | None
    estimate_high_hours: float | None


class ApproveRequest(BaseModel):
    plan_hash: str = Field(
        pattern=r"^[0-9a-fA-F]{64}$",
        description="The hash of the plan the approver saw (`plan_hash` of the proposal); another -> 409.",
    )
    plan: Plan | None = Field(
        default=None, description="A modified plan: it gets its own hash and counts as a correction."
    )
    reason: str | None = Field(default=None, max_length=2000)


class ApprovalRead(BaseModel):
    proposal: ProposalRead
    training_id: str | None


class RejectRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class SupervisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    status: SupervisionStatus
    source: str
    plan: list[dict[str, Any]]
    next_step: int
    steps: list[dict[str, Any]]
    pending_correction: dict[str, Any] | None
    interventions: int
    rating: int | None
    error: str | None
    notified: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class CommandRequest(BaseModel):
    command: Command
    params: dict[str, Any] | None = None


class RatingRequest(BaseModel):
    rating: int = Field(ge=1, le=5)


class TrainingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    proposal_id: str
    category: str
    status: TrainingStatus
    estimate_hours: float
    override_hours: float | None
    scheduled_at: datetime
    completed_at: datetime | None
    duration_hours: float | None
    performance: float | None


class CompleteRequest(BaseModel):
    performance: float = Field(ge=0, le=1)
    duration_hours: float | None = Field(default=None, gt=0, le=10_000)


class OverrideRequest(BaseModel):
    hours: float = Field(gt=0, le=10_000)
