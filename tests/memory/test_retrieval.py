"""Each retrieval mode's scoring and the access log every read writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from atom.config import Settings
from atom.db.session import Database
from atom.memory import retrieval, service
from atom.memory.models import EpisodeAccessLog
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event
from tests.memory.conftest import START
from tests.support.agents import make_agent

TEXTS = [
    ("Invoice INV-20417 for Acme Corp was sent with net 30 terms", 0),
    ("Globex asked for a refund on order ORD-5521 because the parcel arrived damaged", 2),
    ("Renewed the Initech support contract for another year", 10),
    ("Reconciled the March bank statement against the ledger", 40),
]


async def _fill(db: Database, settings: Settings, memory: Memory) -> tuple[str, dict[str, str]]:
    agent = await make_agent(db, settings)
    other = await make_agent(db, settings)
    ids: dict[str, str] = {}
    async with db.session_scope() as s:
        for text, days_ago in TEXTS:
            at = START - timedelta(days=days_ago)
            [episode] = await service.record_events(
                session=s,
                memory=memory,
                events=[Event(agent.id, at, "execution", text, "execution", completes_task=True)],
            )
            ids[text.split()[0]] = episode.id
        # The same words for another agent must never come back for the first one.
        await service.record_events(
            session=s, memory=memory, events=[Event(other.id, START, "execution", TEXTS[0][0], "execution")]
        )
    return agent.id, ids


async def test_temporal_windows_and_recency(settings: Settings, db: Database, memory: Memory) -> None:
    agent_id, ids = await _fill(db, settings, memory)
    async with db.session_scope() as s:
        week = await retrieval.temporal(
            session=s, memory=memory, agent_id=agent_id, days=7, limit=10, actor="user:u", reason="test"
        )
        quarter = await retrieval.temporal(
            session=s, memory=memory, agent_id=agent_id, days=90, limit=10, actor="user:u", reason="test"
        )
    assert [r.episode.id for r in week] == [ids["Invoice"], ids["Globex"]]
    assert [r.score for r in week] == pytest.approx([1.0, 1 - 2 / 7])
    assert len(quarter) == 4 and quarter[-1].score == pytest.approx(1 - 40 / 90)


async def test_semantic_is_hybrid_and_filtered_by_agent(settings: Settings, db: Database, memory: Memory) -> None:
    agent_id, ids = await _fill(db, settings, memory)
    async with db.session_scope() as s:
        by_id = await retrieval.semantic(
            session=s, memory=memory, agent_id=agent_id, query="INV-20417", limit=3, actor="user:u", reason="t"
        )
        paraphrase = await retrieval.semantic(
            session=s,
            memory=memory,
            agent_id=agent_id,
            query="customer wants their money back for a broken delivery",
            limit=3,
            actor="user:u",
            reason="t",
        )
        windowed = await retrieval.semantic(
            session=s, memory=memory, agent_id=agent_id, query="bank statement", limit=3, actor="u", reason="t", days=30
        )
    assert by_id[0].episode.id == ids["Invoice"]
    assert by_id[0].why["text_rank"] == 1.0
    assert by_id[0].score == pytest.approx(by_id[0].why["rrf"])  # decay 1.0
    # first by vector and by text, the text ranking weighed 3x (an id), +1 for holding the id itself
    assert by_id[0].why["rrf"] == pytest.approx(1 / 61 + 3 / 61 + 1.0)
    assert paraphrase[0].episode.id == ids["Globex"]
    assert {r.episode.agent_id for r in by_id + paraphrase} == {agent_id}
    assert ids["Reconciled"] not in {r.episode.id for r in windowed}  # 40 days old, window 30


async def test_contextual_weights(settings: Settings, db: Database, memory: Memory) -> None:
    agent_id, ids = await _fill(db, settings, memory)

    async def canvas(session: object, episode_ids: list[str]) -> dict[str, list[dict[str, object]]]:
        return {ids["Globex"]: [{"action": "present"}]}

    async def feedback(session: object, episode_ids: list[str]) -> dict[str, float]:
        return {ids["Globex"]: 1.0, ids["Invoice"]: -0.5}

    async with db.session_scope() as s:
        plain = await retrieval.contextual(
            session=s, memory=memory, agent_id=agent_id, query="refund Globex", limit=4, actor="u", reason="t"
        )
        memory.canvas_hook, memory.feedback_hook = canvas, feedback
        hooked = await retrieval.contextual(
            session=s, memory=memory, agent_id=agent_id, query="refund Globex", limit=4, actor="u", reason="t"
        )
    for r in plain:
        assert r.score == pytest.approx(0.3 * r.why["temporal"] + 0.7 * r.why["semantic"])
        assert r.why["canvas"] == 0.0 and r.why["feedback"] == 0.0
    base = {r.episode.id: r.score for r in plain}
    after = {r.episode.id: r.score for r in hooked}
    assert after[ids["Globex"]] == pytest.approx(base[ids["Globex"]] + 0.1 + 0.2)
    assert after[ids["Invoice"]] == pytest.approx(base[ids["Invoice"]] - 0.3)
    assert plain[0].why["temporal"] == pytest.approx(1 - 2 / 90)


async def test_sequential_and_access_logs(settings: Settings, db: Database, memory: Memory) -> None:
    agent_id, ids = await _fill(db, settings, memory)
    async with db.session_scope() as s:
        whole = await retrieval.sequential(
            session=s, memory=memory, episode_id=ids["Renewed"], actor="user:alice", reason="show"
        )
        await retrieval.semantic(
            session=s, memory=memory, agent_id=agent_id, query="Acme", limit=2, actor="agent:a", reason="prompt"
        )
    assert [seg.content for seg in whole.segments] == [TEXTS[2][0]]
    async with db.session_scope() as s:
        logs = (await s.scalars(select(EpisodeAccessLog).order_by(EpisodeAccessLog.id))).all()
    assert [(log.actor, log.mode, log.reason) for log in logs] == [
        ("user:alice", "sequential", "show"),
        ("agent:a", "semantic", "prompt"),
    ]
    assert logs[0].episode_ids == [ids["Renewed"]]
    assert logs[1].episode_ids[0] == ids["Invoice"] and "rrf" in logs[1].scores[ids["Invoice"]]
