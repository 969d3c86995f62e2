"""Canvases: create, edit under the coordination rules (coordination.py), lock, review, close, and the
CanvasAudit row every action writes. Services flush; the caller commits. After a commit, "canvas.<id>"
(and "canvas.session.<chat session id>") go on the event bus: the dashboard's live views and a tool
waiting for a form listen to them.

Every edit is one conditional UPDATE (`WHERE version = <the version read>` plus the lock or turn guard),
so two writers can never both win and a lost update cannot happen on either database: a replace or
merge based on a stale version is refused, an append is retried on the new version.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.canvas import content as canvas_content
from atom.canvas import coordination
from atom.canvas.coordination import Editor
from atom.canvas.models import (
    Canvas,
    CanvasAudit,
    CanvasKind,
    CanvasParticipant,
    CanvasStatus,
    CoordinationMode,
    ParticipantRole,
)
from atom.chat import service as chat_service
from atom.db.base import utcnow
from atom.db.session import on_commit, rows_affected
from atom.errors import Conflict, InvalidInput, NotFound
from atom.events.bus import get_bus
from atom.security.principal import Principal

TOPIC = "canvas"
APPEND_RETRIES = 20
MAX_REVIEWS = 200
MAX_PARTICIPANTS = 20

EditOp = Literal["replace", "merge", "append"]


def topic_of(canvas_id: str) -> str:
    return f"{TOPIC}.{canvas_id}"


def session_topic(session_id: str) -> str:
    return f"{TOPIC}.session.{session_id}"


def announce(session: AsyncSession, canvas: Canvas, event: str) -> None:
    payload = {
        "canvas_id": canvas.id,
        "version": canvas.version,
        "event": event,
        "status": canvas.status,
        "execution_id": canvas.execution_id,
        "workflow_run_id": canvas.workflow_run_id,
    }
    topics = [topic_of(canvas.id), TOPIC]
    if canvas.session_id:
        topics.append(session_topic(canvas.session_id))

    def publish() -> None:
        for topic in topics:
            get_bus().publish_soon(topic, payload)

    on_commit(session, publish)


async def record(
    session: AsyncSession,
    canvas: Canvas,
    action: str,
    editor: Editor,
    *,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> CanvasAudit:
    row = CanvasAudit(
        canvas_id=canvas.id,
        action=action,
        actor=editor.actor,
        agent_id=editor.agent_id,
        user_id=editor.user_id,
        version=canvas.version,
        outcome=outcome,
        details=details or {},
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


def sees_all(reader: Principal) -> bool:
    return chat_service.sessions_visible_to(reader) is None  # an admin reads every chat session


def may_read(reader: Principal, canvas: Canvas) -> bool:
    return canvas.audience_user_id is None or canvas.audience_user_id == reader.user_id or sees_all(reader)


async def get(*, session: AsyncSession, canvas_id: str, fresh: bool = False, reader: Principal | None = None) -> Canvas:
    """The canvas; with `reader`, one in another person's chat session is the same 404 as a missing one."""
    canvas = await session.get(Canvas, canvas_id, populate_existing=fresh)
    if canvas is None or (reader is not None and not may_read(reader, canvas)):
        raise NotFound(f"There is no canvas {canvas_id!r}.", code="CANVAS_NOT_FOUND", details={"field": "canvas_id"})
    return canvas


async def participants(*, session: AsyncSession, canvas_id: str) -> list[CanvasParticipant]:
    rows = await session.scalars(
        select(CanvasParticipant)
        .where(CanvasParticipant.canvas_id == canvas_id)
        .order_by(CanvasParticipant.position, CanvasParticipant.agent_id)
    )
    return list(rows.all())


async def role_of(*, session: AsyncSession, canvas_id: str, agent_id: str) -> str | None:
    row = await session.get(CanvasParticipant, (canvas_id, agent_id))
    return row.role if row is not None else None


async def _turn_order(session: AsyncSession, canvas_id: str) -> list[str]:
    rows = await participants(session=session, canvas_id=canvas_id)
    return [p.agent_id for p in rows if p.role in coordination.EDITING_ROLES]


