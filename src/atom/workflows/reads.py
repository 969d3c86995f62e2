"""Read-only counts for the dashboard (kept apart from the engine and the definitions)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.workflows.models import RunStatus, WorkflowRun


async def count_runs(*, session: AsyncSession, status: RunStatus, since: datetime) -> int:
    """Runs in `status` created at or after `since`."""
    stmt = (
        select(func.count())
        .select_from(WorkflowRun)
        .where(WorkflowRun.status == status.value, WorkflowRun.created_at >= since)
    )
    return int(await session.scalar(stmt) or 0)
