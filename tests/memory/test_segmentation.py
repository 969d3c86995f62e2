"""Segmentation boundaries (RULES.md): gap > 30 min, topic cosine < 0.75, a completed task."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from atom.config import Settings
from atom.db.session import Database
from atom.memory import service
from atom.memory.models import Episode, EpisodeSegment
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event, OpenEpisode, Rules, boundary
from atom.memory.vectors import VectorStore
from tests.memory.conftest import START, Clock, TableEmbedder
from tests.support.agents import make_agent


def pair_with_cosine(c: float) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors whose cosine similarity is exactly c."""
    a = np.zeros(8, dtype=np.float32)
    a[0] = 1.0
    b = np.zeros(8, dtype=np.float32)
    b[0], b[1] = c, np.sqrt(1 - c * c)
    return a, b


@pytest.mark.parametrize(("minutes", "expected"), [(29, None), (30, None), (31, "gap")])
def test_gap_boundary(minutes: int, expected: str | None) -> None:
    v = np.ones(8, dtype=np.float32)
    state = OpenEpisode(ended_at=START, last_vector=v, closed=False)
    assert boundary(state, START + timedelta(minutes=minutes), v, Rules()) == expected


@pytest.mark.parametrize(("similarity", "expected"), [(0.74, "topic"), (0.75, None), (0.76, None)])
def test_topic_boundary(similarity: float, expected: str | None) -> None:
    a, b = pair_with_cosine(similarity)
    state = OpenEpisode(ended_at=START, last_vector=a, closed=False)
    assert boundary(state, START + timedelta(minutes=1), b, Rules()) == expected


def test_completed_task_closes_the_episode() -> None:
    v = np.ones(8, dtype=np.float32)
    assert boundary(OpenEpisode(START, v, closed=True), START + timedelta(seconds=1), v, Rules()) == "task_completed"
    assert boundary(None, START, v, Rules()) == "first"


async def test_events_become_episodes_in_both_databases(settings: Settings, db: Database) -> None:
    agent = await make_agent(db, settings)
    base, close = pair_with_cosine(0.76)
    _, far = pair_with_cosine(0.74)
    # Vectors built for the test: "far" is 0.74 from "base"; "close" 0.76 from "base".
    embedder = TableEmbedder(
        {"base": base, "again": base, "close": close, "far": far, "later": far, "done": far, "after": far}
    )
    memory = Memory(settings=settings, embedder=embedder, store=VectorStore(settings.data_dir / "v", 8), clock=Clock())

    def ev(text: str, minutes: float, completes: bool = False) -> Event:
        return Event(
            agent_id=agent.id,
            at=START + timedelta(minutes=minutes),
            kind="message",
            text=text,
            source="execution",
            completes_task=completes,
        )

    async with db.session_scope() as s:
        await service.record_events(session=s, memory=memory, events=[ev("base", 0), ev("close", 30)])
    async with db.session_scope() as s:  # a later pass continues the open episode, then the topic changes
        await service.record_events(session=s, memory=memory, events=[ev("again", 40)])
        await service.record_events(session=s, memory=memory, events=[ev("far", 41)])
    async with db.session_scope() as s:
        await service.record_events(
            session=s, memory=memory, events=[ev("later", 41 + 31), ev("done", 80, True), ev("after", 81)]
        )
    async with db.session_scope() as s:
        episodes = (await s.scalars(select(Episode).order_by(Episode.started_at))).all()
        counts = [e.segment_count for e in episodes]
        kinds = [
            [
                seg.content
                for seg in (
                    await s.scalars(
                        select(EpisodeSegment).where(EpisodeSegment.episode_id == e.id).order_by(EpisodeSegment.seq)
                    )
                ).all()
            ]
            for e in episodes
        ]
    # base, close (0.76), again (0.76) | far (0.74: topic) | later+done (31 min gap) | after (task completed)
    assert kinds == [["base", "close", "again"], ["far"], ["later", "done"], ["after"]]
    assert counts == [3, 1, 2, 1]
    assert all(e.model_id == "test-table" for e in episodes)
    assert await memory.store.ids() == {e.id for e in episodes}
