"""Guidance over HTTP: run progress, error guidance and outcomes, agent requests, view layouts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from atom.deps import (
    DEFAULT_PAGE_LIMIT,
    CursorQuery,
    LimitQuery,
    OperatorDep,
    SessionDep,
    ViewerDep,
)
from atom.guidance import layouts, operations, requests
from atom.guidance import service as guidance_service
from atom.guidance.classify import ErrorCategory
from atom.guidance.models import RequestStatus, ResolutionOutcome
from atom.guidance.schemas import (
    AnswerCreate,
    ClassifyRead,
    ClassifyRequest,
    LayoutRead,
    LayoutUpdate,
    OutcomeCreate,
    OutcomeRead,
    Progress,
    RequestRead,
    ViewName,
)
from atom.pagination import Page

router = APIRouter(prefix="/api/guidance", tags=["guidance"])

IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
RunStatusQuery = Annotated[str | None, Query(pattern=r"^(running|completed|failed|cancelled|timeout)$")]


@router.get("/agent-runs", response_model=Page[Progress])
async def list_agent_runs(
    principal: ViewerDep,
    session: SessionDep,
    status: RunStatusQuery = None,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[Progress]:
    """Agent runs with their progress, newest first (another person's chat runs are not listed)."""
    rows, next_cursor = await operations.list_operations(
        session=session, limit=limit, cursor=cursor, status=status, agent_id=agent_id, reader=principal
    )
    return Page(items=await guidance_service.agent_progresses(session=session, rows=rows), next_cursor=next_cursor)


@router.get("/agent-runs/{execution_id}", response_model=Progress)
async def agent_run(execution_id: IdPath, principal: ViewerDep, session: SessionDep) -> Progress:
    """An agent run's progress: step n of at most m, what / why / next, and guidance on each error."""
    return await guidance_service.agent_run_progress(session=session, execution_id=execution_id, reader=principal)


@router.get("/workflow-runs/{run_id}", response_model=Progress)
async def workflow_run(run_id: IdPath, principal: ViewerDep, session: SessionDep) -> Progress:
    """A workflow run's progress: steps finished of all, what / why / next, and guidance on a failed step."""
    return await guidance_service.workflow_run_progress(session=session, run_id=run_id)


@router.post("/classify", response_model=ClassifyRead)
async def classify(body: ClassifyRequest, principal: ViewerDep, session: SessionDep) -> ClassifyRead:
    """Which of the seven categories an error is in (status code first, then message), and what to do."""
    return await guidance_service.classify_error(
        session=session, status_code=body.status_code, code=body.code, message=body.message
    )


@router.post("/outcomes", response_model=OutcomeRead, status_code=201)
async def record_outcome(body: OutcomeCreate, principal: OperatorDep, session: SessionDep) -> ResolutionOutcome:
    """Mark whether a resolution worked for one error; it counts toward which resolution is suggested."""
    return await guidance_service.record_outcome(session=session, outcome_in=body, principal=principal)


@router.get("/outcomes", response_model=Page[OutcomeRead])
async def list_outcomes(
    principal: ViewerDep,
    session: SessionDep,
    category: ErrorCategory | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[OutcomeRead]:
    rows, next_cursor = await guidance_service.list_outcomes(
        session=session, category=category, limit=limit, cursor=cursor
    )
    return Page(items=[OutcomeRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/requests", response_model=Page[RequestRead])
async def list_requests(
    principal: ViewerDep,
    session: SessionDep,
    status: RequestStatus | None = None,
    agent_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[RequestRead]:
    """Agents' requests for a decision or a permission (`status=pending`: still answerable)."""
    rows, next_cursor = await requests.list_requests(
        session=session, limit=limit, cursor=cursor, status=status, agent_id=agent_id
    )
    return Page(items=[RequestRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/requests/{request_id}", response_model=RequestRead)
async def get_request(request_id: IdPath, principal: ViewerDep, session: SessionDep) -> RequestRead:
    return RequestRead.model_validate(await requests.get(session=session, request_id=request_id))


@router.post("/requests/{request_id}/answer", response_model=RequestRead)
async def answer_request(
    request_id: IdPath, body: AnswerCreate, principal: OperatorDep, session: SessionDep
) -> RequestRead:
    """Answer with one of the options (a permission needs an approver); the answer goes back to the agent."""
    row = await requests.answer(
        session=session, request_id=request_id, answer=body.answer, principal=principal, note=body.note
    )
    return RequestRead.model_validate(row)


@router.get("/layouts/{view}", response_model=LayoutRead)
async def get_layout(view: ViewName, principal: ViewerDep, session: SessionDep) -> LayoutRead:
    """How you arranged this page's views (the default until you choose)."""
    return await layouts.get_layout(session=session, user_id=principal.user_id, view=view)


@router.put("/layouts/{view}", response_model=LayoutRead)
async def set_layout(view: ViewName, body: LayoutUpdate, principal: ViewerDep, session: SessionDep) -> LayoutRead:
    return await layouts.set_layout(session=session, user_id=principal.user_id, view=view, layout=body.layout)