async def create(
    *,
    session: AsyncSession,
    kind: CanvasKind,
    title: str,
    content: dict[str, Any],
    editor: Editor,
    session_id: str | None = None,
    execution_id: str | None = None,
    workflow_run_id: str | None = None,
    mode: CoordinationMode = CoordinationMode.PARALLEL,
    collaborators: list[tuple[str, ParticipantRole]] | None = None,
    component_version_id: str | None = None,
    reader: Principal | None = None,
) -> Canvas:
    normalised = canvas_content.validate(kind, content)
    audience = None
    if session_id is not None:
        chat = await chat_service.get_session(session=session, session_id=session_id, reader=reader)
        audience = chat.user_id
    now = utcnow()
    canvas = Canvas(
        kind=kind.value,
        title=title,
        status=CanvasStatus.OPEN.value,
        content=normalised,
        version=1,
        mode=mode.value,
        owner_agent_id=editor.agent_id,
        session_id=session_id,
        audience_user_id=audience,
        execution_id=execution_id,
        workflow_run_id=workflow_run_id,
        created_by_user=editor.user_id,
        component_version_id=component_version_id,
        reviews=[],
        created_at=now,
        updated_at=now,
    )
    session.add(canvas)
    await session.flush()
    members: list[tuple[str, ParticipantRole]] = []
    if editor.agent_id:
        members.append((editor.agent_id, ParticipantRole.OWNER))
    for agent_id, role in collaborators or []:
        if all(agent_id != m[0] for m in members):
            members.append((agent_id, role))
    if len(members) > MAX_PARTICIPANTS:
        raise InvalidInput(f"A canvas has at most {MAX_PARTICIPANTS} participants.", details={"field": "collaborators"})
    for agent_id, _role in members:
        await _existing_agent(session, agent_id, "collaborators")
    for position, (agent_id, role) in enumerate(members):
        session.add(
            CanvasParticipant(canvas_id=canvas.id, agent_id=agent_id, role=role.value, position=position, added_at=now)
        )
    editors = [a for a, r in members if r.value in coordination.EDITING_ROLES]
    canvas.turn_agent_id = editors[0] if mode is CoordinationMode.SEQUENTIAL and editors else None
    await session.flush()
    await record(session, canvas, "present", editor, details={"kind": kind.value, "mode": mode.value})
    announce(session, canvas, "presented")
    return canvas


async def require_participant(
    *, session: AsyncSession, canvas_id: str, editor: Editor, allowed: frozenset[str], what: str
) -> Canvas:
    """The canvas, once the agent is on it with one of the `allowed` roles (403 CANVAS_ROLE otherwise)."""
    canvas = await get(session=session, canvas_id=canvas_id)
    coordination.require_role(await _editor_role(session, canvas, editor), editor, allowed, what)
    return canvas


async def _existing_agent(session: AsyncSession, agent_id: str, field: str) -> None:
    if await agents_service.find_agent(session=session, agent_id=agent_id) is None:
        raise NotFound(f"There is no agent {agent_id!r}.", code="AGENT_NOT_FOUND", details={"field": field})


async def _editor_role(session: AsyncSession, canvas: Canvas, editor: Editor) -> str | None:
    return await role_of(session=session, canvas_id=canvas.id, agent_id=editor.agent_id) if editor.agent_id else None


