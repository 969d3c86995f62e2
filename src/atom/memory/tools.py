"""The agent's memory tools, governed by complexity: `memory_search` (1), `memory_remember` (2),
`memory_forget` (3).

`register_memory_tools(registry, db, memory)` adds them through the tool registry's own API (which
also classifies them in the governance catalogue); the app's start-up calls it once memory runs.
A tool acts only for the agent whose run calls it (`current_tool_context`), never for another.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from atom.audit import service as audit
from atom.db.session import Database
from atom.errors import InvalidInput
from atom.memory import retrieval, service
from atom.memory.runtime import Memory
from atom.runtime.context import current_tool_context
from atom.runtime.tools import Tool, ToolRegistry

TOOL_NAMES = ("memory_search", "memory_remember", "memory_forget")
CHARS_PER_TOKEN = 4


class SearchParams(BaseModel):
    query: str = Field(min_length=1, max_length=2000, description="What to recall from past episodes.")
    limit: int = Field(default=5, ge=1, le=20)


class RememberParams(BaseModel):
    text: str = Field(min_length=1, max_length=4000, description="A fact worth remembering, self-contained.")


class ForgetParams(BaseModel):
    episode_ids: list[str] = Field(min_length=1, max_length=100, description="Ids of your episodes to delete.")


def _agent_id(tool: str) -> str:
    context = current_tool_context.get()
    if context is None:
        raise InvalidInput(f"{tool} runs only inside an agent run.", code="MEMORY_TOOL_UNAVAILABLE")
    return context.agent_id


def bounded(found: list[retrieval.Recall], max_tokens: int) -> list[dict[str, Any]]:
    """Recalled episodes with their ids and scores, cut to the token budget (about 4 characters a token)."""
    budget = max_tokens * CHARS_PER_TOKEN
    items = []
    for r in found:
        text = r.episode.text
        if len(text) > budget:
            text = text[: max(0, budget)]
        if not text:
            break
        budget -= len(text)
        items.append(
            {
                "episode_id": r.episode.id,
                "score": round(r.score, 4),
                "ended_at": r.episode.ended_at.isoformat(),
                "text": text,
            }
        )
    return items


def register_memory_tools(registry: ToolRegistry, db: Database, memory: Memory) -> None:
    async def memory_search(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, SearchParams)
        agent_id = _agent_id("memory_search")
        async with db.session_scope() as session:
            found = await retrieval.contextual(
                session=session,
                memory=memory,
                agent_id=agent_id,
                query=params.query,
                limit=params.limit,
                actor=f"agent:{agent_id}",
                reason="memory_search tool",
            )
            return {"episodes": bounded(found, memory.settings.memory_recall_max_tokens)}

    async def memory_remember(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, RememberParams)
        agent_id = _agent_id("memory_remember")
        async with db.session_scope() as session:
            episode = await service.remember(
                session=session, memory=memory, agent_id=agent_id, text=params.text, actor=f"agent:{agent_id}"
            )
            return {"episode_id": episode.id}

    async def memory_forget(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, ForgetParams)
        agent_id = _agent_id("memory_forget")
        async with db.session_scope() as session:
            deleted = await service.forget(
                session=session,
                memory=memory,
                agent_id=agent_id,
                episode_ids=params.episode_ids,
                actor=audit.Actor.agent(agent_id),
                reader=None,
            )
            return {"deleted": deleted}

    registry.register(
        Tool(
            "memory_search",
            1,
            "Recall relevant past episodes (with their ids and scores).",
            SearchParams,
            memory_search,
        )
    )
    registry.register(
        Tool("memory_remember", 2, "Store a fact in your episodic memory.", RememberParams, memory_remember)
    )
    registry.register(Tool("memory_forget", 3, "Delete some of your own episodes.", ForgetParams, memory_forget))


def unregister_memory_tools(registry: ToolRegistry) -> None:
    for name in TOOL_NAMES:
        registry.unregister(name)
