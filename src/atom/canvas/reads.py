"""Reads: canvas lists and audit rows (API), a canvas's whole live view and a chat session's canvases
(dashboard), and the canvas actions in stretches of an agent's work (memory's episodes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import reads as agents_reads
from atom.canvas import service as canvas_service
from atom.canvas import views
from atom.canvas.models import Canvas, CanvasAudit, CanvasComponentVersion, CanvasKind, CanvasStatus
from atom.pagination import paginate
from atom.security import service as security_service
from atom.security.principal import Principal

HISTORY = 10
SESSION_CANVASES = 20
SPAN_ACTIONS = 50  # canvas actions told per stretch of work
SPAN_ROWS = 2_000  # audit rows read for one call


async def _names(session: AsyncSession, canvases: list[Canvas], extra: set[str]) -> dict[str, str]:
    ids = set(extra)
    for canvas in canvases:
        ids.update(i for i in (canvas.owner_agent_id, canvas.turn_agent_id) if i)
    return await agents_reads.names_by_id(session=session, agent_ids=ids)


def user_of(actor: str | None) -> str | None:
    return actor.split(":", 1)[1] if actor and actor.startswith("user:") else None


async def _people(session: AsyncSession, canvas: Canvas, history: list[CanvasAudit]) -> dict[str, str]:
    """Usernames of the people who acted on the canvas (submitted, hold the lock, reviewed, edited)."""
    actors = [canvas.submitted_by, canvas.lock_holder, *(r.get("by") for r in canvas.reviews[-20:])]
    ids = {u for u in (user_of(a) for a in actors) if u} | {h.user_id for h in history if h.user_id}
    return await security_service.usernames_by_id(session=session, user_ids=ids)


async def dashboard_view(*, session: AsyncSession, canvas_id: str) -> dict[str, Any]:
    canvas = await canvas_service.get(session=session, canvas_id=canvas_id, fresh=True)
    members = await canvas_service.participants(session=session, canvas_id=canvas_id)
    history = list(
        (
            await session.scalars(
                select(CanvasAudit)
                .where(CanvasAudit.canvas_id == canvas_id)
                .order_by(CanvasAudit.id.desc())
                .limit(HISTORY)
            )
        ).all()
    )
    actors = {h.agent_id for h in history if h.agent_id} | {p.agent_id for p in members}
    if canvas.lock_holder and canvas.lock_holder.startswith("agent:"):
        actors.add(canvas.lock_holder.split(":", 1)[1])
    if canvas.submitted_by and canvas.submitted_by.startswith("agent:"):
        actors.add(canvas.submitted_by.split(":", 1)[1])
    names = await _names(session, [canvas], actors)
    return views.dashboard(canvas, members, history, names, await _people(session, canvas, history))


async def session_views(*, session: AsyncSession, session_id: str) -> list[dict[str, Any]]:
    """The chat session's canvases, newest first, each as its whole live view."""
    ids = list(
        (
            await session.scalars(
                select(Canvas.id)
                .where(Canvas.session_id == session_id)
                .order_by(Canvas.id.desc())
                .limit(SESSION_CANVASES)
            )
        ).all()
    )
    return [await dashboard_view(session=session, canvas_id=i) for i in ids]


async def run_views(
    *, session: AsyncSession, reader: Principal, execution_id: str | None = None, workflow_run_id: str | None = None
) -> list[dict[str, Any]]:
    """The canvases opened in one agent run (execution) or one workflow run, newest first, each as its
    whole live view; one in another person's chat session is left out."""
    if execution_id is not None:
        link = Canvas.execution_id == execution_id
    else:
        link = Canvas.workflow_run_id == workflow_run_id
    stmt = select(Canvas).where(link).order_by(Canvas.id.desc()).limit(SESSION_CANVASES)
    rows = (await session.scalars(stmt)).all()
    return [await dashboard_view(session=session, canvas_id=c.id) for c in rows if canvas_service.may_read(reader, c)]


async def recent(*, session: AsyncSession, limit: int) -> list[Canvas]:
    return list((await session.scalars(select(Canvas).order_by(Canvas.id.desc()).limit(limit))).all())


async def frame_version(*, session: AsyncSession, canvas_id: str) -> tuple[Canvas, CanvasComponentVersion]:
    from atom.canvas import components
    from atom.errors import NotFound

    canvas = await canvas_service.get(session=session, canvas_id=canvas_id)
    if canvas.component_version_id is None:
        raise NotFound("This canvas shows no custom component.", code="CANVAS_NOT_A_COMPONENT")
    return canvas, await components.version_by_id(session=session, version_id=canvas.component_version_id)


