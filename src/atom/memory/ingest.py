"""Turn finished agent activity into memory events, read through each domain's service.

Sources: agent executions (the request, each tool call, the answer: chat turns and tasks), workflow
runs with their steps, proposals with their decisions, supervision sessions with their interventions.
Each source keeps a cursor (the last id taken). A record still in progress stops its source's pass
there, so nothing is taken half-done; one in progress for longer than `STALE` is taken as it stands.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.chat import service as chat_service
from atom.db.base import utcnow
from atom.memory import service
from atom.memory.models import MemoryCursor
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event
from atom.training import proposals as proposals_service
from atom.training import supervision as supervision_service
from atom.workflows import service as workflows_service

STALE = timedelta(days=1)
Fetch = Callable[[int, str | None], Awaitable[tuple[Sequence[Any], str | None]]]


def _short(value: Any, limit: int = 600) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text[:limit]


async def _new_since(fetch: Fetch, position: str, batch: int) -> list[Any]:
    """Rows with an id above `position`, oldest first, walking a newest-first paginated list."""
    rows: list[Any] = []
    cursor: str | None = None
    while True:
        page, next_cursor = await fetch(batch, cursor)
        fresh = [r for r in page if r.id > position]
        rows.extend(fresh)
        if len(fresh) < len(page) or next_cursor is None:
            break
        cursor = next_cursor
    rows.sort(key=lambda r: r.id)
    return rows[:batch]


def _take_finished(rows: list[Any], finished: Callable[[Any], bool], started: Callable[[Any], Any]) -> list[Any]:
    taken = []
    now = utcnow()
    for row in rows:
        if not finished(row) and now - started(row) < STALE:
            break
        taken.append(row)
    return taken


def execution_events(row: Any) -> list[Event]:
    user = row.user_id if row.session_id else None
    task = row.trigger != "chat"
    events = [Event(row.agent_id, row.started_at, "message", row.input, "execution", row.id, "user", user)]
    for call in row.tool_calls or []:
        name = call.get("action") or call.get("name") or "tool"
        text = f"tool {name} {_short(call.get('arguments', {}), 300)} -> {call.get('status', '')}"
        events.append(Event(row.agent_id, row.started_at, "tool_call", text, "execution", row.id, "tool", user))
    answer = row.output or (f"failed: {row.error}" if row.error else "")
    if answer:
        at = row.finished_at or row.started_at
        events.append(
            Event(row.agent_id, at, "message", answer, "execution", row.id, "assistant", user, completes_task=task)
        )
    elif task:
        events[-1] = Event(**{**events[-1].__dict__, "completes_task": True})
    return events


async def workflow_events(session: AsyncSession, row: Any) -> list[Event]:
    at = row.finished_at or row.created_at
    events = [
        Event(
            row.agent_id, row.created_at, "workflow_run", f"workflow run {row.workflow_id} started", "workflow", row.id
        )
    ]
    for step in await workflows_service.list_steps(session=session, run_id=row.id):
        text = f"step {step.step_key} {step.action or step.kind}: {step.status} {_short(step.output or {}, 300)}"
        events.append(Event(row.agent_id, at, "workflow_step", text, "workflow", step.id))
    events.append(
        Event(row.agent_id, at, "workflow_run", f"workflow run {row.status}", "workflow", row.id, completes_task=True)
    )
    return events


def proposal_events(row: Any) -> list[Event]:
    plan = "; ".join(_short(step.get("action", step), 80) for step in row.plan or [])
    events = [Event(row.agent_id, row.created_at, "proposal", f"proposed {row.kind}: {plan}", "proposal", row.id)]
    decision = f"proposal {row.status}" + (f": {row.decision_reason}" if row.decision_reason else "")
    events.append(
        Event(
            row.agent_id,
            row.decided_at or row.created_at,
            "decision",
            decision,
            "proposal",
            row.id,
            "approver",
            completes_task=True,
        )
    )
    return events


def supervision_events(row: Any) -> list[Event]:
    start = row.started_at or row.created_at
    events = [
        Event(
            row.agent_id, start, "supervision", f"supervised run of {len(row.plan or [])} steps", "supervision", row.id
        )
    ]
    for step in row.steps or []:
        events.append(Event(row.agent_id, start, "supervision", _short(step, 400), "supervision", row.id))
    summary = f"supervision {row.status}: {row.interventions} interventions, rating {row.rating}"
    events.append(
        Event(
            row.agent_id,
            row.finished_at or start,
            "supervision",
            summary,
            "supervision",
            row.id,
            "supervisor",
            completes_task=True,
        )
    )
    return events


async def _cursor(session: AsyncSession, source: str) -> MemoryCursor:
    """The source's cursor. A new one joins the session only when it first moves: a pass that takes
    nothing writes nothing, and no pass holds SQLite's write lock while its events are embedded."""
    row = await session.get(MemoryCursor, source)
    return row if row is not None else MemoryCursor(source=source, position="")


async def ingest_source(*, session: AsyncSession, memory: Memory, source: str) -> int:
    """One pass over one source; returns how many records were taken."""
    cursor = await _cursor(session, source)
    batch = memory.settings.memory_ingest_batch
    events: list[Event] = []
    if source == "executions":

        async def fetch(limit: int, page: str | None) -> tuple[Sequence[Any], str | None]:
            return await chat_service.list_executions(
                session=session, agent_id=None, session_id=None, status=None, limit=limit, cursor=page
            )

        rows = _take_finished(
            await _new_since(fetch, cursor.position, batch), lambda r: r.status != "running", lambda r: r.started_at
        )
        for row in rows:
            events.extend(execution_events(row))
    elif source == "workflows":

        async def fetch(limit: int, page: str | None) -> tuple[Sequence[Any], str | None]:
            return await workflows_service.list_runs(
                session=session, workflow_id=None, status=None, limit=limit, cursor=page
            )

        rows = _take_finished(
            await _new_since(fetch, cursor.position, batch), lambda r: r.finished_at is not None, lambda r: r.created_at
        )
        for row in rows:
            events.extend(await workflow_events(session, row))
    elif source == "proposals":

        async def fetch(limit: int, page: str | None) -> tuple[Sequence[Any], str | None]:
            return await proposals_service.list_proposals(
                session=session, status=None, kind=None, agent_id=None, limit=limit, cursor=page
            )

        rows = _take_finished(
            await _new_since(fetch, cursor.position, batch), lambda r: r.decided_at is not None, lambda r: r.created_at
        )
        for row in rows:
            events.extend(proposal_events(row))
    elif source == "supervision":

        async def fetch(limit: int, page: str | None) -> tuple[Sequence[Any], str | None]:
            return await supervision_service.list_sessions(session=session, status=None, limit=limit, cursor=page)

        rows = _take_finished(
            await _new_since(fetch, cursor.position, batch), lambda r: r.finished_at is not None, lambda r: r.created_at
        )
        for row in rows:
            events.extend(supervision_events(row))
    else:
        raise ValueError(f"unknown memory source {source!r}")
    if not rows:
        return 0
    events = [e for e in events if e.text.strip()]
    await service.record_events(session=session, memory=memory, events=events)
    cursor.position = rows[-1].id
    session.add(cursor)
    await session.flush()
    return len(rows)


SOURCES = ("executions", "workflows", "proposals", "supervision")
