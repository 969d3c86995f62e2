"""Episodic memory on the wire."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EpisodeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    agent_id: str
    user_id: str | None
    title: str
    source: str
    status: str
    closed: bool
    started_at: datetime
    ended_at: datetime
    segment_count: int
    decay: float
    model_id: str | None
    consolidated_into: str | None


class SegmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: str
    source_id: str | None
    role: str
    content: str
    occurred_at: datetime
    seq: int


class CanvasActionRead(BaseModel):
    canvas_id: str
    kind: str
    title: str
    action: str = Field(description="present, update, lock, unlock, review, close, submit, mode, participant.")
    actor: str = Field(description="agent:<id> or user:<id>.")
    outcome: str = Field(description="ok or refused.")
    version: int
    at: datetime


class EpisodeDetail(BaseModel):
    episode: EpisodeRead
    segments: list[SegmentRead]
    context: dict[str, float] = Field(
        description="canvas: 1 when the episode had canvas actions; "
        "feedback: its average feedback score (0 when nobody rated it)."
    )
    canvas_actions: list[CanvasActionRead] = Field(
        default_factory=list, description="The canvas actions of the episode's executions, runs and time span."
    )


class SearchMode(StrEnum):
    SEMANTIC = "semantic"
    CONTEXTUAL = "contextual"
    TEMPORAL = "temporal"


class SearchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=100, description="Agent id or name.")
    query: str = Field(default="", max_length=2000, description="What to look for (semantic, contextual).")
    mode: SearchMode = SearchMode.SEMANTIC
    days: int | None = Field(default=None, description="Time window: temporal needs 1, 7, 30 or 90.")
    limit: int = Field(default=5, ge=1, le=50)
    reason: str = Field(default="", max_length=500, description="Why memory is read (kept in the access log).")


class RecallRead(BaseModel):
    episode: EpisodeRead
    score: float
    why: dict[str, float] = Field(description="The parts of the score (similarity, rank fusion, recency, ...).")


class SearchResult(BaseModel):
    mode: SearchMode
    items: list[RecallRead]


class RememberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=4000)


class ForgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episode_ids: list[str] | None = Field(default=None, max_length=1000, description="Empty: all of the agent's.")


class ForgetResult(BaseModel):
    agent_id: str
    deleted: int


class MaintainIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dry_run: bool = True


class ReembedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str | None = Field(default=None, max_length=100)


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    status: str
    dry_run: bool
    total: int
    done: int
    report: dict[str, Any]
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class AccessLogRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    created_at: datetime
    actor: str
    agent_id: str | None
    mode: str
    query: str
    reason: str
    episode_ids: list[str]
    scores: dict[str, Any]
