"""Guidance over the wire: progress of a run, error guidance, outcomes, agent requests, layouts."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atom.guidance.classify import ErrorCategory
from atom.guidance.models import RequestKind as RequestKind
from atom.guidance.models import RequestStatus as RequestStatus

SubjectType = Literal["workflow_step", "agent_tool_call", "agent_run"]
SUBJECT_ID_PATTERN = r"^[A-Za-z0-9_.:-]+(/[A-Za-z0-9_.:-]+)?$"
MAX_NOTE = 2000


class ResolutionRead(BaseModel):
    id: str
    who: Literal["agent", "person"]
    title: str
    steps: list[str]
    default: bool
    successes: int = Field(description="How often people marked this resolution as having worked (this category).")
    failures: int


class ErrorGuidance(BaseModel):
    """One error, its category, the two resolutions and the one suggested."""

    subject_type: SubjectType
    subject_id: str
    category: ErrorCategory
    label: str
    meaning: str
    error: str
    error_code: str | None
    agent_fix: ResolutionRead
    person_fix: ResolutionRead
    suggested: str = Field(description="The resolution with the most recorded successes; ties: the documented default.")
    marked: dict[str, bool] = Field(
        default_factory=dict, description="Resolutions already marked for this error: id -> whether it worked."
    )


class StepProgress(BaseModel):
    key: str
    label: str
    kind: str
    status: str
    detail: str | None = None
    error: str | None = None
    error_code: str | None = None
    guidance: ErrorGuidance | None = None


class Progress(BaseModel):
    """A run's progress: step n of m (m an upper bound while `bounded`), percent, and what / why / next."""

    kind: Literal["agent_run", "workflow_run"]
    subject_id: str
    title: str
    status: str
    step: int
    total: int
    bounded: bool
    percent: int = Field(ge=0, le=100)
    what: str
    why: str
    next: str
    error: str | None = None
    error_code: str | None = None
    guidance: ErrorGuidance | None = None
    steps: list[StepProgress]
    started_at: datetime
    updated_at: datetime | None = None
    finished_at: datetime | None = None


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status_code: int | None = Field(default=None, ge=100, le=599)
    code: str | None = Field(default=None, max_length=64)
    message: str = Field(default="", max_length=4000)

    @model_validator(mode="after")
    def _something(self) -> ClassifyRequest:
        if self.status_code is None and not self.code and not self.message.strip():
            raise ValueError("give a status_code, a code or a message")
        return self


class ClassifyRead(BaseModel):
    category: ErrorCategory
    label: str
    meaning: str
    agent_fix: ResolutionRead
    person_fix: ResolutionRead
    suggested: str


class OutcomeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subject_type: SubjectType
    subject_id: str = Field(min_length=1, max_length=200, pattern=SUBJECT_ID_PATTERN)
    resolution_id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    worked: bool
    note: str | None = Field(default=None, max_length=MAX_NOTE)


class OutcomeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    category: ErrorCategory
    resolution_id: str
    worked: bool
    subject_type: str
    subject_id: str
    user_id: str
    note: str | None
    created_at: datetime


class RequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: RequestKind
    agent_id: str
    execution_id: str | None
    question: str
    context: str | None
    options: list[str]
    default_option: str
    timeout_s: int
    status: RequestStatus
    answer: str | None
    answered_by: str | None
    note: str | None
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None


class AnswerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=MAX_NOTE)


LayoutName = Literal["side_by_side", "stacked", "canvas_beside"]
ViewName = Literal["workflow_run", "agent_run"]


class LayoutUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    layout: LayoutName


class LayoutRead(BaseModel):
    view: ViewName
    layout: LayoutName
    remembered: bool = Field(description="False: the default, nothing stored for this person yet.")
