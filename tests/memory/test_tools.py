"""Memory tools in a tool registry: governed by complexity, acting only for the calling agent, token-bounded."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from atom.config import Settings
from atom.db.session import Database
from atom.errors import InvalidInput
from atom.governance import catalogue as governance_catalogue
from atom.memory.models import Episode, EpisodeAccessLog
from atom.memory.runtime import Memory
from atom.memory.tools import register_memory_tools
from atom.runtime.context import ToolContext, current_tool_context
from atom.runtime.tools import ToolRegistry
from tests.support.agents import make_agent


async def _call(registry: ToolRegistry, name: str, **params: object) -> dict[str, object]:
    tool = registry.get(name)
    assert tool is not None
    return await tool.handler(tool.validate(params))


async def test_memory_tools(settings: Settings, db: Database, memory: Memory) -> None:
    catalogue = governance_catalogue.current()
    registry = ToolRegistry(catalogue)
    register_memory_tools(registry, db, memory)
    assert {t.name: t.complexity for t in registry.all()} == {
        "memory_forget": 3,
        "memory_remember": 2,
        "memory_search": 1,
    }
    assert catalogue.get("memory_forget") is not None and catalogue.get("memory_forget").complexity == 3  # type: ignore[union-attr]

    agent, other = await make_agent(db, settings), await make_agent(db, settings)
    with pytest.raises(InvalidInput):
        await _call(registry, "memory_search", query="anything")

    token = current_tool_context.set(ToolContext(settings=settings, agent_id=agent.id, execution_id="x", depth=0))
    try:
        made = await _call(registry, "memory_remember", text="Contoso always pays invoices by wire on the 10th")
        found = await _call(registry, "memory_search", query="how does Contoso pay")
        items = found["episodes"]
        assert isinstance(items, list) and items[0]["episode_id"] == made["episode_id"]
        assert "Contoso" in items[0]["text"] and items[0]["score"] > 0
    finally:
        current_tool_context.reset(token)

    token = current_tool_context.set(ToolContext(settings=settings, agent_id=other.id, execution_id="y", depth=0))
    try:  # another agent neither finds nor deletes it
        assert (await _call(registry, "memory_search", query="Contoso"))["episodes"] == []
        assert (await _call(registry, "memory_forget", episode_ids=[made["episode_id"]]))["deleted"] == 0
    finally:
        current_tool_context.reset(token)

    token = current_tool_context.set(ToolContext(settings=settings, agent_id=agent.id, execution_id="z", depth=0))
    try:
        assert (await _call(registry, "memory_forget", episode_ids=[made["episode_id"]]))["deleted"] == 1
    finally:
        current_tool_context.reset(token)
    async with db.session_scope() as s:
        assert (await s.scalars(select(Episode))).all() == []
        actors = {log.actor for log in (await s.scalars(select(EpisodeAccessLog))).all()}
    assert actors == {f"agent:{agent.id}", f"agent:{other.id}"}


def test_recall_is_token_bounded() -> None:
    from datetime import UTC, datetime

    from atom.memory.retrieval import Recall
    from atom.memory.tools import bounded

    now = datetime.now(UTC)
    found = [Recall(Episode(id=str(i), text="x" * 300, ended_at=now), 1.0 - i / 10) for i in range(5)]
    items = bounded(found, max_tokens=200)  # 800 characters
    assert [len(i["text"]) for i in items] == [300, 300, 200]
