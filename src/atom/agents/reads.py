"""Read-only queries for the dashboard (kept apart from the registry's logic)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents.models import Agent, LevelChange


async def demotions_since(*, session: AsyncSession, since: datetime, limit: int) -> list[tuple[LevelChange, Agent]]:
    """Demotions at or after `since`, newest first, each with its agent."""
    stmt = (
        select(LevelChange, Agent)
        .join(Agent, Agent.id == LevelChange.agent_id)
        .where(LevelChange.kind == "demotion", LevelChange.created_at >= since)
        .order_by(LevelChange.id.desc())
        .limit(limit)
    )
    return [(change, agent) for change, agent in (await session.execute(stmt)).all()]


async def names_by_id(*, session: AsyncSession, agent_ids: set[str]) -> dict[str, str]:
    """Agent names for a set of ids (unknown ids are left out)."""
    if not agent_ids:
        return {}
    rows = await session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(agent_ids)))
    return {agent_id: name for agent_id, name in rows.all()}