async def update(
    *,
    session: AsyncSession,
    canvas_id: str,
    editor: Editor,
    op: EditOp,
    data: dict[str, Any],
    expected_version: int | None,
    keep_turn: bool = False,
    title: str | None = None,
) -> Canvas:
    """Edit the content. replace/merge need `expected_version` (optimistic concurrency); append does not."""
    if op != "append" and expected_version is None:
        raise InvalidInput(
            f"A {op} names the version it is based on: give expected_version.",
            code="EXPECTED_VERSION_REQUIRED",
            details={"field": "expected_version"},
        )
    for _attempt in range(APPEND_RETRIES):
        canvas = await get(session=session, canvas_id=canvas_id, fresh=True)
        role = await _editor_role(session, canvas, editor)
        coordination.require_role(role, editor, coordination.EDITING_ROLES, "edit the content")
        now = utcnow()
        coordination.check_may_edit(canvas, editor, now)
        if expected_version is not None and expected_version != canvas.version:
            raise coordination.stale(canvas, expected_version)
        kind = CanvasKind(canvas.kind)
        if op == "replace":
            new_content = data
        elif op == "merge":
            new_content = coordination.merged(canvas.content, data)
        else:
            new_content = coordination.appended(canvas.content, data)
        normalised = canvas_content.validate(kind, new_content)
        turn = canvas.turn_agent_id
        if canvas.mode == CoordinationMode.SEQUENTIAL.value and editor.is_agent and not keep_turn:
            turn = coordination.next_turn(await _turn_order(session, canvas.id), editor.agent_id)
        guard = [Canvas.id == canvas.id, Canvas.version == canvas.version, Canvas.status == CanvasStatus.OPEN.value]
        if canvas.mode == CoordinationMode.LOCKED.value:
            guard += [Canvas.lock_holder == editor.actor, Canvas.lock_expires_at > now]
        values: dict[str, Any] = {
            "content": normalised,
            "version": canvas.version + 1,
            "updated_at": now,
            "turn_agent_id": turn,
        }
        if title is not None:
            values["title"] = title
        result = await session.execute(sql_update(Canvas).where(*guard).values(**values))
        if rows_affected(result) == 1:
            canvas = await get(session=session, canvas_id=canvas_id, fresh=True)
            await record(
                session,
                canvas,
                "update",
                editor,
                details={"op": op, "fields": sorted(data)[:20], "base_version": canvas.version - 1},
            )
            announce(session, canvas, "updated")
            return canvas
        if op != "append":  # someone else won between the read and the write
            raise coordination.stale(await get(session=session, canvas_id=canvas_id, fresh=True), expected_version or 0)
    raise Conflict("The canvas is changing too fast to append now; try again.", code="CANVAS_BUSY")


async def lock(*, session: AsyncSession, canvas_id: str, editor: Editor, acquire: bool, ttl_s: float) -> Canvas:
    """Take (or renew) or release the lock of a locked-mode canvas."""
    canvas = await get(session=session, canvas_id=canvas_id, fresh=True)
    role = await _editor_role(session, canvas, editor)
    coordination.require_role(role, editor, coordination.EDITING_ROLES, "take the lock")
    if canvas.mode != CoordinationMode.LOCKED.value:
        raise Conflict(
            f"The canvas is in {canvas.mode} mode: locks are for locked mode.",
            code="CANVAS_NOT_LOCKED_MODE",
            details={"field": "mode"},
        )
    now = utcnow()
    if acquire:
        free = (Canvas.lock_holder.is_(None)) | (Canvas.lock_holder == editor.actor) | (Canvas.lock_expires_at <= now)
        stmt = sql_update(Canvas).where(Canvas.id == canvas.id, free)
        values: dict[str, Any] = {"lock_holder": editor.actor, "lock_expires_at": now + timedelta(seconds=ttl_s)}
    else:
        stmt = sql_update(Canvas).where(Canvas.id == canvas.id, Canvas.lock_holder == editor.actor)
        values = {"lock_holder": None, "lock_expires_at": None}
    result = await session.execute(stmt.values(updated_at=now, **values))
    canvas = await get(session=session, canvas_id=canvas_id, fresh=True)
    if rows_affected(result) != 1:
        holder = canvas.lock_holder if coordination.lock_active(canvas, now) else None
        raise Conflict(
            f"The lock is held by {holder}." if acquire else "You do not hold the lock.",
            code="CANVAS_LOCKED" if acquire else "CANVAS_LOCK_NOT_HELD",
            details={"lock_holder": holder, "field": "lock"},
        )
    await record(session, canvas, "lock" if acquire else "unlock", editor)
    announce(session, canvas, "locked" if acquire else "unlocked")
    return canvas


