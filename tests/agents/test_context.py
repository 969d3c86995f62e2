"""Which agent acts: explicit -> chat session -> workflow -> default, with the rule that resolved."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import context
from atom.config import Settings
from atom.db.session import Database
from atom.errors import NotFound
from tests.support.agents import make_agent


@pytest.fixture
def lookups() -> Iterator[dict[str, str]]:
    table: dict[str, str] = {}

    async def by_table(_session: AsyncSession, ref: str) -> str | None:
        return table.get(ref)

    context.register_lookup("chat_session", by_table)
    context.register_lookup("workflow", by_table)
    yield table
    context._lookups.clear()


async def test_resolution_order(db: Database, settings: Settings, lookups: dict[str, str]) -> None:
    explicit, chat, flow, default = [await make_agent(db, settings) for _ in range(4)]
    lookups.update({"chat-1": chat.id, "wf-1": flow.id})
    async with db.sessionmaker() as s:
        full = context.AgentRequest(agent_id=explicit.id, chat_session_id="chat-1", workflow_id="wf-1")
        assert (await context.resolve(session=s, request=full, default_agent_id=default.id)).rule == "explicit"
        no_explicit = context.AgentRequest(chat_session_id="chat-1", workflow_id="wf-1")
        resolved = await context.resolve(session=s, request=no_explicit, default_agent_id=default.id)
        assert (resolved.rule, resolved.agent.id) == ("chat_session", chat.id)
        gone_chat = context.AgentRequest(chat_session_id="gone", workflow_id="wf-1")
        resolved = await context.resolve(session=s, request=gone_chat, default_agent_id=default.id)
        assert (resolved.rule, resolved.agent.id) == ("workflow", flow.id)
        assert resolved.tried == ["chat_session: 'gone' names no agent"]
        resolved = await context.resolve(session=s, request=context.AgentRequest(), default_agent_id=default.id)
        assert (resolved.rule, resolved.agent.id) == ("default", default.id)


async def test_a_named_agent_that_does_not_exist_is_never_replaced(db: Database, settings: Settings) -> None:
    default = await make_agent(db, settings)
    async with db.sessionmaker() as s:
        with pytest.raises(NotFound) as refused:
            await context.resolve(
                session=s, request=context.AgentRequest(agent_id="ghost"), default_agent_id=default.id
            )
    assert refused.value.code == "AGENT_NOT_FOUND"


async def test_nothing_resolves_is_a_clear_refusal(db: Database, settings: Settings) -> None:
    async with db.sessionmaker() as s:
        with pytest.raises(NotFound) as refused:
            await context.resolve(session=s, request=context.AgentRequest(workflow_id="wf-9"), default_agent_id=None)
    assert refused.value.code == "NO_AGENT_RESOLVED"
    assert refused.value.details["tried"] == ["workflow: no workflow lookup is registered"]
