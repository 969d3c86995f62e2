"""Triggers, proposals, supervision and training over HTTP; supervision also streams over SSE."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from atom.audit import service as audit
from atom.deps import (
    DEFAULT_PAGE_LIMIT,
    ApproverDep,
    CursorQuery,
    DatabaseDep,
    LimitQuery,
    OperatorDep,
    SessionDep,
    SettingsDep,
    ViewerDep,
)
from atom.events.bus import get_bus
from atom.pagination import Page
from atom.training import interceptor, proposals, scenario_runs, supervision
from atom.training import sessions as training_sessions
from atom.training.models import ProposalKind, ProposalStatus, SupervisionStatus, TrainingStatus
from atom.training.schemas import (
    ApprovalRead,
    ApproveRequest,
    CommandRequest,
    CompleteRequest,
    OverrideRequest,
    ProposalRead,
    RatingRequest,
    RejectRequest,
    RoutingRead,
    SupervisionRead,
    TrainingRead,
    TriggerRequest,
)

router = APIRouter(prefix="/api", tags=["training"])


@router.post("/triggers", response_model=RoutingRead)
async def fire_trigger(
    body: TriggerRequest, principal: OperatorDep, db: DatabaseDep, settings: SettingsDep
) -> RoutingRead:
    """Fire a trigger with a plan; the interceptor routes it by the agent's maturity."""
    result = await interceptor.intercept(
        db=db,
        settings=settings,
        agent_id=body.agent_id,
        trigger=interceptor.TriggerInfo(
            source=body.source,
            kind=body.kind,
            payload=body.payload,
            executor=body.executor,
            actor_user_id=principal.user_id,
        ),
        plan=body.plan,
    )
    return RoutingRead(
        route=result.route,
        agent_id=result.agent_id,
        agent_level=result.agent_level,
        reason=result.reason,
        blocked_trigger_id=result.blocked_trigger_id,
        proposal_id=result.proposal_id,
        supervision_session_id=result.supervision_session_id,
        run=result.run.as_dict() if result.run else None,
        extra=result.extra,
    )


