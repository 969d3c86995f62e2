"""Lifecycle with a controllable clock: decay after 90 days, archive after 180, consolidate at >= 0.85,
dry runs that change nothing, re-embedding with progress and no orphan vector after a delete."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.memory import lifecycle, retrieval, service
from atom.memory.models import Episode, EpisodeSegment, MemoryJob
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event
from tests.memory.conftest import START, Clock
from tests.support.agents import make_agent


async def _episode(db: Database, memory: Memory, agent_id: str, text: str, days_ago: float) -> str:
    async with db.session_scope() as s:
        [e] = await service.record_events(
            session=s,
            memory=memory,
            events=[
                Event(agent_id, START - timedelta(days=days_ago), "execution", text, "execution", completes_task=True)
            ],
        )
    return e.id


async def _run(db: Database, memory: Memory, dry_run: bool) -> tuple[dict[str, object], MemoryJob]:
    async with db.session_scope() as s:
        job = await lifecycle.start_job(session=s, kind="maintain", dry_run=dry_run, created_by=None)
    report = await lifecycle.maintain(db=db, memory=memory, job_id=job.id, dry_run=dry_run)
    async with db.session_scope() as s:
        return report, await lifecycle.get_job(session=s, job_id=job.id)


async def test_decay_archive_and_dry_run(settings: Settings, db: Database, memory: Memory, clock: Clock) -> None:
    agent = await make_agent(db, settings)
    fresh = await _episode(db, memory, agent.id, "Sent invoice INV-1 to Acme", 10)
    old = await _episode(db, memory, agent.id, "Globex asked about delivery dates for the pumps", 89)
    archived = await _episode(db, memory, agent.id, "Initech renewed its contract", 150)

    dry, job = await _run(db, memory, dry_run=True)
    assert dry["decayed"] == [{"id": archived, "decay": pytest.approx(1 - 150 / 180, abs=1e-6)}]
    assert dry["archived"] == []
    assert job.status == "done" and job.done == job.total

    clock.advance(days=31)  # ages now 41, 120, 181 days
    dry, _ = await _run(db, memory, dry_run=True)
    assert dry["decayed"] == [{"id": old, "decay": pytest.approx(1 - 120 / 180, abs=1e-6)}]
    assert dry["archived"] == [archived]
    async with db.session_scope() as s:  # dry: nothing changed
        assert {e.id: (e.status, e.decay) for e in (await s.scalars(select(Episode))).all()} == {
            fresh: ("active", 1.0),
            old: ("active", 1.0),
            archived: ("active", 1.0),
        }

    report, job = await _run(db, memory, dry_run=False)
    assert report["archived"] == [archived] and job.report["summary"]["archived"] == 1
    async with db.session_scope() as s:
        rows = {e.id: e for e in (await s.scalars(select(Episode))).all()}
        assert rows[old].decay == pytest.approx(1 - 120 / 180)
        assert rows[archived].status == "archived" and rows[fresh].decay == 1.0
        assert (await s.scalars(select(EpisodeSegment).where(EpisodeSegment.episode_id == archived))).all() == []
        found = await retrieval.semantic(
            session=s, memory=memory, agent_id=agent.id, query="Initech contract", limit=5, actor="t", reason="t"
        )
    assert archived not in {r.episode.id for r in found}  # out of search
    assert archived in await memory.store.ids()  # still in the cold store


async def test_consolidation_at_threshold(settings: Settings, db: Database, memory: Memory) -> None:
    agent = await make_agent(db, settings)
    a = await _episode(db, memory, agent.id, "Invoice INV-77 for Acme Corp was paid in full", 3)
    b = await _episode(db, memory, agent.id, "Invoice INV-77 for Acme Corp was paid in full today", 2)
    c = await _episode(db, memory, agent.id, "Reorder printer toner for the Berlin office", 1)
    report, _ = await _run(db, memory, dry_run=False)
    assert [(p["from"], p["into"]) for p in report["consolidated"]] == [(b, a)]
    assert report["consolidated"][0]["similarity"] >= 0.85
    async with db.session_scope() as s:
        rows = {e.id: e for e in (await s.scalars(select(Episode))).all()}
        assert rows[b].status == "consolidated" and rows[b].consolidated_into == a
        assert rows[a].segment_count == 2 and rows[c].status == "active"
    assert await memory.store.ids() == {a, c}


async def test_reembed_progress_and_delete_leaves_no_orphan(settings: Settings, db: Database, memory: Memory) -> None:
    agent = await make_agent(db, settings)
    ids = [await _episode(db, memory, agent.id, f"Customer {n} paid invoice INV-{n}", n) for n in range(5)]
    async with db.session_scope() as s:
        job = await lifecycle.start_job(session=s, kind="reembed", dry_run=False, created_by=None)
    # A delete racing the re-embed: forget two episodes, then a stale re-embed pass writes their vectors again.
    async with db.session_scope() as s:
        stale = list((await s.scalars(select(Episode).where(Episode.id.in_(ids[:2])))).all())
        await service.forget(
            session=s, memory=memory, agent_id=agent.id, episode_ids=ids[:2], actor=audit.Actor.system(), reader=None
        )
    async with db.session_scope() as s:
        await service.index(session=s, memory=memory, episodes=stale)  # the racing writer
    assert set(ids[:2]) <= await memory.store.ids()
    done = await lifecycle.reembed(db=db, memory=memory, job_id=job.id)
    assert done == 3
    assert await lifecycle.sweep_orphans(db=db, memory=memory) == sorted(ids[:2])
    assert await memory.store.ids() == set(ids[2:])
    async with db.session_scope() as s:
        finished = await lifecycle.get_job(session=s, job_id=job.id)
    assert (finished.status, finished.done, finished.total) == ("done", 3, 3)
