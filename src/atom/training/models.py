"""Blocked triggers, proposals, supervision sessions and training sessions (RULES.md, Trigger interceptor)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atom.db.base import Base, IdMixin, JSONDoc


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    EXECUTED = "executed"
    EXECUTION_FAILED = "execution_failed"


class ProposalKind(StrEnum):
    ACTION = "action"
    TRAINING = "training"


class SupervisionStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    TERMINATED = "terminated"

    @property
    def finished(self) -> bool:
        return self in (SupervisionStatus.COMPLETED, SupervisionStatus.FAILED, SupervisionStatus.TERMINATED)


class TrainingStatus(StrEnum):
    SCHEDULED = "scheduled"
    RUNNING = "running"  # its category's scenarios are being run (docs/training.md)
    COMPLETED = "completed"


class BlockedTriggerContext(IdMixin, Base):
    """An automated trigger that did not run as asked, and where it was routed instead."""

    __tablename__ = "blocked_triggers"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(32))
    agent_level: Mapped[str] = mapped_column(String(16))
    routed_to: Mapped[str] = mapped_column(String(16))  # training | proposal | refused
    reason: Mapped[str] = mapped_column(Text)
    trigger_payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    plan: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    created_at: Mapped[datetime] = mapped_column()


class AgentProposal(IdMixin, Base):
    __tablename__ = "agent_proposals"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20), index=True)
    source: Mapped[str] = mapped_column(String(32))
    blocked_trigger_id: Mapped[str | None] = mapped_column(ForeignKey("blocked_triggers.id", ondelete="SET NULL"))
    plan: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    plan_hash: Mapped[str] = mapped_column(String(64))
    original_plan_hash: Mapped[str] = mapped_column(String(64))
    modified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(36))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    executed_at: Mapped[datetime | None] = mapped_column()
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    error: Mapped[str | None] = mapped_column(Text)
    estimate_hours: Mapped[float | None] = mapped_column(Float)
    estimate_low_hours: Mapped[float | None] = mapped_column(Float)
    estimate_high_hours: Mapped[float | None] = mapped_column(Float)


class SupervisionSession(IdMixin, Base):
    __tablename__ = "supervision_sessions"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    source: Mapped[str] = mapped_column(String(32))
    plan: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    next_step: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    pending_correction: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    interventions: Mapped[int] = mapped_column(Integer, default=0)
    supervisor_id: Mapped[str | None] = mapped_column(String(36))
    rating: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    notified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class TrainingSession(IdMixin, Base):
    __tablename__ = "training_sessions"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    proposal_id: Mapped[str] = mapped_column(ForeignKey("agent_proposals.id", ondelete="CASCADE"), unique=True)
    category: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    estimate_hours: Mapped[float] = mapped_column(Float)
    override_hours: Mapped[float | None] = mapped_column(Float)
    scheduled_at: Mapped[datetime] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    duration_hours: Mapped[float | None] = mapped_column(Float)
    performance: Mapped[float | None] = mapped_column(Float)
    # A scenario run (docs/training.md): its progress and results; who gave the score (scenarios | person).
    scored_by: Mapped[str | None] = mapped_column(String(16))
    scenario_performance: Mapped[float | None] = mapped_column(Float)
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    current_scenario: Mapped[str | None] = mapped_column(String(80))
    results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc)
    run_error: Mapped[str | None] = mapped_column(Text)
    run_started_at: Mapped[datetime | None] = mapped_column()
    run_heartbeat_at: Mapped[datetime | None] = mapped_column()


class TrainingScenario(IdMixin, Base):
    """One version of a training scenario: a task, the tools offered, and how its outcome is scored."""

    __tablename__ = "training_scenarios"
    __table_args__ = (UniqueConstraint("name", "version"),)

    name: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(100), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    task: Mapped[str] = mapped_column(Text)
    tools: Mapped[list[str]] = mapped_column(JSONDoc)
    expect: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column()
    retired_at: Mapped[datetime | None] = mapped_column()
