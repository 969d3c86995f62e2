from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from atom.audit import checkpoints as checkpoint_store
from atom.audit import service
from atom.audit.schemas import AuditEventRead, ChainVerification, CheckpointRead, CheckpointWritten
from atom.deps import DEFAULT_PAGE_LIMIT, AdminDep, CursorQuery, LimitQuery, SessionDep, SettingsDep, ViewerDep
from atom.errors import Conflict
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
async def verify_audit_chain(principal: ViewerDep, session: SessionDep, settings: SettingsDep) -> ChainVerification:
    """Check every link, then hold the chain against the signed checkpoints (`broken_checkpoint` names one)."""
    return await service.verify_chain(session=session, checkpoints=service.load_checkpoints(settings))


@router.post("/checkpoints", response_model=CheckpointWritten, status_code=201)
async def sign_checkpoint(principal: AdminDep, session: SessionDep, settings: SettingsDep) -> CheckpointWritten:
    """Verify, then sign the chain's head as a checkpoint; a broken or empty chain is a conflict."""
    result, written = await service.verify_and_checkpoint(session=session, settings=settings)
    if not result.ok or written is None:
        raise Conflict(
            f"Not signed: {result.problem or 'the audit chain is empty'}.",
            code="AUDIT_CHAIN_BROKEN" if not result.ok else "AUDIT_CHAIN_EMPTY",
            details={"first_broken_seq": result.first_broken_seq},
        )
    return CheckpointWritten(
        seq=written.seq, hash=written.hash, created_at=written.created_at, file=checkpoint_store.FILE_NAME
    )


@router.get("/checkpoints", response_model=list[CheckpointRead])
async def export_checkpoints(principal: AdminDep, settings: SettingsDep) -> list[CheckpointRead]:
    """The signed checkpoints of this database (to keep a copy elsewhere)."""
    return [
        CheckpointRead(seq=c.seq, hash=c.hash, created_at=c.created_at, line=c.line, database=c.database, mac=c.mac)
        for c in checkpoint_store.read(settings).checkpoints
    ]
