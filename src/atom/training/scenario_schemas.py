"""Training scenarios and scenario runs on the wire (docs/training.md), with their bounds."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atom.training.models import TrainingStatus

NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,79}$"
TOOL_PATTERN = r"^[A-Za-z][A-Za-z0-9_.:-]{0,99}$"
MAX_SOURCE_BYTES = 256 * 1024
MAX_SCENARIOS_PER_FILE = 100
MAX_RULES = 20
MAX_TOOLS = 32


class RuleExpectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,80}$")
    description: str = Field(default="", max_length=500)
    condition: str = Field(
        min_length=1,
        max_length=2000,
        description="A CEL expression over `answer`, `calls`, `status` and `steps` that must be true.",
    )


class ReferenceExpectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=8000, description="The reference answer.")
    match: Literal["f1", "exact", "contains"] = Field(
        default="f1", description="f1: token F1 of the normalized texts; exact: equal; contains: a token run of it."
    )


class JudgeExpectation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rubric: str = Field(min_length=1, max_length=4000, description="What the LLM judge scores the work against.")


class Expectation(BaseModel):
    """How the outcome is scored: any of rules, a reference answer, an LLM judge (the mean of those given)."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RuleExpectation] = Field(default_factory=list, max_length=MAX_RULES)
    reference: ReferenceExpectation | None = None
    judge: JudgeExpectation | None = None

    @model_validator(mode="after")
    def _something_to_score(self) -> Expectation:
        if not self.rules and self.reference is None and self.judge is None:
            raise ValueError("give at least one of `rules`, `reference` or `judge`")
        ids = [rule.id for rule in self.rules]
        if len(set(ids)) != len(ids):
            raise ValueError("rule ids must be unique within a scenario")
        return self


class ScenarioIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, description="Lower-case; a new scenario of the same name is a new version.")
    category: str = Field(min_length=1, max_length=100, description="The agent category it trains.")
    description: str = Field(default="", max_length=2000)
    task: str = Field(min_length=1, max_length=8000, description="The prompt the agent is given.")
    tools: list[str] = Field(
        max_length=MAX_TOOLS, description="The tools offered to the agent in this scenario (may be empty)."
    )
    expect: Expectation

    @model_validator(mode="after")
    def _distinct_tools(self) -> ScenarioIn:
        if len(set(self.tools)) != len(self.tools):
            raise ValueError("`tools` lists a tool twice")
        return self


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenarios: list[ScenarioIn] = Field(min_length=1, max_length=MAX_SCENARIOS_PER_FILE)


class ScenarioSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(max_length=MAX_SOURCE_BYTES, description="A scenario file as YAML (docs/training.md).")


class ScenarioRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    version: int
    category: str
    description: str
    task: str
    tools: list[str]
    expect: dict[str, Any]
    created_by: str | None
    created_at: datetime
    retired_at: datetime | None


class ScenarioList(BaseModel):
    items: list[ScenarioRead]


class ScenarioVersions(BaseModel):
    current: ScenarioRead
    versions: list[ScenarioRead] = Field(description="Every version, newest first.")


class TrainingRunRead(BaseModel):
    """A training session with its scenario run's progress and per-scenario results."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    category: str
    status: TrainingStatus
    performance: float | None
    scored_by: str | None = Field(description="`scenarios` (a run) or `person` (completed or overridden by hand).")
    scenario_performance: float | None = Field(description="The mean the scenarios gave (kept when overridden).")
    progress_done: int
    progress_total: int
    current_scenario: str | None
    results: list[dict[str, Any]] | None
    run_error: str | None
    run_started_at: datetime | None
    completed_at: datetime | None


class ScoreOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    performance: float = Field(ge=0, le=1)
    reason: str = Field(min_length=1, max_length=2000)
