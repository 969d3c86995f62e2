"""Episodic memory's hot store: episodes, their segments, access logs, ingestion cursors and jobs.

Vectors live in LanceDB (`memory/vectors.py`), keyed by episode id and tagged with their model id.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from atom.db.base import Base, IdMixin, JSONDoc, TimestampMixin, utcnow


class EpisodeStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"
    CONSOLIDATED = "consolidated"


class Episode(IdMixin, TimestampMixin, Base):
    """One coherent stretch of an agent's work (RULES.md segmentation)."""

    __tablename__ = "memory_episodes"
    __table_args__ = (Index("ix_memory_episodes_agent_ended", "agent_id", "ended_at"),)

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(String(36), index=True)  # the person in a chat episode
    title: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text, default="")  # what is embedded and searched
    source: Mapped[str] = mapped_column(String(32))  # execution | workflow | proposal | supervision | manual
    status: Mapped[str] = mapped_column(String(16), default=EpisodeStatus.ACTIVE.value, index=True)
    closed: Mapped[bool] = mapped_column(default=False)  # a completed task closes its episode
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime] = mapped_column()
    segment_count: Mapped[int] = mapped_column(Integer, default=0)
    decay: Mapped[float] = mapped_column(Float, default=1.0)
    model_id: Mapped[str | None] = mapped_column(String(200))  # the model of its vector; None: not embedded yet
    # The last message's embedding (topic check). Not loaded unless asked for (`undefer`): only segmentation
    # reads it, and decoding 384 numbers per row would dominate every read of many episodes.
    last_vector: Mapped[list[float] | None] = mapped_column(JSONDoc, deferred=True, deferred_raiseload=True)
    consolidated_into: Mapped[str | None] = mapped_column(String(36))


class EpisodeSegment(IdMixin, Base):
    """One event of an episode: a message, a tool call, a workflow step, a proposal or its decision..."""

    __tablename__ = "memory_segments"

    episode_id: Mapped[str] = mapped_column(ForeignKey("memory_episodes.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    source_id: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(32), default="")
    content: Mapped[str] = mapped_column(Text, default="")
    occurred_at: Mapped[datetime] = mapped_column()
    seq: Mapped[int] = mapped_column(Integer, default=0)


class EpisodeAccessLog(IdMixin, Base):
    """Every read of memory: who, which mode, which episodes (with their scores), why."""

    __tablename__ = "memory_access_logs"

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(80))  # user:<id> | agent:<id> | system
    agent_id: Mapped[str | None] = mapped_column(String(36), index=True)
    mode: Mapped[str] = mapped_column(String(16))
    query: Mapped[str] = mapped_column(Text, default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    episode_ids: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    scores: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)


class MemoryCursor(Base):
    """How far ingestion has read one source (the last id seen)."""

    __tablename__ = "memory_cursors"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class MemoryJob(IdMixin, TimestampMixin, Base):
    """A maintenance or re-embedding run with its progress and report."""

    __tablename__ = "memory_jobs"

    kind: Mapped[str] = mapped_column(String(16))  # maintain | reembed
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    dry_run: Mapped[bool] = mapped_column(default=False)
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    report: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(36))
    finished_at: Mapped[datetime | None] = mapped_column()
