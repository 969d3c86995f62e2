"""Chat sessions, messages (streamed as server-sent events or answered whole) and agent executions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from atom.audit import service as audit
from atom.chat import service
from atom.chat.driver import RunStream, runtime_for, sse_body
from atom.chat.models import ExecutionStatus
from atom.chat.routing import TriggerRouted
from atom.chat.runtime import RunRequest, cancel_run
from atom.chat.schemas import (
    CancelRead,
    ExecuteRequest,
    ExecutionRead,
    MessageCreate,
    MessageRead,
    RoutedRead,
    SessionCreate,
    SessionDetail,
    SessionRead,
)
from atom.deps import (
    DEFAULT_PAGE_LIMIT,
    CursorQuery,
    DatabaseDep,
    LimitQuery,
    OperatorDep,
    SessionDep,
    SettingsDep,
    ViewerDep,
)
from atom.governance.policy import TriggerKind
from atom.pagination import Page

router = APIRouter(prefix="/api/chat", tags=["chat"])
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@router.post("/sessions", response_model=SessionRead, status_code=201)
async def create_session(body: SessionCreate, principal: OperatorDep, session: SessionDep) -> Any:
    return await service.create_session(
        session=session, agent_ref=body.agent, user_id=principal.user_id, title=body.title
    )


@router.get("/sessions", response_model=Page[SessionRead])
async def list_sessions(
    principal: ViewerDep,
    session: SessionDep,
    agent_id: str | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    rows, next_cursor = await service.list_sessions(
        session=session, agent_id=agent_id, user_id=service.sessions_visible_to(principal), limit=limit, cursor=cursor
    )
    return Page[SessionRead](items=[SessionRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/sessions/{session_id}", response_model=SessionDetail)
async def get_session(session_id: str, principal: ViewerDep, session: SessionDep, settings: SettingsDep) -> Any:
    row = await service.get_session(session=session, session_id=session_id, reader=principal)
    rows = await service.messages(session=session, session_id=session_id, limit=settings.chat_history_messages)
    return SessionDetail(
        **SessionRead.model_validate(row).model_dump(), messages=[MessageRead.model_validate(m) for m in rows]
    )


@router.post("/sessions/{session_id}/messages", response_model=ExecutionRead)
async def send_message(
    session_id: str,
    body: MessageCreate,
    request: Request,
    principal: OperatorDep,
    db: DatabaseDep,
    settings: SettingsDep,
) -> Any:
    """Send a message. `stream: true` (default): server-sent events (docs/chat.md); else the execution at the end."""
    async with db.session_scope() as session:
        chat = await service.get_session(session=session, session_id=session_id, reader=principal)
    run = RunRequest(
        agent_ref=chat.agent_id,
        input=body.content,
        trigger="chat",
        session_id=session_id,
        user_id=principal.user_id,
        model=body.model,
        stream=body.stream,
    )
    return await _answer(request, db, settings, run, stream=body.stream)


@router.post(
    "/execute",
    response_model=ExecutionRead,
    responses={202: {"model": RoutedRead, "description": "An automated run routed to training or supervision."}},
)
async def execute(
    body: ExecuteRequest, request: Request, principal: OperatorDep, db: DatabaseDep, settings: SettingsDep
) -> Any:
    """Run an agent once on a task (no chat session). The execution tells whether it succeeded. An automated
    run goes through the trigger interceptor: routed to training or supervision, it answers 202 (RoutedRead)."""
    run = RunRequest(
        agent_ref=body.agent,
        input=body.task,
        trigger="api",
        trigger_kind=TriggerKind(body.trigger),
        user_id=principal.user_id,
        model=body.model,
        stream=body.stream,
    )
    return await _answer(request, db, settings, run, stream=body.stream)


async def _answer(request: Request, db: Any, settings: Any, run: RunRequest, *, stream: bool) -> Any:
    async with db.session_scope() as session:  # unknown agent -> 404 before anything starts
        from atom.agents import service as agents_service

        await agents_service.resolve_ref(session=session, ref=run.agent_ref)
    runtime = await runtime_for(request.app.state, db, settings)  # no provider -> 503 saying how to add one
    handle = RunStream(runtime, run, settings.chat_stream_buffer_events)
    if stream:
        return StreamingResponse(sse_body(handle), media_type="text/event-stream", headers=SSE_HEADERS)
    try:
        result = await handle.task
    except TriggerRouted as routed:
        return JSONResponse(RoutedRead.model_validate({"code": routed.code, **routed.details}).model_dump(), 202)
    finally:
        await handle.cancel()
    async with db.session_scope() as session:
        return ExecutionRead.model_validate(
            await service.get_execution(session=session, execution_id=result.execution_id)
        )


@router.get("/executions", response_model=Page[ExecutionRead])
async def list_executions(
    principal: ViewerDep,
    session: SessionDep,
    agent_id: str | None = None,
    session_id: str | None = None,
    status: ExecutionStatus | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Any:
    rows, next_cursor = await service.list_executions(
        session=session,
        agent_id=agent_id,
        session_id=session_id,
        status=status,
        limit=limit,
        cursor=cursor,
        reader=principal,
    )
    return Page[ExecutionRead](items=[ExecutionRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/executions/{execution_id}", response_model=ExecutionRead)
async def get_execution(execution_id: str, principal: ViewerDep, session: SessionDep) -> Any:
    return await service.get_execution(session=session, execution_id=execution_id, reader=principal)


@router.post("/executions/{execution_id}/cancel", response_model=CancelRead)
async def cancel_execution(execution_id: str, principal: OperatorDep, db: DatabaseDep) -> Any:
    """Terminate a running execution (in this server process). Its partial output stays on the record."""
    async with db.session_scope() as session:
        row = await service.get_execution(session=session, execution_id=execution_id, reader=principal)
        cancelled = row.status == ExecutionStatus.RUNNING.value and cancel_run(execution_id)
        await audit.record(
            session=session,
            actor=audit.Actor.user(principal.user_id),
            action="agent.execution.cancel",
            resource_type="agent_execution",
            resource_id=execution_id,
            decision="cancelled" if cancelled else "not_running",
        )
        status = ExecutionStatus.CANCELLED.value if cancelled else row.status
    return CancelRead(execution_id=execution_id, cancelled=cancelled, status=status)
