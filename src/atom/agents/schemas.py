from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atom.agents.models import AgentStatus
from atom.governance.maturity import MaturityLevel

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,99}$"


class AgentConfig(BaseModel):
    """What an agent runs with. Unknown keys are refused, so a typo cannot silently do nothing."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, max_length=200, description="LLM model; empty: routed by complexity.")
    system_prompt: str | None = Field(default=None, max_length=20_000)
    tools: list[str] = Field(default_factory=list, max_length=200, description="Tool names the agent may call.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    budget_usd: float | None = Field(default=None, ge=0, description="Spending limit for LLM calls.")
    max_steps: int | None = Field(default=None, ge=1, le=200)


class AgentCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN)
    description: str = Field(default="", max_length=5000)
    category: str = Field(default="general", min_length=1, max_length=100)
    specialty: str | None = Field(default=None, max_length=100)
    capabilities: list[str] = Field(default_factory=list, max_length=200)
    configuration: AgentConfig = Field(default_factory=AgentConfig)
    confidence: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Starting confidence (default ATOM_INITIAL_CONFIDENCE). Above the STUDENT range it needs "
        "the approver role and is recorded as a promotion.",
    )


class AgentUpdate(BaseModel):
    description: str | None = Field(default=None, max_length=5000)
    category: str | None = Field(default=None, min_length=1, max_length=100)
    specialty: str | None = Field(default=None, max_length=100)
    capabilities: list[str] | None = Field(default=None, max_length=200)
    configuration: AgentConfig | None = None


class AgentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    category: str
    specialty: str | None
    capabilities: list[str]
    configuration: dict[str, Any]
    maturity_level: MaturityLevel
    confidence: float
    status: AgentStatus
    created_at: datetime
    updated_at: datetime


class ConfidenceEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    delta: float
    reason: str
    source: str
    source_id: str | None
    confidence_before: float
    confidence_after: float
    created_at: datetime


class ConfidenceChange(BaseModel):
    delta: float = Field(ge=-1, le=1)
    reason: str = Field(min_length=1, max_length=200)


class Promotion(BaseModel):
    to_level: MaturityLevel
    reason: str = Field(min_length=1, max_length=2000)
    override: bool = Field(
        default=False, description="Admin only: promote although readiness or the graduation exam has not passed."
    )


class StatusChange(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)


class LevelChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    from_level: MaturityLevel
    to_level: MaturityLevel
    kind: str
    actor_type: str
    actor_id: str | None
    reason: str
    created_at: datetime
