"""Where one episode ends and the next begins (RULES.md): pure decisions, no I/O.

A new episode starts when the gap since the episode's last event is more than the gap limit
(30 minutes), when the topic changes (cosine similarity of consecutive message embeddings below
0.75), or after a task completed (the event that completes a task closes its episode).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from atom.memory.embedding import Vectors


@dataclass(frozen=True)
class Event:
    """One thing an agent did or was told, read from its domain's service."""

    agent_id: str
    at: datetime
    kind: str  # message | execution | tool_call | workflow_step | workflow_run | proposal | decision | supervision
    text: str
    source: str  # execution | workflow | proposal | supervision | manual
    source_id: str | None = None
    role: str = ""
    user_id: str | None = None
    completes_task: bool = False
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class OpenEpisode:
    """The state segmentation needs of an agent's latest episode."""

    ended_at: datetime
    last_vector: Vectors | None
    closed: bool


@dataclass(frozen=True)
class Rules:
    gap: timedelta = timedelta(minutes=30)
    topic_similarity: float = 0.75


def cosine(a: Vectors, b: Vectors) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0 or nb == 0:
        return 0.0
    return float(np.dot(a, b) / (na * nb))


def boundary(previous: OpenEpisode | None, event_at: datetime, vector: Vectors | None, rules: Rules) -> str | None:
    """Why `event` starts a new episode (`first`, `task_completed`, `gap`, `topic`), or None to continue."""
    if previous is None:
        return "first"
    if previous.closed:
        return "task_completed"
    if event_at - previous.ended_at > rules.gap:
        return "gap"
    if (
        vector is not None
        and previous.last_vector is not None
        and cosine(previous.last_vector, vector) < rules.topic_similarity
    ):
        return "topic"
    return None


def is_topic_event(event: Event) -> bool:
    """Events whose embedding decides a topic change (RULES.md: consecutive messages): what a person or the
    system says to the agent, not the agent's own tool calls and answers."""
    return event.kind in {"message", "note"} and event.role != "assistant"


def split(events: Sequence[Event], vectors: Vectors, rules: Rules) -> list[list[int]]:
    """Group a time-ordered run of one agent's events into episodes (indices into `events`)."""
    groups: list[list[int]] = []
    state: OpenEpisode | None = None
    for i, event in enumerate(events):
        vector = vectors[i] if len(vectors) and is_topic_event(event) else None
        if boundary(state, event.at, vector, rules) is not None:
            groups.append([])
        groups[-1].append(i)
        last = vector if vector is not None else (state.last_vector if state is not None else None)
        state = OpenEpisode(ended_at=event.at, last_vector=last, closed=event.completes_task)
    return groups
