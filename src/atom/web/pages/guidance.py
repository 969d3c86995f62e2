"""Guidance pages: agent requests (the inbox where a person answers), an agent run's progress page, the
live progress of agent and workflow runs (shown on the run and chat pages), marking whether a
resolution worked, and the remembered layout of a run page's views (docs/guidance.md).

Live sources: `/live/requests` (the pending requests), `/live/guidance/agent-runs/{id}` and
`/live/guidance/workflow-runs/{id}` (a run's `Progress`); `static/js/guidance.js` draws them with
textContent only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import reads as agents_reads
from atom.deps import SessionDep
from atom.errors import InvalidInput, NotFound
from atom.guidance import layouts, operations, requests
from atom.guidance import service as guidance_service
from atom.guidance.schemas import OutcomeCreate, RequestRead, RequestStatus
from atom.security.principal import Principal
from atom.web import live
from atom.web.auth import OperatorForm, PageRouter, ViewerForm, ViewerPage
from atom.web.ui import redirect, render, safe_next
from atom.workflows.machine import RUN_CANCELLED, RUN_CHANGED, WORKFLOW_COMPLETED

router = PageRouter()

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
SETTLED_SHOWN = 20
PENDING_SHOWN = 100  # the newest; the count is of all
MAX_NOTE = 2000
AGENT_TOPICS = (operations.OPERATION_CHANGED, guidance_service.OUTCOME_RECORDED)
WORKFLOW_TOPICS = (RUN_CHANGED, WORKFLOW_COMPLETED, RUN_CANCELLED, guidance_service.OUTCOME_RECORDED)


# --- agent requests -----------------------------------------------------------------------------


async def inbox_state(session: AsyncSession) -> dict[str, Any]:
    """The pending requests as JSON (the page and its live updates), with their agents' names."""
    rows, _ = await requests.list_requests(
        session=session, limit=PENDING_SHOWN, cursor=None, status=RequestStatus.PENDING
    )
    names = await agents_reads.names_by_id(session=session, agent_ids={r.agent_id for r in rows})
    items = []
    for row in rows:
        item = RequestRead.model_validate(row).model_dump(mode="json")
        item["agent_name"] = names.get(row.agent_id, row.agent_id)
        items.append(item)
    return {"pending": await requests.count_pending(session=session), "items": items}


@router.get("/requests")
async def inbox(request: Request, user: ViewerPage, session: SessionDep) -> Response:
    state = await inbox_state(session)
    settled, _ = await requests.list_requests(session=session, limit=SETTLED_SHOWN, cursor=None)
    settled = [r for r in settled if r.status != RequestStatus.PENDING.value]
    names = await agents_reads.names_by_id(session=session, agent_ids={r.agent_id for r in settled})
    return render(
        request,
        "requests.html",
        {"title": "Agent requests", "state": state, "settled": settled, "names": names},
    )


@router.get("/live/requests")
async def inbox_events(request: Request, user: ViewerPage) -> Response:
    return live.watch(request, "requests", (requests.REQUEST_CHANGED,), inbox_state)


@router.post("/requests/{request_id}/answer")
async def answer(request: Request, request_id: IdPath, form_user: OperatorForm, session: SessionDep) -> Response:
    user, form = form_user
    note = form.get("note").strip()[:MAX_NOTE] or None
    await requests.answer(
        session=session, request_id=request_id, answer=form.get("answer"), principal=user.principal, note=note
    )
    return redirect("/requests?flash=request_answered")


# --- progress -----------------------------------------------------------------------------------


async def agent_state(session: AsyncSession, execution_id: str, reader: Principal) -> dict[str, Any]:
    try:
        progress = await guidance_service.agent_run_progress(session=session, execution_id=execution_id, reader=reader)
    except NotFound:
        return {"recorded": False, "subject_id": execution_id}
    return {"recorded": True, **progress.model_dump(mode="json")}


async def workflow_state(session: AsyncSession, run_id: str) -> dict[str, Any]:
    progress = await guidance_service.workflow_run_progress(session=session, run_id=run_id)
    return {"recorded": True, **progress.model_dump(mode="json")}


@router.get("/agent-runs/{execution_id}")
async def agent_run_page(request: Request, execution_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    progress = await guidance_service.agent_run_progress(
        session=session, execution_id=execution_id, reader=user.principal
    )
    layout = await layouts.get_layout(session=session, user_id=user.principal.user_id, view="agent_run")
    return render(
        request,
        "agent_run.html",
        {"title": progress.title, "progress": progress.model_dump(mode="json"), "layout": layout.layout},
    )


@router.get("/live/guidance/agent-runs/{execution_id}")
async def agent_run_events(request: Request, execution_id: IdPath, user: ViewerPage) -> Response:
    """A run's progress; `recorded: false` until its first step is written (a chat page opens it at once)."""

    async def compute(s: AsyncSession) -> dict[str, Any]:
        return await agent_state(s, execution_id, user.principal)

    # what a run shows depends on who asks (a chat's run is its author's): one shared value per reader
    return live.watch(request, f"guidance-agent-run:{execution_id}:{user.principal.user_id}", AGENT_TOPICS, compute)


@router.get("/live/guidance/workflow-runs/{run_id}")
async def workflow_run_events(request: Request, run_id: IdPath, user: ViewerPage, session: SessionDep) -> Response:
    await workflow_state(session, run_id)  # unknown run -> 404 before streaming

    async def compute(s: AsyncSession) -> dict[str, Any]:
        return await workflow_state(s, run_id)

    return live.watch(request, f"guidance-workflow-run:{run_id}", WORKFLOW_TOPICS, compute)


# --- marking a resolution, arranging the views --------------------------------------------------


@router.post("/guidance/outcomes")
async def mark(request: Request, form_user: OperatorForm, session: SessionDep) -> Response:
    user, form = form_user
    worked = form.get("worked")
    if worked not in ("yes", "no"):
        raise InvalidInput("Say whether it worked (yes or no).", code="INVALID_OUTCOME")
    try:
        outcome_in = OutcomeCreate(
            subject_type=form.get("subject_type"),
            subject_id=form.get("subject_id"),
            resolution_id=form.get("resolution_id"),
            worked=worked == "yes",
        )
    except ValidationError as exc:
        raise InvalidInput("That error or resolution does not exist.", code="INVALID_OUTCOME") from exc
    await guidance_service.record_outcome(session=session, outcome_in=outcome_in, principal=user.principal)
    return redirect(_back(form.get("back"), "outcome_recorded"))


@router.post("/guidance/layouts/{view}")
async def arrange(
    request: Request, view: Annotated[str, Path(max_length=32)], form_user: ViewerForm, session: SessionDep
) -> Response:
    user, form = form_user
    layout = form.get("layout")
    if view not in layouts.VIEWS or layout not in layouts.LAYOUTS:
        raise InvalidInput("Choose side by side, stacked or canvases beside.", code="INVALID_LAYOUT")
    await layouts.set_layout(session=session, user_id=user.principal.user_id, view=view, layout=layout)  # type: ignore[arg-type]
    return redirect(_back(form.get("back"), "layout_saved"))


def _back(target: str, flash: str) -> str:
    path = safe_next(target)
    return path + ("&" if "?" in path else "?") + f"flash={flash}"
