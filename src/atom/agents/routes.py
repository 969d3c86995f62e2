"""Agents over HTTP: registry, status, confidence, promotion, and the dry-run permissions view."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from atom.agents import service
from atom.agents.models import AgentStatus
from atom.agents.schemas import (
    AgentCreate,
    AgentRead,
    AgentUpdate,
    ConfidenceChange,
    ConfidenceEventRead,
    LevelChangeRead,
    Promotion,
    StatusChange,
)
from atom.audit import service as audit
from atom.deps import (
    DEFAULT_PAGE_LIMIT,
    AdminDep,
    ApproverDep,
    CursorQuery,
    LimitQuery,
    OperatorDep,
    SessionDep,
    SettingsDep,
    ViewerDep,
)
from atom.governance import service as governance
from atom.governance.maturity import MaturityLevel
from atom.graduation import service as graduation
from atom.pagination import Page
from atom.security.models import Role

router = APIRouter(prefix="/api/agents", tags=["agents"])


@router.post("", response_model=AgentRead, status_code=201)
async def create_agent(
    agent_in: AgentCreate, principal: OperatorDep, session: SessionDep, settings: SettingsDep
) -> AgentRead:
    """A new agent is a STUDENT; a starting `confidence` above the STUDENT range needs the approver role."""
    agent = await service.create_agent(
        session=session,
        agent_in=agent_in,
        actor=audit.Actor.user(principal.user_id),
        settings=settings,
        may_promote=principal.has_role(Role.APPROVER),
    )
    return AgentRead.model_validate(agent)


@router.get("", response_model=Page[AgentRead])
async def list_agents(
    principal: ViewerDep,
    session: SessionDep,
    status: AgentStatus | None = None,
    category: str | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[AgentRead]:
    agents, next_cursor = await service.list_agents(
        session=session, limit=limit, cursor=cursor, status=status, category=category
    )
    return Page(items=[AgentRead.model_validate(a) for a in agents], next_cursor=next_cursor)


@router.get("/{agent_id}", response_model=AgentRead)
async def get_agent(agent_id: str, principal: ViewerDep, session: SessionDep) -> AgentRead:
    return AgentRead.model_validate(await service.get_agent(session=session, agent_id=agent_id))


@router.patch("/{agent_id}", response_model=AgentRead)
async def update_agent(agent_id: str, agent_in: AgentUpdate, principal: OperatorDep, session: SessionDep) -> AgentRead:
    agent = await service.update_agent(
        session=session, agent_id=agent_id, agent_in=agent_in, actor=audit.Actor.user(principal.user_id)
    )
    return AgentRead.model_validate(agent)


@router.delete("/{agent_id}", status_code=204, response_class=Response)
async def delete_agent(agent_id: str, principal: AdminDep, session: SessionDep) -> Response:
    await service.delete_agent(session=session, agent_id=agent_id, actor=audit.Actor.user(principal.user_id))
    return Response(status_code=204)


async def _status(
    agent_id: str, status: AgentStatus, body: StatusChange | None, user_id: str, session: SessionDep
) -> AgentRead:
    agent = await service.set_status(
        session=session,
        agent_id=agent_id,
        status=status,
        actor=audit.Actor.user(user_id),
        reason=body.reason if body else None,
    )
    return AgentRead.model_validate(agent)


@router.post("/{agent_id}/pause", response_model=AgentRead)
async def pause_agent(
    agent_id: str, principal: OperatorDep, session: SessionDep, body: StatusChange | None = None
) -> AgentRead:
    return await _status(agent_id, AgentStatus.PAUSED, body, principal.user_id, session)


@router.post("/{agent_id}/resume", response_model=AgentRead)
async def resume_agent(
    agent_id: str, principal: OperatorDep, session: SessionDep, body: StatusChange | None = None
) -> AgentRead:
    return await _status(agent_id, AgentStatus.ACTIVE, body, principal.user_id, session)


@router.post("/{agent_id}/stop", response_model=AgentRead)
async def stop_agent(
    agent_id: str, principal: OperatorDep, session: SessionDep, body: StatusChange | None = None
) -> AgentRead:
    return await _status(agent_id, AgentStatus.STOPPED, body, principal.user_id, session)


@router.get("/{agent_id}/confidence", response_model=Page[ConfidenceEventRead])
async def confidence_history(
    agent_id: str,
    principal: ViewerDep,
    session: SessionDep,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[ConfidenceEventRead]:
    events, next_cursor = await service.confidence_history(
        session=session, agent_id=agent_id, limit=limit, cursor=cursor
    )
    return Page(items=[ConfidenceEventRead.model_validate(e) for e in events], next_cursor=next_cursor)


@router.post("/{agent_id}/confidence", response_model=ConfidenceEventRead, status_code=201)
async def adjust_confidence(
    agent_id: str, change: ConfidenceChange, principal: ApproverDep, session: SessionDep, settings: SettingsDep
) -> ConfidenceEventRead:
    """A manual correction by an approver, recorded in the ledger like any other change."""
    event = await service.record_confidence(
        session=session,
        agent_id=agent_id,
        delta=change.delta,
        reason=change.reason,
        source="manual",
        source_id=principal.user_id,
        settings=settings,
    )
    return ConfidenceEventRead.model_validate(event)


@router.post("/{agent_id}/promote", response_model=AgentRead)
async def promote_agent(
    agent_id: str, promotion: Promotion, principal: ApproverDep, session: SessionDep, settings: SettingsDep
) -> AgentRead:
    """Promote (approver): readiness must pass and the level's graduation exam must have passed; an admin
    may set `override` to promote past the gate (audited with the gaps it skipped)."""
    agent = await graduation.promote(
        session=session,
        settings=settings,
        agent_ref=agent_id,
        to_level=promotion.to_level,
        actor=audit.Actor.user(principal.user_id),
        reason=promotion.reason,
        override=promotion.override,
        actor_is_admin=principal.has_role(Role.ADMIN),
    )
    return AgentRead.model_validate(agent)


@router.get("/{agent_id}/levels", response_model=list[LevelChangeRead])
async def level_history(agent_id: str, principal: ViewerDep, session: SessionDep) -> list[LevelChangeRead]:
    await service.get_agent(session=session, agent_id=agent_id)
    return [LevelChangeRead.model_validate(c) for c in await service.level_history(session=session, agent_id=agent_id)]


class PermissionRow(BaseModel):
    action: str
    complexity: int
    manual: str
    automated: str
    reason_code_manual: str
    reason_code_automated: str


class Permissions(BaseModel):
    agent_id: str
    level: MaturityLevel
    status: AgentStatus
    actions: list[PermissionRow]


@router.get("/{agent_id}/permissions", response_model=Permissions)
async def permissions(agent_id: str, principal: ViewerDep, session: SessionDep) -> Permissions:
    """Dry run: what this agent may do, for every registered action, manual and automated."""
    agent = await service.get_agent(session=session, agent_id=agent_id)
    level, status = MaturityLevel(agent.maturity_level), AgentStatus(agent.status)
    rows = [
        PermissionRow(
            action=name,
            complexity=complexity,
            manual=manual.outcome.value,
            automated=automated.outcome.value,
            reason_code_manual=manual.reason_code,
            reason_code_automated=automated.reason_code,
        )
        for name, complexity, manual, automated in governance.dry_run(level, status.value, agent.id)
    ]
    await audit.record(
        session=session,
        actor=audit.Actor.user(principal.user_id),
        action="governance.dry_run",
        resource_type="agent",
        resource_id=agent.id,
        decision="done",
        details={"actions": len(rows)},
    )
    return Permissions(agent_id=agent.id, level=level, status=status, actions=rows)
