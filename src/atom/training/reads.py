"""Read-only counts and lookups for the dashboard (kept apart from the proposal and supervision logic)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.errors import NotFound
from atom.training.models import (
    AgentProposal,
    BlockedTriggerContext,
    ProposalStatus,
    SupervisionSession,
    SupervisionStatus,
)
from atom.training.proposals import expire_due


async def count_proposals(*, session: AsyncSession, status: ProposalStatus) -> int:
    await expire_due(session=session)
    stmt = select(func.count()).select_from(AgentProposal).where(AgentProposal.status == status.value)
    return int(await session.scalar(stmt) or 0)


async def count_supervision(*, session: AsyncSession, status: SupervisionStatus) -> int:
    stmt = select(func.count()).select_from(SupervisionSession).where(SupervisionSession.status == status.value)
    return int(await session.scalar(stmt) or 0)


async def get_blocked_trigger(*, session: AsyncSession, blocked_trigger_id: str) -> BlockedTriggerContext:
    row = await session.get(BlockedTriggerContext, blocked_trigger_id)
    if row is None:
        raise NotFound(
            f"No blocked trigger {blocked_trigger_id!r}.",
            code="BLOCKED_TRIGGER_NOT_FOUND",
            details={"blocked_trigger_id": blocked_trigger_id},
        )
    return row
