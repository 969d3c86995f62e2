"""Which agent acts: explicit id -> the chat session's agent -> the workflow's agent -> the default.

Chat sessions and workflows live in other domains; they register a lookup here
(`register_lookup("chat_session", fn)`) so the resolver never changes when they arrive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service
from atom.agents.models import Agent
from atom.errors import NotFound

# (session, reference id) -> the agent id it names, or None
Lookup = Callable[[AsyncSession, str], Awaitable[str | None]]
_lookups: dict[str, Lookup] = {}

RULE_ORDER = ("explicit", "chat_session", "workflow", "default")


def register_lookup(rule: str, lookup: Lookup) -> None:
    if rule not in ("chat_session", "workflow"):
        raise ValueError(f"unknown resolver rule {rule!r}")
    _lookups[rule] = lookup


@dataclass(frozen=True)
class AgentRequest:
    agent_id: str | None = None
    chat_session_id: str | None = None
    workflow_id: str | None = None


@dataclass(frozen=True)
class Resolution:
    agent: Agent
    rule: str
    tried: list[str] = field(default_factory=list)


async def resolve(*, session: AsyncSession, request: AgentRequest, default_agent_id: str | None) -> Resolution:
    tried: list[str] = []

    async def candidate(rule: str, ref: str | None) -> str | None:
        if ref is None:
            return None
        if rule in ("explicit", "default"):
            return ref
        lookup = _lookups.get(rule)
        if lookup is None:
            tried.append(f"{rule}: no {rule.replace('_', ' ')} lookup is registered")
            return None
        return await lookup(session, ref)

    refs = {
        "explicit": request.agent_id,
        "chat_session": request.chat_session_id,
        "workflow": request.workflow_id,
        "default": default_agent_id,
    }
    for rule in RULE_ORDER:
        agent_id = await candidate(rule, refs[rule])
        if agent_id is None:
            if refs[rule] is not None and not any(t.startswith(rule) for t in tried):
                tried.append(f"{rule}: {refs[rule]!r} names no agent")
            continue
        agent = await service.find_agent(session=session, agent_id=agent_id)
        if agent is not None:
            return Resolution(agent=agent, rule=rule, tried=tried)
        if rule == "explicit":  # the caller named an agent: never act as a different one
            raise NotFound(f"No agent with id {agent_id!r}.", code="AGENT_NOT_FOUND", details={"agent_id": agent_id})
        tried.append(f"{rule}: agent {agent_id!r} does not exist")
    raise NotFound(
        "No agent could be resolved: name one explicitly, or set ATOM_DEFAULT_AGENT_ID.",
        code="NO_AGENT_RESOLVED",
        details={"tried": tried or ["nothing was given and no default agent is configured"]},
    )
