"""Ingestion off the request path: finished agent executions become episodes once; running ones wait."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from atom.chat.models import AgentExecution, ChatSession
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.memory import ingest
from atom.memory.models import Episode, EpisodeSegment
from atom.memory.runtime import Memory
from tests.support.agents import make_agent


def _execution(agent_id: str, minutes_ago: float, text: str, answer: str, **values: object) -> AgentExecution:
    started = utcnow() - timedelta(minutes=minutes_ago)
    defaults: dict[str, object] = {
        "status": "completed",
        "trigger": "chat",
        "trigger_kind": "manual",
        "finished_at": started + timedelta(seconds=5),
    }
    defaults.update(values)
    return AgentExecution(agent_id=agent_id, input=text, output=answer, started_at=started, **defaults)


async def test_executions_become_episodes_once(settings: Settings, db: Database, memory: Memory) -> None:
    agent = await make_agent(db, settings)
    async with db.session_scope() as s:
        chat = ChatSession(agent_id=agent.id, user_id="u1", title="billing")
        s.add(chat)
        await s.flush()
        s.add(
            _execution(
                agent.id,
                60,
                "Is invoice INV-501 for Acme paid?",
                "Yes, INV-501 was paid on May 3.",
                session_id=chat.id,
                user_id="u1",
            )
        )
        await s.flush()
        s.add(
            _execution(
                agent.id,
                55,
                "And was invoice INV-502 for Acme paid?",
                "INV-502 is still open.",
                session_id=chat.id,
                user_id="u1",
                tool_calls=[{"name": "http_request", "arguments": {"url": "x"}, "status": "ok"}],
            )
        )
        await s.flush()
        s.add(_execution(agent.id, 50, "Send the weekly overdue report", "Report sent.", trigger="api"))
        await s.flush()
        s.add(_execution(agent.id, 1, "Still thinking about refunds", "", status="running", finished_at=None))
    async with db.session_scope() as s:
        assert await ingest.ingest_source(session=s, memory=memory, source="executions") == 3
    async with db.session_scope() as s:
        assert await ingest.ingest_source(session=s, memory=memory, source="executions") == 0  # cursor held
        episodes = (await s.scalars(select(Episode).order_by(Episode.started_at))).all()
        kinds = [
            [
                (g.kind, g.role)
                for g in (
                    await s.scalars(
                        select(EpisodeSegment).where(EpisodeSegment.episode_id == e.id).order_by(EpisodeSegment.seq)
                    )
                ).all()
            ]
            for e in episodes
        ]
    assert len(episodes) >= 1
    assert episodes[0].user_id == "u1"  # a chat episode keeps its person (privacy)
    flat = [k for group in kinds for k in group]
    assert ("tool_call", "tool") in flat and flat.count(("message", "user")) == 3
    assert all("refunds" not in e.text for e in episodes)  # the running one is not taken yet
    assert episodes[-1].closed  # the api task completed its episode

    async with db.session_scope() as s:
        running = (await s.scalars(select(AgentExecution).where(AgentExecution.status == "running"))).one()
        running.status, running.output, running.finished_at = "completed", "Refund issued.", utcnow()
    async with db.session_scope() as s:
        assert await ingest.ingest_source(session=s, memory=memory, source="executions") == 1
        texts = [e.text for e in (await s.scalars(select(Episode))).all()]
    assert any("Refund issued." in t for t in texts)
    for source in ("workflows", "proposals", "supervision"):  # the other sources read through their services
        async with db.session_scope() as s:
            assert await ingest.ingest_source(session=s, memory=memory, source=source) == 0
