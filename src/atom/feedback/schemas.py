"""Feedback and A/B tests on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atom.feedback.models import FeedbackKind, TargetType

VARIANT_KEYS = ("system_prompt", "model", "tools", "temperature", "max_steps")


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_type: TargetType
    target_id: str = Field(min_length=1, max_length=36)
    kind: FeedbackKind
    thumbs: Literal[-1, 1] | None = Field(default=None, description="+1 (up) or -1 (down); for `thumbs`.")
    rating: int | None = Field(default=None, ge=1, le=5, description="1-5; for `rating`.")
    corrected: str | None = Field(default=None, max_length=100_000, description="The right output; for `correction`.")
    comment: str | None = Field(default=None, max_length=10_000)

    @model_validator(mode="after")
    def _fields_of_kind(self) -> FeedbackCreate:
        needs = {
            FeedbackKind.THUMBS: ("thumbs", self.thumbs),
            FeedbackKind.RATING: ("rating", self.rating),
            FeedbackKind.CORRECTION: ("corrected", self.corrected),
            FeedbackKind.COMMENT: ("comment", self.comment),
        }
        field, value = needs[self.kind]
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ValueError(f"`{field}` is required for {self.kind.value} feedback")
        for other, (name, other_value) in needs.items():
            if other is not self.kind and name != "comment" and other_value is not None:
                raise ValueError(f"`{name}` belongs to {other.value} feedback, not {self.kind.value}")
        return self


class FeedbackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    target_type: str
    target_id: str
    user_id: str | None
    kind: str
    thumbs: int | None
    rating: int | None
    original: str | None
    corrected: str | None
    comment: str | None
    trusted: bool
    status: str
    confidence_delta: float
    reviewed_by: str | None
    review_reason: str | None
    reviewed_at: datetime | None
    created_at: datetime


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feedback_ids: list[str] = Field(min_length=1, max_length=200)
    decision: Literal["accept", "reject"]
    reason: str = Field(default="", max_length=2000)


class ReviewRead(BaseModel):
    reviewed: list[FeedbackRead]


class DayStats(BaseModel):
    day: str
    count: int
    mean_rating: float | None
    corrections: int


class AgentFeedbackStats(BaseModel):
    agent_id: str
    days: int
    count: int
    by_kind: dict[str, int]
    thumbs_up: int
    thumbs_down: int
    mean_rating: float | None
    correction_rate: float | None = Field(description="Corrections per agent run in the period.")
    pending_corrections: int
    trend: list[DayStats]


class Variant(BaseModel):
    """What a variant changes in the agent's configuration; an empty variant is the agent as it is."""

    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = Field(default=None, max_length=20_000)
    model: str | None = Field(default=None, max_length=200)
    tools: list[str] | None = Field(default=None, max_length=100)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_steps: int | None = Field(default=None, ge=1, le=50)

    def overrides(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ABTestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    agent_id: str = Field(min_length=1, max_length=100, description="Agent id or name.")
    variant_a: Variant = Field(default_factory=Variant)
    variant_b: Variant
    traffic_share: float = Field(gt=0, lt=1, description="Share of subjects (users) that get variant B.")
    metric: Literal["success_rate", "positive_feedback", "rating"] = "success_rate"
    min_sample: int | None = Field(default=None, ge=2, le=1_000_000, description="Default: ATOM_AB_MIN_SAMPLE.")

    @model_validator(mode="after")
    def _two_variants(self) -> ABTestCreate:
        if self.variant_a.overrides() == self.variant_b.overrides():
            raise ValueError("variant_b must differ from variant_a: an A/B test needs two variants")
        return self


class ABTestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    agent_id: str
    variant_a: dict[str, Any]
    variant_b: dict[str, Any]
    traffic_share: float
    metric: str
    min_sample: int
    status: str
    created_by: str | None
    created_at: datetime
    stopped_at: datetime | None


class VariantResult(BaseModel):
    variant: str
    runs: int
    samples: int = Field(description="Observations of the metric (runs, or rated runs).")
    value: float | None = Field(description="Success rate, positive-feedback rate or mean rating.")


class ABTestResults(BaseModel):
    test: ABTestRead
    a: VariantResult
    b: VariantResult
    test_used: str = Field(description="two-proportion z-test or Welch's t-test")
    statistic: float | None
    p_value: float | None
    difference: float | None = Field(description="B minus A.")
    ci_low: float | None = Field(description="95% confidence interval of the difference.")
    ci_high: float | None
    enough_data: bool
    winner: str | None = Field(description="A or B when significant (p < 0.05) with enough data; else none.")
    suggestion: str