async def list_canvases(
    *,
    session: AsyncSession,
    limit: int,
    cursor: str | None,
    session_id: str | None = None,
    agent_id: str | None = None,
    status: CanvasStatus | None = None,
    kind: CanvasKind | None = None,
    reader: Principal | None = None,
) -> tuple[list[Canvas], str | None]:
    stmt = select(Canvas)
    if reader is not None and not canvas_service.sees_all(reader):
        stmt = stmt.where(or_(Canvas.audience_user_id.is_(None), Canvas.audience_user_id == reader.user_id))
    if session_id is not None:
        stmt = stmt.where(Canvas.session_id == session_id)
    if agent_id is not None:
        stmt = stmt.where(Canvas.owner_agent_id == agent_id)
    if status is not None:
        stmt = stmt.where(Canvas.status == status.value)
    if kind is not None:
        stmt = stmt.where(Canvas.kind == kind.value)
    return await paginate(session, stmt, id_column=Canvas.id, limit=limit, cursor=cursor)


async def audit_rows(
    *, session: AsyncSession, canvas_id: str, limit: int, cursor: str | None, reader: Principal | None = None
) -> tuple[list[CanvasAudit], str | None]:
    await canvas_service.get(session=session, canvas_id=canvas_id, reader=reader)
    stmt = select(CanvasAudit).where(CanvasAudit.canvas_id == canvas_id)
    return await paginate(session, stmt, id_column=CanvasAudit.id, limit=limit, cursor=cursor)


@dataclass(frozen=True)
class WorkSpan:
    """A stretch of an agent's work (an episode of memory): the agent, its time span, and the agent
    executions (chat turns, tasks) and workflow runs in it."""

    key: str
    agent_id: str
    start: datetime
    end: datetime
    execution_ids: frozenset[str] = frozenset()
    run_ids: frozenset[str] = frozenset()


def _belongs(span: WorkSpan, row: CanvasAudit, canvas: Canvas) -> bool:
    """A canvas opened in one of the span's executions or runs: all its actions (the person's submission
    too). Any other canvas (set up by a person, or another agent's): the span's agent's own actions on it
    within the span. A canvas the agent opened in some other execution or run belongs to that one."""
    if canvas.execution_id in span.execution_ids or canvas.workflow_run_id in span.run_ids:
        return True
    if canvas.owner_agent_id == span.agent_id and (canvas.execution_id or canvas.workflow_run_id):
        return False
    return row.agent_id == span.agent_id and span.start <= row.created_at <= span.end


async def actions_in(*, session: AsyncSession, spans: Sequence[WorkSpan]) -> dict[str, list[dict[str, Any]]]:
    """The canvas actions (CanvasAudit rows) of each span, oldest first, by span key; a span without any
    is left out."""
    if not spans:
        return {}
    executions = set().union(*(s.execution_ids for s in spans))
    runs = set().union(*(s.run_ids for s in spans))
    conditions = [
        and_(
            CanvasAudit.agent_id.in_({s.agent_id for s in spans}),
            CanvasAudit.created_at >= min(s.start for s in spans),
            CanvasAudit.created_at <= max(s.end for s in spans),
        )
    ]
    if executions:
        conditions.append(Canvas.execution_id.in_(executions))
    if runs:
        conditions.append(Canvas.workflow_run_id.in_(runs))
    rows = (
        await session.execute(
            select(CanvasAudit, Canvas)
            .join(Canvas, Canvas.id == CanvasAudit.canvas_id)
            .where(or_(*conditions))
            .order_by(CanvasAudit.created_at, CanvasAudit.id)
            .limit(SPAN_ROWS)
        )
    ).all()
    found: dict[str, list[dict[str, Any]]] = {}
    for row, canvas in rows:
        for span in spans:
            if _belongs(span, row, canvas) and len(found.setdefault(span.key, [])) < SPAN_ACTIONS:
                found[span.key].append(
                    {
                        "canvas_id": canvas.id,
                        "kind": canvas.kind,
                        "title": canvas.title,
                        "action": row.action,
                        "actor": row.actor,
                        "outcome": row.outcome,
                        "version": row.version,
                        "at": row.created_at.isoformat(),
                    }
                )
    return {key: actions for key, actions in found.items() if actions}
