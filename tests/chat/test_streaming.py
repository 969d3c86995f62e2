"""Chat over WebSocket and SSE against the real OpenAI adapter and a scripted provider server."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI

from atom.chat.models import AgentExecution, ChatMessage
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named, parse_sse
from tests.conftest import MakeUser, UserWithKey
from tests.support.llm_servers import text_reply


async def _until_done(ws: Any) -> list[dict[str, Any]]:
    events = []
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
        events.append(event)
        if event["type"] == "done":
            return events


async def _execution(db: Database, execution_id: str) -> AgentExecution:
    async with db.session_scope() as s:
        row = await s.get(AgentExecution, execution_id)
        assert row is not None
        return row


async def _finished(db: Database, execution_id: str) -> AgentExecution:
    for _ in range(400):
        row = await _execution(db, execution_id)
        if row.status != "running":
            return row
        await asyncio.sleep(0.05)
    raise AssertionError("the execution never finished")


async def _messages(db: Database, session_id: str) -> list[tuple[str, str]]:
    from sqlalchemy import select

    async with db.session_scope() as s:
        rows = await s.scalars(select(ChatMessage).where(ChatMessage.session_id == session_id).order_by(ChatMessage.id))
        return [(r.role, r.content) for r in rows]


async def test_websocket_streams_tokens_and_records_the_run(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.INTERN, "talker")
    # The provider pauses after "Hel": that token must reach the client before the rest exists.
    llm_server.queue(text_reply("Hel", "lo", " wor", "ld", usage=(21, 4), stall_after=2, stall_for=0.5))
    async with websockets.connect(
        f"ws://{live}/ws/chat/talker", additional_headers={"X-API-Key": admin.key}, open_timeout=30
    ) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "session"
        await ws.send(json.dumps({"type": "message", "content": "Say hello"}))
        events = await _until_done(ws)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and events[0]["streaming"] is True
    assert "message" not in kinds
    tokens = [e["text"] for e in events if e["type"] == "token"]
    assert tokens[0] == "Hel" and "".join(tokens) == "Hello world"
    done = events[-1]
    assert done["status"] == "completed" and done["output"] == "Hello world"
    assert done["usage"]["input_tokens"] == 21 and done["usage"]["output_tokens"] == 4
    row = await _execution(db, done["execution_id"])
    assert (row.status, row.output, row.streamed, row.provider, row.model) == (
        "completed",
        "Hello world",
        True,
        "local",
        "test-model",
    )
    assert row.input_tokens == 21 and row.trigger == "chat" and row.duration_ms is not None
    assert await _messages(db, hello["session_id"]) == [("user", "Say hello"), ("assistant", "Hello world")]
    sent = llm_server.last_request.body
    assert sent["stream"] is True and sent["messages"][-1] == {"role": "user", "content": "Say hello"}


async def test_sse_streams_tokens_and_keeps_the_conversation(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.SUPERVISED, "sse-bot")
    llm_server.queue(text_reply("One", " two"), text_reply("Three"))
    async with httpx.AsyncClient(base_url=f"http://{live}", headers=admin.headers, timeout=20) as http:
        created = await http.post("/api/chat/sessions", json={"agent": "sse-bot"})
        assert created.status_code == 201
        session_id = created.json()["id"]
        async with http.stream("POST", f"/api/chat/sessions/{session_id}/messages", json={"content": "count"}) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            events = parse_sse((await r.aread()).decode())
        assert events[0]["type"] == "start"
        assert "".join(e["text"] for e in events if e["type"] == "token") == "One two"
        assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
        second = await http.post(f"/api/chat/sessions/{session_id}/messages", json={"content": "more", "stream": False})
        assert second.status_code == 200 and second.json()["output"] == "Three"
        detail = (await http.get(f"/api/chat/sessions/{session_id}")).json()
    assert [(m["role"], m["content"]) for m in detail["messages"]] == [
        ("user", "count"),
        ("assistant", "One two"),
        ("user", "more"),
        ("assistant", "Three"),
    ]
    history = llm_server.last_request.body["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "user"]


async def test_student_answer_is_delivered_whole(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.STUDENT, "learner")
    llm_server.queue(text_reply("not ", "streamed ", "at all"))
    async with websockets.connect(
        f"ws://{live}/ws/chat/learner", additional_headers={"X-API-Key": admin.key}, open_timeout=30
    ) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "message", "content": "hi"}))
        events = await _until_done(ws)
    assert events[0]["streaming"] is False
    assert [e for e in events if e["type"] == "token"] == []
    assert [e["text"] for e in events if e["type"] == "message"] == ["not streamed at all"]
    assert (await _execution(db, events[-1]["execution_id"])).streamed is False


async def test_client_disconnect_cancels_the_upstream_request(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "chatty")
    pieces = [f"w{i} " for i in range(300)]
    llm_server.queue(text_reply(*pieces, delay_between=0.05))
    async with websockets.connect(
        f"ws://{live}/ws/chat/chatty", additional_headers={"X-API-Key": admin.key}, open_timeout=30
    ) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "message", "content": "talk a lot"}))
        start = json.loads(await ws.recv())
        assert start["type"] == "start"
        first = json.loads(await ws.recv())
        assert first["type"] == "token"
    # The provider server's connection ends long before its 300 chunks (15 s) were sent.
    await asyncio.wait_for(llm_server.closed.get(), timeout=10)
    row = await _finished(db, start["execution_id"])
    assert row.status == "cancelled" and row.error_code == "RUN_CANCELLED"
    assert row.output.startswith("w0 ") and row.output != "".join(pieces)


async def test_cancel_api_terminates_a_running_execution(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "stoppable")
    llm_server.queue(text_reply(*[f"p{i} " for i in range(300)], delay_between=0.05))
    async with (
        httpx.AsyncClient(base_url=f"http://{live}", headers=admin.headers, timeout=20) as http,
        http.stream("POST", "/api/chat/execute", json={"agent": "stoppable", "task": "go", "stream": True}) as r,
    ):
        lines = r.aiter_lines()
        execution_id = None
        async for line in lines:
            if line.startswith("data: "):
                execution_id = json.loads(line[6:])["execution_id"]
                break
        assert execution_id is not None
        cancelled = await http.post(f"/api/chat/executions/{execution_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["cancelled"] is True
        rest = [json.loads(line[6:]) async for line in lines if line.startswith("data: ")]
    assert rest[-1]["type"] == "done" and rest[-1]["status"] == "cancelled"
    row = await _finished(db, execution_id)
    assert row.status == "cancelled"
    again = (
        await httpx.AsyncClient(base_url=f"http://{live}", headers=admin.headers).post(
            f"/api/chat/executions/{execution_id}/cancel"
        )
    ).json()
    assert again["cancelled"] is False and again["status"] == "cancelled"


async def test_failed_run_keeps_partial_output_and_error(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "fragile")
    llm_server.queue(text_reply("partial ", "answer", " never", " sent", disconnect_after=3))
    async with websockets.connect(
        f"ws://{live}/ws/chat/fragile", additional_headers={"X-API-Key": admin.key}, open_timeout=30
    ) as ws:
        hello = json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "message", "content": "try"}))
        events = await _until_done(ws)
    errors = [e for e in events if e["type"] == "error"]
    assert errors and errors[0]["code"] == "LLM_PROVIDER_UNAVAILABLE"
    assert events[-1]["status"] == "failed" and events[-1]["output"] == "partial answer"
    row = await _execution(db, events[-1]["execution_id"])
    assert (row.status, row.output, row.error_code) == ("failed", "partial answer", "LLM_PROVIDER_UNAVAILABLE")
    assert row.error and "local" in row.error
    assert ("assistant", "partial answer") in await _messages(db, hello["session_id"])


async def test_no_provider_configured_says_how_to_add_one(
    app: FastAPI, client: httpx.AsyncClient, db: Database, settings: Settings, make_user: MakeUser
) -> None:
    operator = await make_user("operator")
    await agent_named(db, settings, MaturityLevel.INTERN, "lonely")
    response = await client.post(
        "/api/chat/execute", json={"agent": "lonely", "task": "hello"}, headers=operator.headers
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "LLM_NO_PROVIDER" and "atom-os llm add" in error["message"]
    assert (await client.get("/api/agents", headers=operator.headers)).status_code == 200  # the rest still works


async def test_websocket_refuses_bad_keys_and_viewers(
    live: str, make_user: MakeUser, db: Database, settings: Settings
) -> None:
    await agent_named(db, settings, MaturityLevel.INTERN, "guarded")
    viewer = await make_user("viewer")
    for token in ("nope", viewer.key):
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(
                f"ws://{live}/ws/chat/guarded", additional_headers={"X-API-Key": token}, open_timeout=30
            ):
                pass


async def test_websocket_takes_the_key_from_a_header_never_from_the_url(
    live: str, admin: UserWithKey, db: Database, settings: Settings
) -> None:
    await agent_named(db, settings, MaturityLevel.INTERN, "careful")
    for query in ("token", "key", "api_key"):  # a valid key, but in the URL: refused before anything else
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(f"ws://{live}/ws/chat/careful?{query}={admin.key}", open_timeout=30):
                pass
    bearer = {"Authorization": f"Bearer {admin.key}"}
    async with websockets.connect(f"ws://{live}/ws/chat/careful", additional_headers=bearer, open_timeout=30) as ws:
        assert json.loads(await ws.recv())["type"] == "session"
