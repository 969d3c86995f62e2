"""`/ws/supervision/{id}`: watch a supervised run live and steer it.

Outside `/api`, so it authenticates itself: the API key in the `X-API-Key` or `Authorization`
header, or the dashboard's session cookie (closing with 1008 when missing or invalid).
The client receives every event of the run; it may send `{"command": "pause"|"resume"|
"terminate"|"correct", "params": {...}}` and gets `{"type": "ack"|"error", ...}` back.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.errors import AtomError
from atom.events.bus import get_bus
from atom.security import sessions as web_sessions
from atom.security.models import Role
from atom.training import supervision
from atom.training.schemas import CommandRequest

router = APIRouter()


@router.websocket("/ws/supervision/{session_id}")
async def supervise(websocket: WebSocket, session_id: str) -> None:
    db: Database = websocket.app.state.db
    settings: Settings = websocket.app.state.settings
    try:
        async with db.session_scope() as session:
            principal = await web_sessions.websocket_principal(  # an API key, or the dashboard's cookie
                session=session,
                key=web_sessions.websocket_key(websocket.headers, websocket.query_params),
                cookie=websocket.cookies.get(web_sessions.SESSION_COOKIE),
                origin=websocket.headers.get("origin"),
                host=websocket.headers.get("host"),
                settings=settings,
            )
            await supervision.get(session=session, session_id=session_id)
    except AtomError as exc:
        await websocket.close(code=1008, reason=exc.code)
        return
    if not principal.has_role(Role.OPERATOR):
        await websocket.close(code=1008, reason="ROLE_REQUIRED")
        return
    await websocket.accept()
    actor = audit.Actor.user(principal.user_id)
    async with (
        get_bus().subscribe(supervision.topic(session_id)) as events,
        supervision.supervising(db, settings, session_id),
    ):
        async with db.session_scope() as session:
            row = await supervision.get(session=session, session_id=session_id)
            await websocket.send_json({"type": "snapshot", "status": row.status, "steps": row.steps})
        forward = asyncio.create_task(_forward(websocket, events))
        try:
            while True:
                await _handle(websocket, db, session_id, actor, await websocket.receive_json())
        except WebSocketDisconnect:
            pass
        finally:
            forward.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await forward


async def _forward(websocket: WebSocket, events: Any) -> None:
    async for event in events:
        await websocket.send_json(event)


async def _handle(websocket: WebSocket, db: Database, session_id: str, actor: audit.Actor, message: Any) -> None:
    try:
        request = CommandRequest.model_validate(message)
        async with db.session_scope() as session:
            row = await supervision.command(
                session=session, session_id=session_id, cmd=request.command, params=request.params, actor=actor
            )
        await websocket.send_json({"type": "ack", "command": request.command.value, "status": row.status})
    except ValidationError as exc:
        await websocket.send_json({"type": "error", "code": "VALIDATION_ERROR", "message": str(exc.errors()[:3])})
    except AtomError as exc:
        await websocket.send_json({"type": "error", "code": exc.code, "message": exc.message})
