"""API shapes of the LLM domain. A provider's key goes in (`api_key`) and never comes out (`has_key`)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$"
MAX_KEY_CHARS = 4096

ModelName = str
GroupBy = Literal["agent", "provider", "day", "model"]


class ProviderIn(BaseModel):
    """A provider config. `kind` is `openai` (any OpenAI-compatible endpoint) or `anthropic`."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=32, description="`openai` or `anthropic`.")
    base_url: str | None = Field(
        default=None,
        max_length=500,
        description="API base URL (OpenAI-compatible: up to `/v1`). Empty: the vendor's public endpoint.",
    )
    models: list[ModelName] = Field(min_length=1, max_length=50, description="Models this provider serves.")
    api_key: SecretStr | None = Field(
        default=None,
        max_length=MAX_KEY_CHARS,
        description="Stored in the secrets store, never returned. Empty for local servers without auth; "
        "on update, empty keeps the stored key.",
    )
    priority: int = Field(default=100, ge=0, le=10_000, description="Fallback order: lower first, then name.")
    enabled: bool = True


class ProviderCreate(ProviderIn):
    name: str = Field(pattern=NAME_PATTERN, description="Lower-case letters, digits, `_` and `-`, up to 63.")


class ProviderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    kind: str
    base_url: str
    models: list[str]
    priority: int
    enabled: bool
    has_key: bool
    healthy: bool | None = Field(description="Result of the last test; null: never tested.")
    last_error: str | None
    last_checked_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ProviderList(BaseModel):
    items: list[ProviderRead]


class ProviderTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, max_length=200, description="Model to test; default: the first.")


class ProviderTestResult(BaseModel):
    name: str
    model: str
    healthy: bool
    latency_ms: int
    reply: str | None = Field(description="The start of the model's answer when healthy.")
    error_code: str | None
    error: str | None


class UsageRow(BaseModel):
    agent_id: str | None = None
    provider: str | None = None
    day: str | None = None
    model: str | None = None
    calls: int
    failed_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal = Field(description="Sum of the priced calls.")
    unpriced_calls: int = Field(description="Calls whose model has no price: their cost is not in `cost_usd`.")


class UsageReport(BaseModel):
    group_by: list[GroupBy]
    since: date | None
    until: date | None
    rows: list[UsageRow]
    total: UsageRow


class BudgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    daily_usd: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=10)
    monthly_usd: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=10)


class BudgetRead(BaseModel):
    agent_id: str
    daily_usd: Decimal | None
    monthly_usd: Decimal | None
    source: Literal["agent", "default", "none"]
    spent_today_usd: Decimal
    spent_month_usd: Decimal
