"""Graduation on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atom.governance.maturity import MaturityLevel
from atom.graduation.rules import MAX_SOURCE_BYTES


class CriteriaRead(BaseModel):
    min_episodes: int
    max_intervention_rate: float
    min_constitutional_score: float


class ReadinessRead(BaseModel):
    agent_id: str
    agent_name: str
    current_level: str
    target_level: str
    episodes: int
    intervention_rate: float
    constitutional_score: float
    score: float = Field(description="0-100 (RULES.md readiness score).")
    ready: bool
    gaps: list[str] = Field(description="Each unmet minimum, in words.")
    criteria: CriteriaRead
    rule_set_version: int | None


class ExamRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_level: MaturityLevel | None = Field(default=None, description="Default: the next level.")


class ExamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    target_level: str
    passed: bool
    episodes: int
    actions: int
    violations: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    rule_set_version: int | None
    created_by: str | None
    created_at: datetime


class RuleSetWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=MAX_SOURCE_BYTES, description="The rule set as YAML (docs/graduation.md).")


class RuleSetRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    version: int
    source: str
    rule_ids: list[str]
    created_by: str | None
    created_at: datetime


class RuleSetList(BaseModel):
    items: list[RuleSetRead]
