"""How each person arranges a run page's views, remembered on the server (one row per person and page).

Views on a run page (a workflow run, an agent run): its progress with what to do about errors, its
timeline (the steps, with their terminal output: logs, input, output), and the canvases the run opened
(live). `stacked` puts them one above the other; `side_by_side` puts progress and timeline in two columns
on a wide screen with the canvases across the width below; `canvas_beside` keeps progress and timeline
in the left column and the canvases in the right one, to watch what the agent shows while it works. A
phone always stacks them.
"""

from __future__ import annotations

from typing import get_args

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.db.base import utcnow
from atom.guidance.models import ViewLayout
from atom.guidance.schemas import LayoutName, LayoutRead, ViewName

DEFAULT_LAYOUT: LayoutName = "stacked"
VIEWS: tuple[str, ...] = get_args(ViewName)
LAYOUTS: tuple[str, ...] = get_args(LayoutName)


async def get_layout(*, session: AsyncSession, user_id: str, view: ViewName) -> LayoutRead:
    row = await session.scalar(select(ViewLayout).where(ViewLayout.user_id == user_id, ViewLayout.view == view))
    if row is None:
        return LayoutRead(view=view, layout=DEFAULT_LAYOUT, remembered=False)
    return LayoutRead(view=view, layout=row.layout, remembered=True)


async def set_layout(*, session: AsyncSession, user_id: str, view: ViewName, layout: LayoutName) -> LayoutRead:
    row = await session.scalar(select(ViewLayout).where(ViewLayout.user_id == user_id, ViewLayout.view == view))
    if row is None:
        try:
            async with session.begin_nested():
                session.add(ViewLayout(user_id=user_id, view=view, layout=layout, updated_at=utcnow()))
                await session.flush()
            return LayoutRead(view=view, layout=layout, remembered=True)
        except IntegrityError:  # the same person saved it at the same moment elsewhere
            row = await session.scalar(select(ViewLayout).where(ViewLayout.user_id == user_id, ViewLayout.view == view))
            assert row is not None
    row.layout = layout
    row.updated_at = utcnow()
    await session.flush()
    return LayoutRead(view=view, layout=layout, remembered=True)
