"""Workflows, their immutable versions and triggers, durable runs and step runs, and trigger fires."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atom.db.base import Base, IdMixin, JSONDoc, TimestampMixin


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self is not RunStatus.RUNNING


class StepStatus(StrEnum):
    PENDING = "pending"  # waiting for the steps it needs
    QUEUED = "queued"  # handed to a worker (or waiting for its retry time)
    RUNNING = "running"  # claimed by a worker, lease until lease_expires_at
    WAITING = "waiting"  # approval or wait step
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # condition false, or an unused failure handler
    CANCELLED = "cancelled"  # the run failed or was cancelled before the step ran

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED}
ACTIVE_STEP_STATUSES = (
    StepStatus.PENDING.value,
    StepStatus.QUEUED.value,
    StepStatus.RUNNING.value,
    StepStatus.WAITING.value,
)


class TriggerKindName(StrEnum):
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    EVENT = "event"


class Workflow(IdMixin, TimestampMixin, Base):
    __tablename__ = "workflows"

    name: Mapped[str] = mapped_column(String(63), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(String(36))


class WorkflowVersion(IdMixin, Base):
    """Immutable: an update adds a version; runs reference the version they started with."""

    __tablename__ = "workflow_versions"
    __table_args__ = (UniqueConstraint("workflow_id", "version"),)

    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    definition: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    source: Mapped[str] = mapped_column(Text)
    source_format: Mapped[str] = mapped_column(String(8))
    definition_hash: Mapped[str] = mapped_column(String(64))
    # agent ids resolved when the version was created: "" -> the workflow's agent, step id -> the step's agent
    agent_ids: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    created_at: Mapped[datetime] = mapped_column()
    created_by: Mapped[str | None] = mapped_column(String(36))


class WorkflowTrigger(IdMixin, Base):
    __tablename__ = "workflow_triggers"
    __table_args__ = (UniqueConstraint("workflow_id", "trigger_key"),)

    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    trigger_key: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    event_topic: Mapped[str | None] = mapped_column(String(100), index=True)
    next_fire_at: Mapped[datetime | None] = mapped_column(index=True)
    last_fired_at: Mapped[datetime | None] = mapped_column()


class TriggerFire(IdMixin, Base):
    """One row per fire (cron time, webhook signature, event id): the unique key makes every fire happen once."""

    __tablename__ = "workflow_trigger_fires"
    __table_args__ = (UniqueConstraint("trigger_id", "fire_key"),)

    trigger_id: Mapped[str] = mapped_column(ForeignKey("workflow_triggers.id", ondelete="CASCADE"), index=True)
    fire_key: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(16))  # run | proposal | training | supervised | refused | skipped
    run_id: Mapped[str | None] = mapped_column(String(36))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)


class WorkflowRun(IdMixin, Base):
    __tablename__ = "workflow_runs"

    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    agent_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16), index=True)
    mode: Mapped[str] = mapped_column(String(16), default="pool")  # pool | inline (supervised)
    trigger_kind: Mapped[str] = mapped_column(String(16))  # manual | automated
    source: Mapped[str] = mapped_column(String(32))  # manual | schedule | webhook | event | proposal | supervision
    trigger_id: Mapped[str | None] = mapped_column(String(36))
    trigger_payload: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    proposal_id: Mapped[str | None] = mapped_column(String(36))
    supervision_session_id: Mapped[str | None] = mapped_column(String(36))
    actor_user_id: Mapped[str | None] = mapped_column(String(36))
    chain_depth: Mapped[int] = mapped_column(Integer, default=0)
    lock_version: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class StepRun(IdMixin, Base):
    __tablename__ = "workflow_step_runs"
    __table_args__ = (
        UniqueConstraint("run_id", "step_key"),
        Index("ix_workflow_step_runs_status_due_at", "status", "due_at"),
    )

    run_id: Mapped[str] = mapped_column(ForeignKey("workflow_runs.id", ondelete="CASCADE"), index=True)
    step_key: Mapped[str] = mapped_column(String(63))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # action | approval | wait
    action: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    dispatches: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    input: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    logs: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    agent_id: Mapped[str | None] = mapped_column(String(36))
    worker: Mapped[str | None] = mapped_column(String(100))
    proposal_id: Mapped[str | None] = mapped_column(String(36))
    queued_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    lease_expires_at: Mapped[datetime | None] = mapped_column()
