"""LLM provider configs, per-call usage records and per-agent budgets.

A provider's API key is never a column here: it lives in the secrets store under `key_secret`
(`llm.provider.<name>`); rows only name the secret.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, ForeignKey, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from atom.db.base import Base, IdMixin, JSONDoc, TimestampMixin, utcnow


class LLMProvider(IdMixin, TimestampMixin, Base):
    __tablename__ = "llm_providers"

    name: Mapped[str] = mapped_column(String(63), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # openai | anthropic
    base_url: Mapped[str] = mapped_column(String(500))
    models: Mapped[list[str]] = mapped_column(JSONDoc, default=list)
    priority: Mapped[int] = mapped_column(Integer, default=100)  # fallback order: lower first, then name
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    key_secret: Mapped[str | None] = mapped_column(String(200))
    healthy: Mapped[bool | None] = mapped_column(Boolean)  # None: never tested
    last_error: Mapped[str | None] = mapped_column(Text)
    last_checked_at: Mapped[datetime | None] = mapped_column()


class LLMUsage(IdMixin, Base):
    """One model call: who asked, who answered, tokens and cost (NULL cost: the model has no price)."""

    __tablename__ = "llm_usage"

    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    day: Mapped[str] = mapped_column(String(10), index=True)  # YYYY-MM-DD (UTC), for per-day totals
    agent_id: Mapped[str | None] = mapped_column(String(36), index=True)
    execution_id: Mapped[str | None] = mapped_column(String(36), index=True)
    provider: Mapped[str] = mapped_column(String(63), index=True)
    model: Mapped[str] = mapped_column(String(200))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    cost_usd: Mapped[Decimal | None] = mapped_column(Numeric(20, 10))
    status: Mapped[str] = mapped_column(String(16), default="ok")  # ok | error | cancelled
    error_code: Mapped[str | None] = mapped_column(String(64))
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class LLMBudget(TimestampMixin, Base):
    """An agent's LLM spending limits in USD; NULL: no limit for that period."""

    __tablename__ = "llm_budgets"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    daily_usd: Mapped[Decimal | None] = mapped_column(Numeric(20, 10))
    monthly_usd: Mapped[Decimal | None] = mapped_column(Numeric(20, 10))