@router.get("/proposals", response_model=Page[ProposalRead])
async def list_proposals(
    principal: ViewerDep,
    session: SessionDep,
    status: ProposalStatus | None = None,
    kind: ProposalKind | None = None,
    agent_id: str | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ProposalRead]:
    rows, next_cursor = await proposals.list_proposals(
        session=session, status=status, kind=kind, agent_id=agent_id, limit=limit, cursor=cursor
    )
    return Page(items=[ProposalRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/proposals/{proposal_id}", response_model=ProposalRead)
async def show_proposal(proposal_id: str, principal: ViewerDep, session: SessionDep) -> ProposalRead:
    return ProposalRead.model_validate(await proposals.get(session=session, proposal_id=proposal_id))


@router.post("/proposals/{proposal_id}/approve", response_model=ApprovalRead)
async def approve_proposal(
    proposal_id: str, body: ApproveRequest, principal: ApproverDep, db: DatabaseDep, settings: SettingsDep
) -> ApprovalRead:
    approval = await proposals.approve(
        db=db,
        settings=settings,
        proposal_id=proposal_id,
        approver_id=principal.user_id,
        seen_hash=body.plan_hash,
        modified_plan=body.plan,
        reason=body.reason,
    )
    return ApprovalRead(proposal=ProposalRead.model_validate(approval.proposal), training_id=approval.training_id)


@router.post("/proposals/{proposal_id}/reject", response_model=ProposalRead)
async def reject_proposal(
    proposal_id: str, body: RejectRequest, principal: ApproverDep, session: SessionDep, settings: SettingsDep
) -> ProposalRead:
    proposal = await proposals.reject(
        session=session, proposal_id=proposal_id, approver_id=principal.user_id, reason=body.reason, settings=settings
    )
    return ProposalRead.model_validate(proposal)


@router.get("/supervision", response_model=Page[SupervisionRead])
async def list_supervision(
    principal: ViewerDep,
    session: SessionDep,
    status: SupervisionStatus | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[SupervisionRead]:
    rows, next_cursor = await supervision.list_sessions(session=session, status=status, limit=limit, cursor=cursor)
    return Page(items=[SupervisionRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/supervision/{session_id}", response_model=SupervisionRead)
async def show_supervision(session_id: str, principal: ViewerDep, session: SessionDep) -> SupervisionRead:
    return SupervisionRead.model_validate(await supervision.get(session=session, session_id=session_id))


@router.post("/supervision/{session_id}/commands", response_model=SupervisionRead)
async def supervision_command(
    session_id: str, body: CommandRequest, principal: OperatorDep, session: SessionDep
) -> SupervisionRead:
    row = await supervision.command(
        session=session,
        session_id=session_id,
        cmd=body.command,
        params=body.params,
        actor=audit.Actor.user(principal.user_id),
    )
    return SupervisionRead.model_validate(row)


@router.post("/supervision/{session_id}/rating", response_model=SupervisionRead)
async def rate_supervision(
    session_id: str, body: RatingRequest, principal: OperatorDep, session: SessionDep, settings: SettingsDep
) -> SupervisionRead:
    row = await supervision.rate(
        session=session,
        session_id=session_id,
        rating=body.rating,
        actor=audit.Actor.user(principal.user_id),
        settings=settings,
    )
    return SupervisionRead.model_validate(row)


@router.get("/supervision/{session_id}/events", response_class=StreamingResponse)
async def supervision_events(
    session_id: str, request: Request, principal: OperatorDep, db: DatabaseDep, settings: SettingsDep
) -> StreamingResponse:
    """Server-sent events of the run's steps. Connecting counts as a supervisor (a queued run starts)."""
    async with db.session_scope() as session:
        await supervision.get(session=session, session_id=session_id)

    async def stream() -> AsyncIterator[bytes]:
        async with (
            get_bus().subscribe(supervision.topic(session_id)) as events,
            supervision.supervising(db, settings, session_id),
        ):
            async with db.session_scope() as session:
                row = await supervision.get(session=session, session_id=session_id)
                snapshot: dict[str, object] = {"type": "snapshot", "status": row.status, "steps": row.steps}
            yield _sse(snapshot)
            if SupervisionStatus(row.status).finished:
                return
            async for event in events:
                yield _sse(event)
                if event.get("type") == "finished" or await request.is_disconnected():
                    return

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


def _sse(event: dict[str, object]) -> bytes:
    return f"event: {event.get('type', 'message')}\ndata: {json.dumps(event, default=str)}\n\n".encode()


@router.get("/training", response_model=Page[TrainingRead])
async def list_training(
    principal: ViewerDep,
    session: SessionDep,
    status: TrainingStatus | None = None,
    agent_id: str | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[TrainingRead]:
    rows, next_cursor = await training_sessions.list_sessions(
        session=session, status=status, agent_id=agent_id, limit=limit, cursor=cursor
    )
    return Page(items=[TrainingRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("/training/{training_id}/complete", response_model=TrainingRead)
async def complete_training(
    training_id: str, body: CompleteRequest, principal: ApproverDep, db: DatabaseDep, settings: SettingsDep
) -> TrainingRead:
    """A person closes a scheduled session with a score (RULES.md's band moves confidence)."""
    async with db.session_scope() as session:
        training = await training_sessions.complete(
            session=session,
            training_id=training_id,
            performance=body.performance,
            duration_hours=body.duration_hours,
            actor=audit.Actor.user(principal.user_id),
            settings=settings,
        )
        read = TrainingRead.model_validate(training)
    await scenario_runs.auto_promote(db=db, settings=settings, agent_id=read.agent_id, moment="training.completed")
    return read


@router.post("/training/{training_id}/override", response_model=TrainingRead)
async def override_training(
    training_id: str, body: OverrideRequest, principal: ApproverDep, session: SessionDep
) -> TrainingRead:
    training = await training_sessions.override(
        session=session, training_id=training_id, hours=body.hours, actor=audit.Actor.user(principal.user_id)
    )
    return TrainingRead.model_validate(training)
