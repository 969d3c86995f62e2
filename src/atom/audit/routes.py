from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from atom.audit import service
from atom.audit.schemas import AuditEventRead, ChainVerification
from atom.deps import DEFAULT_PAGE_LIMIT, CursorQuery, LimitQuery, SessionDep, ViewerDep
from atom.pagination import Page

router = APIRouter(prefix="/api/audit", tags=["audit"])

Filter = Annotated[str | None, Query(max_length=100)]


@router.get("", response_model=Page[AuditEventRead])
async def list_audit_events(
    principal: ViewerDep,
    session: SessionDep,
    actor_type: Filter = None,
    actor_id: Filter = None,
    action: Filter = None,
    resource_type: Filter = None,
    resource_id: Filter = None,
    decision: Filter = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: LimitQuery = DEFAULT_PAGE_LIMIT,
    cursor: CursorQuery = None,
) -> Page[AuditEventRead]:
    filters = service.AuditFilter(
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        decision=decision,
        since=since,
        until=until,
    )
    events, next_cursor = await service.list_events(session=session, filters=filters, limit=limit, cursor=cursor)
    return Page(items=[AuditEventRead.model_validate(e) for e in events], next_cursor=next_cursor)


@router.get("/verify", response_model=ChainVerification)
async def verify_audit_chain(principal: ViewerDep, session: SessionDep) -> ChainVerification:
    return await service.verify_chain(session=session)
