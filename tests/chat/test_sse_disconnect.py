"""An SSE client that goes away mid-stream: the upstream provider request is cut and the run is
recorded as cancelled with what it had produced (the WebSocket case is in test_streaming.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy import select

from atom.chat.models import AgentExecution, ChatMessage
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import UserWithKey
from tests.support.llm_servers import text_reply


async def _finished(db: Database, execution_id: str) -> AgentExecution:
    for _ in range(400):
        async with db.session_scope() as s:
            row = await s.get(AgentExecution, execution_id)
        assert row is not None
        if row.status != "running":
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("the execution never finished")


async def _read_until_token(lines: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `start` event and the first `token` event of an SSE stream."""
    start: dict[str, Any] | None = None
    async for line in lines:
        if not line.startswith("data: "):
            continue
        event = json.loads(line[6:])
        if event["type"] == "start":
            start = event
        elif event["type"] == "token":
            assert start is not None
            return start, event
    raise AssertionError("the stream ended before a token")


async def test_sse_disconnect_cancels_the_upstream_request_and_records_the_partial_answer(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "streamer")
    pieces = [f"s{i} " for i in range(300)]  # 300 chunks 50 ms apart (15 s) unless the request is cut
    llm_server.queue(text_reply(*pieces, delay_between=0.05))
    async with httpx.AsyncClient(base_url=f"http://{live}", headers=admin.headers, timeout=20) as http:
        created = await http.post("/api/chat/sessions", json={"agent": "streamer"})
        assert created.status_code == 201
        session_id = created.json()["id"]
        async with http.stream("POST", f"/api/chat/sessions/{session_id}/messages", json={"content": "talk"}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            start, first = await _read_until_token(r.aiter_lines())
        # Leaving the `stream` block closed the connection mid-stream.
    assert first["text"] == "s0 "
    await asyncio.wait_for(llm_server.closed.get(), timeout=10)  # the upstream request ended early
    row = await _finished(db, start["execution_id"])
    assert (row.status, row.error_code) == ("cancelled", "RUN_CANCELLED")
    assert row.output.startswith("s0 ") and row.output != "".join(pieces) and "".join(pieces).startswith(row.output)
    assert row.session_id == session_id and row.trigger == "chat"
    async with db.session_scope() as s:
        said = (
            await s.scalars(
                select(ChatMessage.content).where(ChatMessage.session_id == session_id, ChatMessage.role == "assistant")
            )
        ).all()
    assert list(said) == [row.output]  # the partial answer stays in the conversation
    assert len(llm_server.requests) == 1
