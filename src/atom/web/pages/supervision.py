"""Live supervision: the supervised runs (waiting, running, finished) and a run's page where an operator
watches each step stream in and pauses, resumes, corrects (the next step's input, as JSON) or terminates.

`static/js/supervise.js` opens `GET /api/supervision/{id}/events` (server-sent events, the session
cookie; connecting counts as a supervisor, so a queued run starts) and sends commands to
`POST /api/supervision/{id}/commands` with the CSRF header. Each command answers the session, so the
intervention count shown is the stored one.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request
from fastapi.responses import Response

from atom.agents import reads as agents_reads
from atom.deps import SessionDep
from atom.training import supervision as supervision_service
from atom.training.models import SupervisionStatus
from atom.web.auth import PageRouter, ViewerPage
from atom.web.ui import render

router = PageRouter()

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$")]
STATUS_FILTERS = ("all", *(s.value for s in SupervisionStatus))


@router.get("/supervision")
async def index(
    request: Request,
    user: ViewerPage,
    session: SessionDep,
    status: Annotated[str, Query(max_length=20)] = "all",
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    if status not in STATUS_FILTERS:
        status = "all"
    rows, next_cursor = await supervision_service.list_sessions(
        session=session, status=None if status == "all" else SupervisionStatus(status), limit=50, cursor=cursor
    )
    names = await agents_reads.names_by_id(session=session, agent_ids={r.agent_id for r in rows})
    return render(
        request,
        "supervision_list.html",
        {
            "title": "Supervision",
            "rows": list(reversed(rows)),
            "names": names,
            "status": status,
            "filters": STATUS_FILTERS,
            "next_cursor": next_cursor,
        },
    )


@router.get("/supervision/{session_id}")
async def supervise(request: Request, session_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    row = await supervision_service.get(session=session, session_id=session_id)
    names = await agents_reads.names_by_id(session=session, agent_ids={row.agent_id})
    return render(
        request,
        "supervision.html",
        {
            "title": "Supervised run",
            "row": row,
            "agent_name": names.get(row.agent_id, row.agent_id),
            "finished": SupervisionStatus(row.status).finished,
        },
    )
