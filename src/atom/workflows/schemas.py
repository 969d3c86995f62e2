"""Workflow API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from atom.workflows.models import RunStatus, StepStatus


class WorkflowSource(BaseModel):
    """A definition as text (YAML or JSON), exactly as written in the file."""

    source: str = Field(min_length=1, max_length=262_144)
    format: Literal["yaml", "json"] | None = Field(default=None, description="Default: detected from the text.")


class DefinitionProblem(BaseModel):
    field: str
    line: int | None
    message: str
    type: str


class ValidationResult(BaseModel):
    valid: bool
    name: str | None = None
    steps: int = 0
    order: list[str] = Field(default_factory=list, description="Steps in an order that respects `needs`.")
    problems: list[DefinitionProblem] = Field(default_factory=list)


class TriggerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    trigger_key: str
    kind: str
    config: dict[str, Any]
    enabled: bool
    next_fire_at: datetime | None
    last_fired_at: datetime | None
    next_fire_times: list[datetime] = Field(default_factory=list)
    webhook_path: str | None = None


class WorkflowRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    description: str
    current_version: int
    created_at: datetime
    updated_at: datetime


class WorkflowDetail(WorkflowRead):
    definition: dict[str, Any]
    source: str
    source_format: str
    definition_hash: str
    agent_ids: dict[str, str | None]
    triggers: list[TriggerRead]


class VersionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    version: int
    definition_hash: str
    source_format: str
    created_at: datetime
    created_by: str | None


class RunCreate(BaseModel):
    inputs: dict[str, Any] = Field(default_factory=dict)


class RunStarted(BaseModel):
    route: str = Field(
        description="run | proposal | training | supervised | refused (the trigger interceptor's routing)."
    )
    reason: str
    agent_id: str
    agent_level: str
    run_id: str | None = None
    proposal_id: str | None = None
    supervision_session_id: str | None = None


class WebhookFinished(RunStarted):
    """A `respond: on_finish` webhook's answer: 200 with the run's output, or 202 while it still runs."""

    status: str = Field(description="succeeded (200), or running (202: the timeout passed first).")
    output: Any = Field(
        default=None,
        description="The `respond` step's output when the workflow has that step, else each succeeded step's "
        "output by step id (200 only).",
    )


class StepRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    step_key: str
    position: int
    kind: str
    action: str | None
    status: StepStatus
    attempt: int
    generation: int
    agent_id: str | None
    idempotency_key: str
    input: dict[str, Any] | None
    output: dict[str, Any] | None
    error: str | None
    error_code: str | None
    logs: list[dict[str, Any]]
    proposal_id: str | None
    queued_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    due_at: datetime | None
    duration_ms: float | None = None


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    workflow_id: str
    version: int
    agent_id: str
    status: RunStatus
    trigger_kind: str
    source: str
    trigger_id: str | None
    proposal_id: str | None
    supervision_session_id: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class RunDetail(RunRead):
    inputs: dict[str, Any]
    trigger_payload: dict[str, Any]
    steps: list[StepRead]


class StepDecision(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)
