"""Canvases (persisted documents an agent presents), their participants, their audit rows, and custom
components with their versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atom.db.base import Base, IdMixin, JSONDoc


class CanvasKind(StrEnum):
    MARKDOWN = "markdown"
    CHART = "chart"
    SHEET = "sheet"
    FORM = "form"
    STATUS = "status"
    EMAIL = "email"
    TERMINAL = "terminal"
    CODE = "code"
    COMPONENT = "component"


class CanvasStatus(StrEnum):
    OPEN = "open"
    SUBMITTED = "submitted"  # a form whose submission was accepted
    CLOSED = "closed"


class CoordinationMode(StrEnum):
    PARALLEL = "parallel"  # any editor at any time; stale versions are refused
    SEQUENTIAL = "sequential"  # editors take turns in their order
    LOCKED = "locked"  # only the holder of the lock edits


class ParticipantRole(StrEnum):
    OWNER = "owner"
    CONTRIBUTOR = "contributor"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


class Canvas(IdMixin, Base):
    __tablename__ = "canvases"

    kind: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    version: Mapped[int] = mapped_column(Integer, default=1)
    mode: Mapped[str] = mapped_column(String(16), default=CoordinationMode.PARALLEL.value)
    lock_holder: Mapped[str | None] = mapped_column(String(80))  # agent:<id> | user:<id>
    lock_expires_at: Mapped[datetime | None] = mapped_column()
    turn_agent_id: Mapped[str | None] = mapped_column(String(36))
    owner_agent_id: Mapped[str | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"), index=True)
    session_id: Mapped[str | None] = mapped_column(ForeignKey("chat_sessions.id", ondelete="SET NULL"), index=True)
    # A canvas opened in a chat session is as private as the session: only its user (and admins) see it.
    audience_user_id: Mapped[str | None] = mapped_column(String(36), index=True)
    execution_id: Mapped[str | None] = mapped_column(String(36))
    workflow_run_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_by_user: Mapped[str | None] = mapped_column(String(36))
    component_version_id: Mapped[str | None] = mapped_column(String(36))
    submission: Mapped[dict[str, Any] | None] = mapped_column(JSONDoc)
    submitted_by: Mapped[str | None] = mapped_column(String(80))
    submitted_at: Mapped[datetime | None] = mapped_column()
    reviews: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class CanvasParticipant(Base):
    __tablename__ = "canvas_participants"

    canvas_id: Mapped[str] = mapped_column(ForeignKey("canvases.id", ondelete="CASCADE"), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    position: Mapped[int] = mapped_column(Integer, default=0)  # the order of turns in sequential mode
    added_at: Mapped[datetime] = mapped_column()


class CanvasAudit(IdMixin, Base):
    """One row for every action on a canvas: who (agent or person), what, at which version."""

    __tablename__ = "canvas_audit"
    __table_args__ = (Index("ix_canvas_audit_canvas_created", "canvas_id", "created_at"),)

    canvas_id: Mapped[str] = mapped_column(ForeignKey("canvases.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(80))  # agent:<id> | user:<id>
    agent_id: Mapped[str | None] = mapped_column(String(36), index=True)
    user_id: Mapped[str | None] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # ok | refused
    details: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    created_at: Mapped[datetime] = mapped_column()


class ComponentVersionStatus(StrEnum):
    ACTIVE = "active"  # usable
    PENDING_APPROVAL = "pending_approval"  # has JavaScript: an approver must sign it off
    REJECTED = "rejected"


class CanvasComponent(IdMixin, Base):
    __tablename__ = "canvas_components"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column()


class CanvasComponentVersion(IdMixin, Base):
    __tablename__ = "canvas_component_versions"
    __table_args__ = (UniqueConstraint("component_id", "version"),)

    component_id: Mapped[str] = mapped_column(ForeignKey("canvas_components.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    html: Mapped[str] = mapped_column(Text)  # sanitized
    css: Mapped[str] = mapped_column(Text, default="")
    js: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    sanitized_changes: Mapped[bool] = mapped_column(default=False)  # the sanitizer removed something
    created_by: Mapped[str | None] = mapped_column(String(36))
    approved_by: Mapped[str | None] = mapped_column(String(36))
    approved_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column()
