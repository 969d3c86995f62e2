"""Rule set versions and graduation exams."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from atom.db.base import Base, IdMixin, JSONDoc


class RuleSetVersion(IdMixin, Base):
    """One version of the constitutional rule set; the newest is in force."""

    __tablename__ = "graduation_rule_sets"

    version: Mapped[int] = mapped_column(Integer, unique=True)
    source: Mapped[str] = mapped_column(Text)
    rule_ids: Mapped[list[str]] = mapped_column(JSONDoc)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column()


class GraduationExam(IdMixin, Base):
    """A dry-run replay of an agent's edge-case episodes at a target level, with its evidence."""

    __tablename__ = "graduation_exams"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    target_level: Mapped[str] = mapped_column(String(16))
    passed: Mapped[bool] = mapped_column()
    episodes: Mapped[int] = mapped_column(Integer)
    actions: Mapped[int] = mapped_column(Integer)
    violations: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JSONDoc)
    rule_set_version: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column()
