"""`/ws/chat/{agent}[?session_id=<id>]`: chat with an agent over a WebSocket.

Outside `/api`, so it authenticates itself: the API key in the `X-API-Key` or `Authorization`
header, or the dashboard's session cookie (OPERATOR role; closes with 1008 otherwise, and with
`API_KEY_IN_URL` when a key is put in the URL).
The server first sends `{"type": "session", "session_id", "agent_id"}` (a new session unless
`session_id` names one of this agent's). The client sends `{"type": "message", "content": "..."}`
to start a run and `{"type": "cancel"}` to stop it; the run's events follow the schema in
docs/chat.md and end with `done`. Closing the socket cancels the running run and its upstream call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from atom.agents import service as agents_service
from atom.chat import service
from atom.chat.driver import RunStream, runtime_for
from atom.chat.runtime import RunRequest
from atom.chat.schemas import MAX_INPUT
from atom.config import Settings
from atom.db.session import Database
from atom.errors import AtomError, InvalidInput
from atom.security import sessions as web_sessions
from atom.security.models import Role

router = APIRouter()


class ClientMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str = Field(pattern="^(message|cancel)$")
    content: str = Field(default="", max_length=MAX_INPUT)
    model: str | None = Field(default=None, max_length=200)


@router.websocket("/ws/chat/{agent_ref}")
async def chat(websocket: WebSocket, agent_ref: str) -> None:
    db: Database = websocket.app.state.db
    settings: Settings = websocket.app.state.settings
    session_id = websocket.query_params.get("session_id")
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
            if not principal.has_role(Role.OPERATOR):
                await websocket.close(code=1008, reason="ROLE_REQUIRED")
                return
            agent = await agents_service.resolve_ref(session=session, ref=agent_ref)
            if session_id is not None:
                chat_session = await service.get_session(session=session, session_id=session_id, reader=principal)
                if chat_session.agent_id != agent.id:
                    raise InvalidInput("This chat session belongs to another agent.", code="CHAT_SESSION_AGENT")
            else:
                chat_session = await service.create_session(
                    session=session, agent_ref=agent.id, user_id=principal.user_id
                )
            session_id, agent_id = chat_session.id, agent.id
    except AtomError as exc:
        await websocket.close(code=1008, reason=exc.code)
        return
    await websocket.accept()
    await websocket.send_json({"type": "session", "session_id": session_id, "agent_id": agent_id})
    current: RunStream | None = None
    forward: asyncio.Task[None] | None = None
    try:
        while True:
            raw = await websocket.receive_json()
            try:
                message = ClientMessage.model_validate(raw)
            except ValidationError as exc:
                await websocket.send_json(
                    {"type": "error", "code": "VALIDATION_ERROR", "message": str(exc.errors()[:3])}
                )
                continue
            if message.type == "cancel":
                if current is not None:
                    await current.cancel()
                continue
            if current is not None and not current.task.done():
                await websocket.send_json(
                    {"type": "error", "code": "RUN_IN_PROGRESS", "message": "A run is in progress; cancel it first."}
                )
                continue
            if not message.content.strip():
                await websocket.send_json({"type": "error", "code": "VALIDATION_ERROR", "message": "content is empty"})
                continue
            try:
                runtime = await runtime_for(websocket.app.state, db, settings)
            except AtomError as exc:
                await websocket.send_json({"type": "error", "code": exc.code, "message": exc.message})
                continue
            request = RunRequest(
                agent_ref=agent_id,
                input=message.content,
                trigger="chat",
                session_id=session_id,
                user_id=principal.user_id,
                model=message.model,
            )
            if forward is not None:
                await forward
            current = RunStream(runtime, request, settings.chat_stream_buffer_events)
            forward = asyncio.create_task(_forward(websocket, current))
    except WebSocketDisconnect:
        pass
    finally:
        if current is not None:
            await current.cancel()
        if forward is not None:
            forward.cancel()
            with contextlib.suppress(BaseException):
                await forward


# What `send_json` does, with the encoder built once instead of once per event (per token).
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


async def _forward(websocket: WebSocket, stream: RunStream) -> None:
    send = websocket.send_text
    try:
        async for event in stream.events():
            await send(_encode(event))
    except (WebSocketDisconnect, RuntimeError):
        await stream.cancel()
