"""Feedback rows, A/B tests and the exposures that tie an agent run to the variant it ran."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from atom.db.base import Base, IdMixin, JSONDoc


class TargetType(StrEnum):
    EXECUTION = "execution"  # an agent run (chat turn, execute, automated run)
    MESSAGE = "message"  # one chat message
    WORKFLOW_STEP = "workflow_step"


class FeedbackKind(StrEnum):
    THUMBS = "thumbs"
    RATING = "rating"
    CORRECTION = "correction"
    COMMENT = "comment"


class FeedbackStatus(StrEnum):
    RECORDED = "recorded"  # thumbs, ratings, comments, and corrections applied at once
    PENDING = "pending"  # a correction from someone who is not a trusted reviewer
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Feedback(IdMixin, Base):
    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_target", "target_type", "target_id"),)

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[str] = mapped_column(String(36))
    user_id: Mapped[str | None] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    thumbs: Mapped[int | None] = mapped_column(Integer)  # +1 or -1
    rating: Mapped[int | None] = mapped_column(Integer)  # 1..5
    original: Mapped[str | None] = mapped_column(Text)
    corrected: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    trusted: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(String(16), index=True)
    confidence_delta: Mapped[float] = mapped_column(Float, default=0.0)
    reviewed_by: Mapped[str | None] = mapped_column(String(36))
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(index=True)


class ABTestStatus(StrEnum):
    RUNNING = "running"
    STOPPED = "stopped"


class ABTest(IdMixin, Base):
    """Two variants of one agent: A is the agent as configured, B overrides part of its configuration."""

    __tablename__ = "ab_tests"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    variant_a: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    variant_b: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
    traffic_share: Mapped[float] = mapped_column(Float)  # share of subjects that get B
    metric: Mapped[str] = mapped_column(String(16))
    min_sample: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column()
    stopped_at: Mapped[datetime | None] = mapped_column()


class ABExposure(IdMixin, Base):
    """An agent run that ran under a test's variant."""

    __tablename__ = "ab_exposures"

    test_id: Mapped[str] = mapped_column(ForeignKey("ab_tests.id", ondelete="CASCADE"), index=True)
    variant: Mapped[str] = mapped_column(String(1))  # A | B
    execution_id: Mapped[str] = mapped_column(String(36), unique=True)
    subject: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column()
