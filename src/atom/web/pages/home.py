"""Home: what needs me — pending proposals, supervision waiting, failed runs, agents demoted today."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession

from atom.deps import SessionDep
from atom.web import dashboard, live
from atom.web.auth import PageRouter, ViewerPage
from atom.web.ui import render

router = PageRouter()


@router.get("/")
async def home(request: Request, user: ViewerPage, session: SessionDep) -> Response:
    counts = await dashboard.counts(session=session)
    return render(request, "home.html", {"title": "What needs me", "counts": counts.as_dict()})


async def _counts(session: AsyncSession) -> dict[str, Any]:
    return (await dashboard.counts(session=session)).as_dict()


@router.get("/live/home")
async def home_events(request: Request, user: ViewerPage) -> Response:
    """The Home counts as server-sent events, sent again whenever they change."""
    return live.watch(request, "home", dashboard.TOPICS, _counts)
