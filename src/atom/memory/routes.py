"""Episodic memory over HTTP: list, show (sequential), search, remember, export, forget, maintain, reembed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from atom.audit import service as audit
from atom.deps import (
    DEFAULT_PAGE_LIMIT,
    AdminDep,
    ApproverDep,
    CursorQuery,
    DatabaseDep,
    LimitQuery,
    OperatorDep,
    SessionDep,
    ViewerDep,
)
from atom.memory import lifecycle, retrieval, service
from atom.memory.app import jobs_of, memory_of
from atom.memory.models import EpisodeStatus
from atom.memory.schemas import (
    AccessLogRead,
    CanvasActionRead,
    EpisodeDetail,
    EpisodeRead,
    ForgetIn,
    ForgetResult,
    JobRead,
    MaintainIn,
    RecallRead,
    ReembedIn,
    RememberIn,
    SearchIn,
    SearchResult,
    SegmentRead,
)
from atom.pagination import Page

router = APIRouter(prefix="/api/memory", tags=["memory"])


def _recall(r: retrieval.Recall) -> RecallRead:
    return RecallRead(episode=EpisodeRead.model_validate(r.episode), score=r.score, why=r.why)


@router.get("/episodes", response_model=Page[EpisodeRead])
async def list_episodes(
    principal: ViewerDep,
    session: SessionDep,
    agent: str | None = None,
    status: EpisodeStatus | None = None,
    since: datetime | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[EpisodeRead]:
    agent_id = await service.require_agent(session=session, agent_ref=agent) if agent else None
    rows, next_cursor = await service.list_episodes(
        session=session,
        agent_id=agent_id,
        reader=principal,
        status=status.value if status else None,
        since=since,
        limit=limit,
        cursor=cursor,
    )
    return Page(items=[EpisodeRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("/episodes", response_model=EpisodeRead, status_code=201)
async def remember(body: RememberIn, principal: OperatorDep, session: SessionDep, request: Request) -> EpisodeRead:
    memory = memory_of(request.app.state)
    agent_id = await service.require_agent(session=session, agent_ref=body.agent)
    episode = await service.remember(
        session=session, memory=memory, agent_id=agent_id, text=body.text, actor=f"user:{principal.user_id}"
    )
    return EpisodeRead.model_validate(episode)


@router.get("/episodes/{episode_id}", response_model=EpisodeDetail)
async def show_episode(
    episode_id: str, principal: ViewerDep, session: SessionDep, request: Request, reason: str = ""
) -> EpisodeDetail:
    memory = memory_of(request.app.state)
    found = await retrieval.sequential(
        session=session,
        memory=memory,
        episode_id=episode_id,
        actor=f"user:{principal.user_id}",
        reason=reason[:500] or "shown",
        reader=principal,
    )
    return EpisodeDetail(
        episode=EpisodeRead.model_validate(found.episode),
        segments=[SegmentRead.model_validate(s) for s in found.segments],
        context=found.why,
        canvas_actions=[CanvasActionRead.model_validate(a) for a in found.canvas],
    )


@router.post("/search", response_model=SearchResult)
async def search(body: SearchIn, principal: ViewerDep, session: SessionDep, request: Request) -> SearchResult:
    memory = memory_of(request.app.state)
    agent_id = await service.require_agent(session=session, agent_ref=body.agent)
    found = await retrieval.search(
        session=session,
        memory=memory,
        agent_id=agent_id,
        mode=body.mode,
        query=body.query,
        days=body.days,
        limit=body.limit,
        actor=f"user:{principal.user_id}",
        reason=body.reason or "searched",
        reader=principal,
    )
    return SearchResult(mode=body.mode, items=[_recall(r) for r in found])


@router.get(
    "/agents/{agent}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "One episode per line."}},
)
async def export(agent: str, principal: OperatorDep, session: SessionDep, db: DatabaseDep) -> StreamingResponse:
    agent_id = await service.require_agent(session=session, agent_ref=agent)  # unknown or hidden: 404
    await service.log_access(
        session=session,
        actor=f"user:{principal.user_id}",
        agent_id=agent_id,
        mode="export",
        query="",
        reason="export",
        scores={},
    )

    async def lines() -> AsyncIterator[str]:
        async with db.session_scope() as s:
            async for line in service.export_lines(session=s, agent_id=agent_id, reader=principal):
                yield line

    return StreamingResponse(
        lines(),
        media_type="application/x-ndjson",
        headers={"Content-Disposition": f'attachment; filename="memory-{agent_id}.jsonl"'},
    )


@router.delete("/agents/{agent}", response_model=ForgetResult)
async def forget(
    agent: str, principal: AdminDep, session: SessionDep, request: Request, body: ForgetIn | None = None
) -> ForgetResult:
    memory = memory_of(request.app.state)
    agent_id = await service.require_agent(session=session, agent_ref=agent)
    deleted = await service.forget(
        session=session,
        memory=memory,
        agent_id=agent_id,
        episode_ids=body.episode_ids if body else None,
        actor=audit.Actor.user(principal.user_id),
        reader=principal,
    )
    return ForgetResult(agent_id=agent_id, deleted=deleted)


@router.post("/maintain", response_model=JobRead, status_code=202)
async def maintain(
    body: MaintainIn, principal: AdminDep, session: SessionDep, db: DatabaseDep, request: Request
) -> JobRead:
    memory = memory_of(request.app.state)
    job = await lifecycle.start_job(
        session=session, kind="maintain", dry_run=body.dry_run, created_by=principal.user_id
    )
    await session.commit()
    jobs_of(request.app.state, db).spawn(
        lifecycle.maintain(db=db, memory=memory, job_id=job.id, dry_run=body.dry_run), f"memory-maintain-{job.id}"
    )
    return JobRead.model_validate(job)


@router.post("/reembed", response_model=JobRead, status_code=202)
async def reembed(
    body: ReembedIn, principal: AdminDep, session: SessionDep, db: DatabaseDep, request: Request
) -> JobRead:
    memory = memory_of(request.app.state)
    agent_id = await service.require_agent(session=session, agent_ref=body.agent) if body.agent else None
    job = await lifecycle.start_job(session=session, kind="reembed", dry_run=False, created_by=principal.user_id)
    await session.commit()
    jobs_of(request.app.state, db).spawn(
        lifecycle.reembed(db=db, memory=memory, job_id=job.id, agent_id=agent_id), f"memory-reembed-{job.id}"
    )
    return JobRead.model_validate(job)


@router.get("/jobs/{job_id}", response_model=JobRead)
async def get_job(job_id: str, principal: ViewerDep, session: SessionDep) -> JobRead:
    return JobRead.model_validate(await lifecycle.get_job(session=session, job_id=job_id))


@router.get("/access-logs", response_model=Page[AccessLogRead])
async def access_logs(
    principal: ApproverDep,
    session: SessionDep,
    agent: str | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[AccessLogRead]:
    agent_id = await service.require_agent(session=session, agent_ref=agent) if agent else None
    rows, next_cursor = await service.access_logs(session=session, agent_id=agent_id, limit=limit, cursor=cursor)
    return Page(items=[AccessLogRead.model_validate(r) for r in rows], next_cursor=next_cursor)
