"""Segmentation boundaries (RULES.md): gap > 30 min, topic cosine < 0.75, a completed task."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

from atom.config import Settings
from atom.db.session import Database
from atom.memory import service
from atom.memory.models import Episode, EpisodeSegment
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event, OpenEpisode, Rules, boundary, is_topic_event
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


class RecordingEmbedder(TableEmbedder):
    """A table embedder that remembers every text it was asked to embed."""

    def __init__(self, table: dict[str, np.ndarray]) -> None:
        super().__init__(table)
        self.asked: list[str] = []

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.asked.extend(texts)
        return await super().embed(texts)


def _expected_groups(calls: list[list[Event]], vectors: dict[str, np.ndarray], rules: Rules) -> list[list[str]]:
    """RULES.md segmentation as a plain model, every topic message embedded."""
    groups: list[list[str]] = []
    state: tuple[object, bool, np.ndarray | None] | None = None
    for call in calls:
        for event in sorted(call, key=lambda e: e.at):
            v = vectors[event.text] if is_topic_event(event) else None
            if (
                state is None
                or state[1]
                or event.at - state[0] > rules.gap  # type: ignore[operator]
                or (v is not None and state[2] is not None and float(v @ state[2]) < rules.topic_similarity)
            ):
                groups.append([])
                state = (event.at, False, None)
            groups[-1].append(event.text)
            state = (max(state[0], event.at), state[1] or event.completes_task, v if v is not None else state[2])  # type: ignore[type-var]
    return groups


@pytest.mark.parametrize("seed", range(4))
async def test_only_the_embeddings_segmentation_reads_are_made(settings: Settings, db: Database, seed: int) -> None:
    rng = random.Random(seed)
    agent = await make_agent(db, settings)
    directions = [np.eye(8, dtype=np.float32)[0], np.zeros(8, dtype=np.float32), np.zeros(8, dtype=np.float32)]
    directions[1][[0, 1]] = 0.74, np.sqrt(1 - 0.74**2)  # 0.74 from the first, 0.55 from the third
    directions[2][[0, 2]] = 0.74, np.sqrt(1 - 0.74**2)
    kinds = [("message", "user"), ("message", "assistant"), ("tool_call", "tool"), ("note", "")]
    events, at = [], START
    for i in range(18):
        at += timedelta(minutes=rng.choice([0, 1, 5, 30, 31]))
        kind, role = rng.choice(kinds)
        events.append(Event(agent.id, at, kind, f"t{i}", "execution", role=role, completes_task=rng.random() < 0.2))
    vectors = {e.text: directions[rng.randrange(3)] for e in events}
    embedder = RecordingEmbedder(vectors)
    memory = Memory(settings=settings, embedder=embedder, store=VectorStore(settings.data_dir / "v", 8), clock=Clock())
    cut = sorted(rng.sample(range(1, len(events)), 2))
    calls = [events[: cut[0]], events[cut[0] : cut[1]], events[cut[1] :]]
    for call in calls:
        async with db.session_scope() as s:
            await service.record_events(session=s, memory=memory, events=call)
    async with db.session_scope() as s:
        episodes = (await s.scalars(select(Episode).order_by(Episode.started_at, Episode.id))).all()
        groups = [
            list(
                (
                    await s.scalars(
                        select(EpisodeSegment.content)
                        .where(EpisodeSegment.episode_id == e.id)
                        .order_by(EpisodeSegment.seq)
                    )
                ).all()
            )
            for e in episodes
        ]
    assert sorted(groups) == sorted(_expected_groups(calls, vectors, Rules()))
    embedded_events = [t for t in embedder.asked if "\n" not in t]  # episode texts are "title\ncontents"
    topic = {e.text for e in events if is_topic_event(e)}
    assert set(embedded_events) <= topic
    # A topic message that closes a task right after a closed episode, a gap or at the start is never compared.
    never_read = {
        e.text
        for n, e in enumerate(events)
        if is_topic_event(e) and e.completes_task and (n == 0 or events[n - 1].completes_task)
    }
    assert not never_read & set(embedded_events)


async def test_a_chat_turn_embeds_its_question_and_its_episode(settings: Settings, db: Database) -> None:
    agent = await make_agent(db, settings)
    embedder = RecordingEmbedder({})
    memory = Memory(settings=settings, embedder=embedder, store=VectorStore(settings.data_dir / "v", 8), clock=Clock())
    turn = [
        Event(agent.id, START, "message", "Is INV-1 paid?", "execution", role="user"),
        Event(agent.id, START, "tool_call", "tool ledger {} -> ok", "execution", role="tool"),
        Event(agent.id, START, "message", "Yes, on May 3.", "execution", role="assistant"),
    ]
    async with db.session_scope() as s:
        [episode] = await service.record_events(session=s, memory=memory, events=turn)
    assert embedder.asked == ["Is INV-1 paid?", episode.text]
    async with db.session_scope() as s:  # a remembered fact: its own closed episode, only its text embedded
        fact = await service.remember(session=s, memory=memory, agent_id=agent.id, text="Acme pays late", actor="t")
    assert embedder.asked[2:] == [fact.text]


async def test_a_closing_message_is_still_compared_after_a_tool_call(settings: Settings, db: Database) -> None:
    agent = await make_agent(db, settings)
    base, far = pair_with_cosine(0.74)
    embedder = RecordingEmbedder({"ask": base, "other": far})
    memory = Memory(settings=settings, embedder=embedder, store=VectorStore(settings.data_dir / "v", 8), clock=Clock())
    events = [
        Event(agent.id, START, "message", "ask", "execution", role="user"),
        Event(agent.id, START + timedelta(minutes=1), "tool_call", "tool x", "execution", role="tool"),
        Event(agent.id, START + timedelta(minutes=2), "message", "other", "execution", "x", "user", None, True),
    ]
    async with db.session_scope() as s:
        episodes = await service.record_events(session=s, memory=memory, events=events)
    assert [e.segment_count for e in episodes] == [2, 1]  # the closing message changed the topic
