"""Agent requests: an agent asks a person for a decision or a permission and waits for the answer.

A request has a question, options (2-10), a default that is one of them and a timeout. It is
committed at once (so the dashboard shows it), audited as asked by the agent, and announced on the
bus (`REQUEST_CHANGED`). The asking run waits for `REQUEST_CHANGED` naming it, re-reading the row
every ATOM_GUIDANCE_REQUEST_RECHECK_S in case an event was missed (another process answered while
Redis was away). Every transition is one conditional UPDATE from `pending`, so exactly one of
"a person answered", "it timed out" and "the run ended" wins:

- answered (by an operator; a permission only by an approver) before it expires: the answer;
- nobody answered in time: `timed_out`, the default applies, audited as the system's;
- the asking run was cancelled first: `cancelled`.

Answering an expired or already settled request is a conflict and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database, on_commit
from atom.errors import Conflict, Forbidden, InvalidInput, NotFound
from atom.events.bus import get_bus
from atom.guidance.models import AgentRequest, RequestKind, RequestStatus
from atom.pagination import paginate
from atom.security.models import Role
from atom.security.principal import Principal

REQUEST_CHANGED = "guidance.request_changed"
PERMISSION_OPTIONS = ("allow", "deny")
MIN_TIMEOUT_S = 1
MAX_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Ask:
    kind: RequestKind
    agent_id: str
    execution_id: str | None
    question: str
    options: tuple[str, ...]
    default: str
    timeout_s: int
    context: str | None = None


def _announce(session: AsyncSession, row: AgentRequest) -> None:
    payload = {"request_id": row.id, "status": row.status}
    on_commit(session, lambda: get_bus().publish_soon(REQUEST_CHANGED, payload))


async def create(*, session: AsyncSession, ask: Ask) -> AgentRequest:
    if ask.default not in ask.options:
        raise InvalidInput(
            f"The default {ask.default!r} is not one of the options.",
            code="INVALID_REQUEST",
            details={"fields": [{"field": "default", "message": "must be one of the options"}]},
        )
    if not MIN_TIMEOUT_S <= ask.timeout_s <= MAX_TIMEOUT_S:
        raise InvalidInput(
            f"The timeout must be {MIN_TIMEOUT_S}-{MAX_TIMEOUT_S} s.",
            code="INVALID_REQUEST",
            details={"fields": [{"field": "timeout_s", "message": f"{MIN_TIMEOUT_S}-{MAX_TIMEOUT_S}"}]},
        )
    now = utcnow()
    row = AgentRequest(
        kind=ask.kind.value,
        agent_id=ask.agent_id,
        execution_id=ask.execution_id,
        question=ask.question,
        context=ask.context,
        options=list(ask.options),
        default_option=ask.default,
        timeout_s=ask.timeout_s,
        status=RequestStatus.PENDING.value,
        created_at=now,
        expires_at=now + timedelta(seconds=ask.timeout_s),
    )
    session.add(row)
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.agent(ask.agent_id),
        action="guidance.request",
        resource_type="agent_request",
        resource_id=row.id,
        decision="pending",
        details={
            "kind": row.kind,
            "question": row.question[:500],
            "options": row.options,
            "default": row.default_option,
            "timeout_s": row.timeout_s,
            "execution_id": row.execution_id,
        },
    )
    _announce(session, row)
    return row


async def get(*, session: AsyncSession, request_id: str) -> AgentRequest:
    row = await session.get(AgentRequest, request_id)
    if row is None:
        raise NotFound(f"No agent request {request_id}.", code="REQUEST_NOT_FOUND")
    return row


async def list_requests(
    *,
    session: AsyncSession,
    limit: int,
    cursor: str | None,
    status: RequestStatus | None = None,
    agent_id: str | None = None,
) -> tuple[list[AgentRequest], str | None]:
    stmt = select(AgentRequest)
    if status is RequestStatus.PENDING:  # pending and still answerable
        stmt = stmt.where(AgentRequest.status == status.value, AgentRequest.expires_at > utcnow())
    elif status is not None:
        stmt = stmt.where(AgentRequest.status == status.value)
    if agent_id is not None:
        stmt = stmt.where(AgentRequest.agent_id == agent_id)
    return await paginate(session, stmt, id_column=AgentRequest.id, limit=limit, cursor=cursor)


async def count_pending(*, session: AsyncSession) -> int:
    stmt = (
        select(func.count())
        .select_from(AgentRequest)
        .where(AgentRequest.status == RequestStatus.PENDING.value, AgentRequest.expires_at > utcnow())
    )
    return int(await session.scalar(stmt) or 0)


def may_answer(principal: Principal, row: AgentRequest) -> bool:
    needed = Role.APPROVER if row.kind == RequestKind.PERMISSION.value else Role.OPERATOR
    return principal.has_role(needed)


async def answer(
    *, session: AsyncSession, request_id: str, answer: str, principal: Principal, note: str | None = None
) -> AgentRequest:
    row = await get(session=session, request_id=request_id)
    if not may_answer(principal, row):
        raise Forbidden("A permission request is answered by an approver.", code="APPROVER_REQUIRED")
    if answer not in row.options:
        raise InvalidInput(
            f"{answer!r} is not one of the options ({', '.join(row.options)}).",
            code="INVALID_ANSWER",
            details={"fields": [{"field": "body.answer", "message": "must be one of the options"}]},
        )
    now = utcnow()
    result = await session.execute(
        update(AgentRequest)
        .where(
            AgentRequest.id == request_id,
            AgentRequest.status == RequestStatus.PENDING.value,
            AgentRequest.expires_at > now,
        )
        .values(
            status=RequestStatus.ANSWERED.value,
            answer=answer,
            answered_by=principal.user_id,
            note=note,
            answered_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(result, "rowcount", 0):
        await session.refresh(row)
        if row.status == RequestStatus.PENDING.value:
            raise Conflict("The request expired before it was answered; its default applies.", code="REQUEST_EXPIRED")
        raise Conflict(f"The request is already {row.status.replace('_', ' ')}.", code="REQUEST_SETTLED")
    await session.refresh(row)
    await audit.record(
        session=session,
        actor=audit.Actor.user(principal.user_id),
        action="guidance.request.answer",
        resource_type="agent_request",
        resource_id=row.id,
        decision=answer,
        reason=note,
        details={"kind": row.kind, "agent_id": row.agent_id, "execution_id": row.execution_id},
    )
    _announce(session, row)
    return row


async def _settle(*, session: AsyncSession, request_id: str, status: RequestStatus) -> AgentRequest:
    """Time out or cancel a pending request (no-op when it was settled first); the row as it ends."""
    row = await get(session=session, request_id=request_id)
    values: dict[str, Any] = {"status": status.value, "answered_at": utcnow()}
    if status is RequestStatus.TIMED_OUT:
        values["answer"] = row.default_option
    result = await session.execute(
        update(AgentRequest)
        .where(AgentRequest.id == request_id, AgentRequest.status == RequestStatus.PENDING.value)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(row)
    if getattr(result, "rowcount", 0):
        await audit.record(
            session=session,
            actor=audit.Actor.system(),
            action="guidance.request.timeout" if status is RequestStatus.TIMED_OUT else "guidance.request.cancel",
            resource_type="agent_request",
            resource_id=row.id,
            decision=row.answer or status.value,
            details={"kind": row.kind, "agent_id": row.agent_id, "execution_id": row.execution_id},
        )
        _announce(session, row)
    return row


async def _flag(events: AsyncIterator[dict[str, Any]], wanted: list[str], changed: asyncio.Event) -> None:
    async for event in events:
        if event.get("request_id") in wanted:
            changed.set()


async def ask_and_wait(*, db: Database, settings: Settings, ask: Ask) -> AgentRequest:
    """Create the request, wait up to its timeout for a person, and return the settled row (answered,
    timed out with its default). Cancelled while waiting: the request is marked cancelled first."""
    wanted: list[str] = []
    changed = asyncio.Event()
    async with get_bus().subscribe(REQUEST_CHANGED) as events:
        # The events are read by a task of their own: a wait that times out must not end the stream.
        listener = asyncio.create_task(_flag(events, wanted, changed), name="atom-guidance-request")
        try:
            async with db.session_scope() as session:
                row = await create(session=session, ask=ask)
                request_id = row.id
            wanted.append(request_id)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + ask.timeout_s
            while (left := deadline - loop.time()) > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), timeout=min(left, settings.guidance_request_recheck_s))
                changed.clear()
                async with db.session_scope() as session:
                    current = await get(session=session, request_id=request_id)
                    if current.status != RequestStatus.PENDING.value:
                        return current
        except asyncio.CancelledError:
            if wanted:
                with contextlib.suppress(Exception):
                    await asyncio.shield(_settle_in(db, wanted[0], RequestStatus.CANCELLED))
            raise
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
    return await _settle_in(db, request_id, RequestStatus.TIMED_OUT)


async def _settle_in(db: Database, request_id: str, status: RequestStatus) -> AgentRequest:
    async with db.session_scope() as session:
        return await _settle(session=session, request_id=request_id, status=status)
