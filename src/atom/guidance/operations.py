"""Agent-run operations: the latest progress snapshot of each run, and the reads over them.

Only the process running the agent writes its operation (guidance/tracker.py), one snapshot at a
time, so a snapshot older than the stored one (`seq`) is simply not written.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.db.base import utcnow
from atom.db.session import on_commit
from atom.errors import NotFound
from atom.events.bus import get_bus
from atom.guidance.models import Operation, OperationKind
from atom.pagination import paginate
from atom.security.models import Role
from atom.security.principal import Principal

OPERATION_CHANGED = "guidance.operation_changed"


async def save_snapshot(*, session: AsyncSession, snapshot: dict[str, Any]) -> bool:
    """Write an agent run's snapshot; False when a newer one is already stored."""
    kind = OperationKind.AGENT_RUN.value
    values = {**snapshot, "updated_at": utcnow()}
    result = await session.execute(
        update(Operation)
        .where(
            Operation.kind == kind,
            Operation.subject_id == snapshot["subject_id"],
            Operation.seq < snapshot["seq"],
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    written = bool(getattr(result, "rowcount", 0))
    if not written:
        stored = await session.scalar(
            select(Operation.id).where(Operation.kind == kind, Operation.subject_id == snapshot["subject_id"])
        )
        if stored is not None:
            return False
        session.add(Operation(kind=kind, **values))
        await session.flush()
    payload = {"kind": kind, "subject_id": snapshot["subject_id"], "status": snapshot["status"]}
    on_commit(session, lambda: get_bus().publish_soon(OPERATION_CHANGED, payload))
    return True


def may_read(reader: Principal, row: Operation) -> bool:
    """A chat session's run is its author's (and admins'), like the run itself (docs/chat.md)."""
    return not row.private or row.user_id == reader.user_id or reader.has_role(Role.ADMIN)


async def find_by_execution(*, session: AsyncSession, execution_id: str) -> Operation | None:
    return await session.scalar(
        select(Operation)
        .where(Operation.kind == OperationKind.AGENT_RUN.value, Operation.subject_id == execution_id)
        .execution_options(populate_existing=True)
    )


async def get_by_execution(*, session: AsyncSession, execution_id: str, reader: Principal | None = None) -> Operation:
    """With `reader`: someone else's private run is the same 404 as a run with no progress."""
    row = await find_by_execution(session=session, execution_id=execution_id)
    if row is None or (reader is not None and not may_read(reader, row)):
        raise NotFound(f"No progress is recorded for agent run {execution_id}.", code="OPERATION_NOT_FOUND")
    return row


async def list_operations(
    *,
    session: AsyncSession,
    limit: int,
    cursor: str | None,
    status: str | None = None,
    agent_id: str | None = None,
    reader: Principal | None = None,
) -> tuple[list[Operation], str | None]:
    stmt = select(Operation).where(Operation.kind == OperationKind.AGENT_RUN.value)
    if reader is not None and not reader.has_role(Role.ADMIN):
        stmt = stmt.where(or_(Operation.private.is_(False), Operation.user_id == reader.user_id))
    if status is not None:
        stmt = stmt.where(Operation.status == status)
    if agent_id is not None:
        stmt = stmt.where(Operation.agent_id == agent_id)
    return await paginate(session, stmt, id_column=Operation.id, limit=limit, cursor=cursor)
