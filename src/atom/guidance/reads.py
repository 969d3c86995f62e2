"""Read-only figures for the dashboard's Home (what needs me)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from atom.guidance import requests

# Bus topics after which the figures below may have changed.
TOPICS = (requests.REQUEST_CHANGED,)


async def count_pending_requests(*, session: AsyncSession) -> int:
    """Agent requests still waiting for a person (not yet expired)."""
    return await requests.count_pending(session=session)