async def review(*, session: AsyncSession, canvas_id: str, editor: Editor, verdict: str, note: str) -> Canvas:
    canvas = await get(session=session, canvas_id=canvas_id, fresh=True)
    role = await _editor_role(session, canvas, editor)
    coordination.require_role(role, editor, coordination.REVIEWING_ROLES, "review")
    if len(canvas.reviews) >= MAX_REVIEWS:
        raise Conflict(f"The canvas has its {MAX_REVIEWS} reviews.", code="CANVAS_REVIEWS_FULL")
    entry = {
        "by": editor.actor,
        "verdict": verdict,
        "note": note,
        "version": canvas.version,
        "at": utcnow().isoformat(),
    }
    canvas.reviews = [*canvas.reviews, entry]
    canvas.updated_at = utcnow()
    await session.flush()
    await record(session, canvas, "review", editor, details={"verdict": verdict})
    announce(session, canvas, "reviewed")
    return canvas


async def close(*, session: AsyncSession, canvas_id: str, editor: Editor) -> Canvas:
    canvas = await get(session=session, canvas_id=canvas_id, fresh=True)
    role = await _editor_role(session, canvas, editor)
    coordination.require_role(role, editor, frozenset({ParticipantRole.OWNER.value}), "close the canvas")
    if canvas.status == CanvasStatus.CLOSED.value:
        raise Conflict("The canvas is already closed.", code="CANVAS_NOT_OPEN")
    canvas.status = CanvasStatus.CLOSED.value
    canvas.lock_holder = None
    canvas.lock_expires_at = None
    canvas.updated_at = utcnow()
    await session.flush()
    await record(session, canvas, "close", editor)
    announce(session, canvas, "closed")
    return canvas


async def set_mode(*, session: AsyncSession, canvas_id: str, editor: Editor, mode: CoordinationMode) -> Canvas:
    canvas = await get(session=session, canvas_id=canvas_id, fresh=True)
    canvas.mode = mode.value
    canvas.lock_holder = None
    canvas.lock_expires_at = None
    order = await _turn_order(session, canvas.id)
    canvas.turn_agent_id = order[0] if mode is CoordinationMode.SEQUENTIAL and order else None
    canvas.updated_at = utcnow()
    await session.flush()
    await record(session, canvas, "mode", editor, details={"mode": mode.value})
    announce(session, canvas, "mode")
    return canvas


async def set_participant(
    *, session: AsyncSession, canvas_id: str, agent_id: str, role: ParticipantRole | None, editor: Editor
) -> Canvas:
    """Add, change (role) or remove (role None) an agent's part in a canvas."""
    canvas = await get(session=session, canvas_id=canvas_id, fresh=True)
    row = await session.get(CanvasParticipant, (canvas_id, agent_id))
    if role is None:
        if row is None:
            raise NotFound(
                "That agent is not on this canvas.", code="PARTICIPANT_NOT_FOUND", details={"field": "agent_id"}
            )
        await session.delete(row)
    elif row is None:
        await _existing_agent(session, agent_id, "agent_id")
        members = await participants(session=session, canvas_id=canvas_id)
        if len(members) >= MAX_PARTICIPANTS:
            raise Conflict(f"A canvas has at most {MAX_PARTICIPANTS} participants.", code="CANVAS_FULL")
        position = max((m.position for m in members), default=-1) + 1
        session.add(
            CanvasParticipant(
                canvas_id=canvas_id, agent_id=agent_id, role=role.value, position=position, added_at=utcnow()
            )
        )
    else:
        row.role = role.value
    await session.flush()
    if canvas.mode == CoordinationMode.SEQUENTIAL.value:
        order = await _turn_order(session, canvas_id)
        if canvas.turn_agent_id not in order:
            canvas.turn_agent_id = order[0] if order else None
    canvas.updated_at = utcnow()
    await session.flush()
    await record(
        session, canvas, "participant", editor, details={"agent_id": agent_id, "role": role.value if role else None}
    )
    announce(session, canvas, "participants")
    return canvas
