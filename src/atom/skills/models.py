"""The skills registry: one row per skill name, one per version (pinned by content hash)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from atom.db.base import Base, IdMixin, JSONDoc, TimestampMixin, utcnow


class SkillState(StrEnum):
    UNTRUSTED = "untrusted"
    ACTIVE = "active"
    BANNED = "banned"


class SkillKind(StrEnum):
    PROMPT = "prompt"  # instructions the agent loads
    CODE = "code"  # bundled scripts the agent runs in the sandbox


class Skill(IdMixin, TimestampMixin, Base):
    __tablename__ = "skills"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    state: Mapped[str] = mapped_column(String(16), default=SkillState.UNTRUSTED.value, index=True)
    # The version agents use: the last one an approver trusted. An update does not move it.
    active_version_id: Mapped[str | None] = mapped_column(String(36))
    latest_version_id: Mapped[str | None] = mapped_column(String(36))
    created_by: Mapped[str | None] = mapped_column(String(36))


class SkillVersion(IdMixin, Base):
    __tablename__ = "skill_versions"
    __table_args__ = (UniqueConstraint("skill_id", "content_hash"),)

    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default=SkillState.UNTRUSTED.value)
    kind: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONDoc, default=dict)
    body: Mapped[str] = mapped_column(Text, default="")
    skill_md: Mapped[str] = mapped_column(Text, default="")
    files: Mapped[dict[str, str]] = mapped_column(JSONDoc, default=dict)
    warnings: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    source: Mapped[str] = mapped_column(String(500), default="")
    verdict: Mapped[str | None] = mapped_column(String(16))
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc, default=list)
    scan_error: Mapped[str | None] = mapped_column(Text)
    scanner_version: Mapped[str | None] = mapped_column(String(16))
    scanned_at: Mapped[datetime | None] = mapped_column()
    trusted_by: Mapped[str | None] = mapped_column(String(36))
    trusted_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
