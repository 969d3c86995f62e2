"""Canvas actions that span transactions: an edit whose refusal is recorded, a person's form submission
(a governed action of the agent that asked), and a tool call waiting for that submission.

A refused action (a stale version, a lock held by another, a denied submission) changes nothing, but
its CanvasAudit row is written in a transaction of its own, so the refusal is on record although the
attempt rolled back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import update

from atom.canvas import forms
from atom.canvas import service as canvas_service
from atom.canvas.coordination import Editor
from atom.canvas.models import Canvas, CanvasKind, CanvasStatus
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database, rows_affected
from atom.errors import AtomError, Conflict, Forbidden, InvalidInput
from atom.events.bus import get_bus
from atom.governance import service as governance
from atom.governance.policy import GovernanceContext, TriggerKind
from atom.security import service as security_service

T = TypeVar("T")
SUBMIT_ACTION = "canvas_submit"
REFUSED_EVENT = "submit_refused"  # on the canvas's topic: wakes the tool call waiting for the form


async def record_refusal(db: Database, canvas_id: str, action: str, editor: Editor, error: AtomError) -> None:
    async with db.session_scope() as session:
        canvas = await session.get(Canvas, canvas_id)
        if canvas is None:
            return
        details = {k: v for k, v in error.details.items() if k != "current_content"}
        await canvas_service.record(
            session, canvas, action, editor, outcome="refused", details={"code": error.code, **details}
        )


async def act(
    db: Database,
    canvas_id: str,
    action: str,
    editor: Editor,
    work: Callable[[Any], Awaitable[T]],
) -> T:
    """Run `work(session)` in a transaction; a refusal (403, 409) is recorded before it is raised."""
    try:
        async with db.session_scope() as session:
            return await work(session)
    except (Conflict, Forbidden) as exc:
        await record_refusal(db, canvas_id, action, editor, exc)
        raise


async def submit_form(*, db: Database, settings: Settings, canvas_id: str, values: Any, submitter: Editor) -> Canvas:
    """Accept a form's values: validated against its schema (422 naming each field, nothing changed), then,
    when a person submits to an agent's form, governed as that agent's `canvas_submit` (SUPERVISED+)."""
    async with db.session_scope() as session:
        canvas = await canvas_service.get(session=session, canvas_id=canvas_id)
        if canvas.kind != CanvasKind.FORM.value:
            raise InvalidInput(
                f"Canvas {canvas_id} is a {canvas.kind}, not a form.",
                code="CANVAS_NOT_A_FORM",
                details={"field": "canvas_id"},
            )
        if canvas.status != CanvasStatus.OPEN.value:
            raise Conflict(f"The form is {canvas.status}: it takes no more submissions.", code="CANVAS_NOT_OPEN")
        accepted = forms.validate_submission(canvas.content["schema"], values)
        agent_id = canvas.owner_agent_id
    if agent_id is not None and not submitter.is_agent:
        async with db.session_scope() as session:  # the decision is audited whatever follows
            decision = await governance.check(
                session=session,
                agent_id=agent_id,
                action=SUBMIT_ACTION,
                context=GovernanceContext(trigger=TriggerKind.MANUAL, source="canvas", actor_user_id=submitter.user_id),
                settings=settings,
            )
        if not decision.allowed:
            error = Forbidden(
                f"The agent that asked may not act on this submission: {decision.reason}",
                code="CANVAS_SUBMIT_DENIED",
                details={"reason_code": decision.reason_code, "action": SUBMIT_ACTION},
            )
            await record_refusal(db, canvas_id, "submit", submitter, error)
            await get_bus().publish(
                canvas_service.topic_of(canvas_id),
                {
                    "canvas_id": canvas_id,
                    "event": REFUSED_EVENT,
                    "status": CanvasStatus.OPEN.value,
                    "code": error.code,
                    "reason": decision.reason,
                    "reason_code": decision.reason_code,
                },
            )
            raise error

    async def accept(session: Any) -> Canvas:
        current = await canvas_service.get(session=session, canvas_id=canvas_id, fresh=True)
        now = utcnow()
        result = await session.execute(
            update(Canvas)
            .where(Canvas.id == canvas_id, Canvas.status == CanvasStatus.OPEN.value, Canvas.version == current.version)
            .values(
                status=CanvasStatus.SUBMITTED.value,
                submission=accepted,
                submitted_by=submitter.actor,
                submitted_at=now,
                version=current.version + 1,
                updated_at=now,
            )
        )
        if rows_affected(result) != 1:
            raise Conflict("The form was submitted or closed meanwhile.", code="CANVAS_NOT_OPEN")
        canvas = await canvas_service.get(session=session, canvas_id=canvas_id, fresh=True)
        await canvas_service.record(session, canvas, "submit", submitter, details={"fields": sorted(accepted)})
        canvas_service.announce(session, canvas, "submitted")
        return canvas

    return await act(db, canvas_id, "submit", submitter, accept)


def _outcome(canvas: Canvas) -> dict[str, Any] | None:
    if canvas.status == CanvasStatus.SUBMITTED.value:
        return {
            "status": "submitted",
            "canvas_id": canvas.id,
            "values": canvas.submission,
            "submitted_by": canvas.submitted_by,
        }
    if canvas.status == CanvasStatus.CLOSED.value:
        return {"status": "closed", "canvas_id": canvas.id}
    return None


async def _named(session: Any, outcome: dict[str, Any]) -> dict[str, Any]:
    """A person's submission names them too (`submitted_by` stays `user:<id>`)."""
    by = outcome.get("submitted_by") or ""
    if by.startswith("user:"):
        user_id = by.split(":", 1)[1]
        names = await security_service.usernames_by_id(session=session, user_ids={user_id})
        outcome["submitted_by_name"] = names.get(user_id)
    return outcome


def _refused(canvas_id: str, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": "refused",
        "canvas_id": canvas_id,
        "code": event.get("code"),
        "reason": event.get("reason"),
        "reason_code": event.get("reason_code"),
        "message": f"The person's submission was refused by governance ({SUBMIT_ACTION}): {event.get('reason')}. "
        "The form stays open.",
    }


async def wait_for_submission(*, db: Database, canvas_id: str, timeout_s: float) -> dict[str, Any]:
    """The form's submission, or `closed`, or `refused` (governance denied the agent acting on a person's
    submission), or `timeout` after `timeout_s`. Listens on the bus (so a submission in another process
    wakes it too) and reads the row on each event: nothing is missed between presenting and listening
    because the row is read after the subscription starts."""
    async with get_bus().subscribe(canvas_service.topic_of(canvas_id)) as events:
        iterator = aiter(events)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while True:
                    async with db.session_scope() as session:
                        found = _outcome(await canvas_service.get(session=session, canvas_id=canvas_id))
                        if found is not None:
                            return await _named(session, found)
                    event = await anext(iterator)
                    if event.get("event") == REFUSED_EVENT:
                        return _refused(canvas_id, event)
    return {
        "status": "timeout",
        "canvas_id": canvas_id,
        "message": f"Nobody submitted the form within {timeout_s:g} s; it stays open.",
    }
