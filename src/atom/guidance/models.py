"""Guidance rows: agent-run operations (live progress), resolution outcomes, agent requests, view layouts.

Workflow runs have no row here: their progress is read from the run and its steps (workflow_progress.py).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atom.db.base import Base, IdMixin, JSONDoc


class OperationKind(StrEnum):
    AGENT_RUN = "agent_run"
    WORKFLOW_RUN = "workflow_run"  # read from the workflow tables, never stored here


class Operation(IdMixin, Base):
    """The progress of one agent run, written as the run goes (the latest snapshot wins: `seq`)."""

    __tablename__ = "guidance_operations"
    __table_args__ = (UniqueConstraint("kind", "subject_id"),)

    kind: Mapped[str] = mapped_column(String(16))
    subject_id: Mapped[str] = mapped_column(String(36))  # the agent execution
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str | None] = mapped_column(String(36), index=True)
    private: Mapped[bool] = mapped_column(Boolean)  # a chat session's run: its author and admins only
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    step: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    bounded: Mapped[bool] = mapped_column(Boolean)  # total is an upper bound ("of at most m")
    percent: Mapped[int] = mapped_column(Integer)
    what: Mapped[str] = mapped_column(Text)
    why: Mapped[str] = mapped_column(Text)
    next: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    seq: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class ResolutionOutcome(IdMixin, Base):
    """A person's word on whether a resolution fixed one error (one per error and resolution)."""

    __tablename__ = "guidance_resolution_outcomes"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id", "resolution_id", name="uq_guidance_outcomes_subject"),
    )

    category: Mapped[str] = mapped_column(String(32), index=True)
    resolution_id: Mapped[str] = mapped_column(String(64))
    worked: Mapped[bool] = mapped_column(Boolean)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[str] = mapped_column(String(36))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()


class RequestKind(StrEnum):
    DECISION = "decision"
    PERMISSION = "permission"


class RequestStatus(StrEnum):
    PENDING = "pending"
    ANSWERED = "answered"
    TIMED_OUT = "timed_out"  # nobody answered in time: the default applies
    CANCELLED = "cancelled"  # the asking run ended before an answer


class AgentRequest(IdMixin, Base):
    """An agent asking a person for a decision or a permission, with options, a timeout and a default."""

    __tablename__ = "guidance_agent_requests"

    kind: Mapped[str] = mapped_column(String(16))
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    execution_id: Mapped[str | None] = mapped_column(String(36), index=True)
    question: Mapped[str] = mapped_column(Text)
    context: Mapped[str | None] = mapped_column(Text)
    options: Mapped[list[str]] = mapped_column(JSONDoc)
    default_option: Mapped[str] = mapped_column(String(100))
    timeout_s: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    answer: Mapped[str | None] = mapped_column(String(100))
    answered_by: Mapped[str | None] = mapped_column(String(36))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    answered_at: Mapped[datetime | None] = mapped_column()


class ViewLayout(IdMixin, Base):
    """How a person arranged a page's views (side by side, stacked), remembered on the server."""

    __tablename__ = "guidance_view_layouts"
    __table_args__ = (UniqueConstraint("user_id", "view"),)

    user_id: Mapped[str] = mapped_column(String(36))
    view: Mapped[str] = mapped_column(String(32))
    layout: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column()
