"""Cached decisions change the moment the agent changes: in this process and in another one via Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.events.bus import EventBus, RedisBus, get_bus, set_bus
from atom.governance import service as governance
from atom.governance.cache import GovernanceCache, decision_cache
from atom.governance.maturity import MaturityLevel
from atom.governance.policy import GovernanceContext, Outcome
from tests.support.agents import make_agent

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _clean_cache() -> None:
    decision_cache.clear()
    decision_cache.ttl_s = 3600


async def _check(db: Database, settings: Settings, agent_id: str, action: str = "create") -> Outcome:
    async with db.session_scope() as s:
        decision = await governance.check(
            session=s, agent_id=agent_id, action=action, context=GovernanceContext(), settings=settings
        )
    return decision.outcome


async def test_demotion_is_seen_by_the_next_check_in_this_process(db: Database, settings: Settings) -> None:
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    assert await _check(db, settings, agent.id) is Outcome.ALLOW
    assert await _check(db, settings, agent.id) is Outcome.ALLOW  # now served from the cache
    async with db.session_scope() as s:
        await agents_service.record_confidence(
            session=s, agent_id=agent.id, delta=-0.2, reason="bad run", source="test", settings=settings
        )
    assert await _check(db, settings, agent.id) is Outcome.DENY


async def test_pause_and_resume_are_seen_at_once(db: Database, settings: Settings) -> None:
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS)
    assert await _check(db, settings, agent.id) is Outcome.ALLOW
    for status, outcome in (("paused", Outcome.DENY), ("active", Outcome.ALLOW), ("stopped", Outcome.DENY)):
        async with db.session_scope() as s:
            from atom.agents.models import AgentStatus

            await agents_service.set_status(
                session=s, agent_id=agent.id, status=AgentStatus(status), actor=audit.Actor.system(), reason=None
            )
        assert await _check(db, settings, agent.id) is outcome, status


def test_ttl_expires_entries() -> None:
    now = [100.0]
    cache = GovernanceCache(ttl_s=5, clock=lambda: now[0])
    from atom.governance.policy import Decision

    decision = Decision(True, Outcome.ALLOW, "ALLOWED", "", "read", 1, MaturityLevel.STUDENT, MaturityLevel.STUDENT)
    cache.store("a", ("read", "manual", False, False), decision, cache.generation("a"))
    assert cache.lookup("a", ("read", "manual", False, False)) is not None
    now[0] += 6
    assert cache.lookup("a", ("read", "manual", False, False)) is None


async def test_demotion_reaches_a_second_process_through_redis(
    db: Database, settings: Settings, redis_url: str
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    previous_bus: EventBus = get_bus()
    bus = RedisBus(redis_url)
    await bus.start()
    set_bus(bus)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    peer = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("cache_peer.py")),
        settings.database_url or "sqlite+aiosqlite:///" + str(settings.data_dir / "atom.db"),
        redis_url,
        agent.id,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert peer.stdout is not None
        first = await asyncio.wait_for(peer.stdout.readline(), timeout=30)
        assert first.decode().strip() == "READY"
        async with db.session_scope() as s:
            await agents_service.record_confidence(
                session=s, agent_id=agent.id, delta=-0.25, reason="incident", source="test", settings=settings
            )
        changed = await asyncio.wait_for(peer.stdout.readline(), timeout=30)
        assert changed.decode().strip() == "OUTCOME deny"
    finally:
        if peer.stdin:
            peer.stdin.close()
        try:
            await asyncio.wait_for(peer.wait(), timeout=10)
        except TimeoutError:
            peer.kill()
        await bus.stop()
        set_bus(previous_bus)


def test_a_decision_computed_across_a_change_is_not_stored() -> None:
    from atom.governance.policy import Decision

    cache = GovernanceCache(ttl_s=60)
    key = ("read", "manual", False, False)
    decision = Decision(True, Outcome.ALLOW, "ALLOWED", "", "read", 1, MaturityLevel.STUDENT, MaturityLevel.STUDENT)
    generation = cache.generation("a")  # read before the database...
    cache.invalidate("a")  # ...the agent changes meanwhile...
    cache.store("a", key, decision, generation)  # ...so the stale decision is dropped
    assert cache.lookup("a", key) is None
    cache.store("a", key, decision, cache.generation("a"))
    assert cache.lookup("a", key) is not None


def test_the_cache_is_bounded_per_agent() -> None:
    from atom.governance import cache as cache_module
    from atom.governance.policy import Decision

    cache = GovernanceCache(ttl_s=60)
    decision = Decision(False, Outcome.DENY, "X", "", "a", 4, MaturityLevel.AUTONOMOUS, MaturityLevel.STUDENT)
    for i in range(cache_module.MAX_ENTRIES_PER_AGENT + 50):
        cache.store("a", (f"action{i}", "manual", False, False), decision, 0)
    assert len(cache._entries["a"]) == cache_module.MAX_ENTRIES_PER_AGENT


async def test_unknown_actions_are_not_cached(db: Database, settings: Settings) -> None:
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS)
    for _ in range(2):
        assert await _check(db, settings, agent.id, "frobnicate_thing_xyz") is Outcome.DENY
    assert all(key[0] != "frobnicate_thing_xyz" for key in decision_cache._entries.get(agent.id, {}))


async def test_concurrent_confidence_changes_are_not_lost(db: Database, settings: Settings) -> None:
    agent = await make_agent(db, settings, confidence=0.3)

    async def bump() -> None:
        async with db.session_scope() as s:
            await agents_service.record_confidence(
                session=s, agent_id=agent.id, delta=0.01, reason="concurrent", source="test", settings=settings
            )

    await asyncio.gather(*(bump() for _ in range(20)))
    async with db.sessionmaker() as s:
        current = await agents_service.get_agent(session=s, agent_id=agent.id)
    assert round(current.confidence, 4) == 0.5
