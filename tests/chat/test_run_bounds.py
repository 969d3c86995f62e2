"""The bounds of one run's tool loop (steps, wall time, tokens): the run stops, and the execution
record keeps the partial output, the tool calls and the error (the chat session keeps the partial answer)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import UserWithKey
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply

MAX_TOKENS = 100  # the smallest ATOM_CHAT_MAX_TOKENS allowed


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"chat_max_steps": 3, "chat_max_seconds": 5.0, "chat_max_tokens": MAX_TOKENS}


def _clock_call() -> Any:
    return ScriptedToolCall("get_current_time", ['{"timezone": "UTC"}'])


async def _session_message(client: httpx.AsyncClient, admin: UserWithKey, agent: str) -> tuple[str, dict[str, Any]]:
    """A non-streamed chat message: the execution record when the run ends."""
    created = await client.post("/api/chat/sessions", json={"agent": agent}, headers=admin.headers)
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    sent = await client.post(
        f"/api/chat/sessions/{session_id}/messages", json={"content": "go on", "stream": False}, headers=admin.headers
    )
    assert sent.status_code == 200, sent.text
    return session_id, sent.json()


async def _stored(client: httpx.AsyncClient, admin: UserWithKey, execution_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/chat/executions/{execution_id}", headers=admin.headers)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def _conversation(client: httpx.AsyncClient, admin: UserWithKey, session_id: str) -> list[tuple[str, str]]:
    detail = (await client.get(f"/api/chat/sessions/{session_id}", headers=admin.headers)).json()
    return [(m["role"], m["content"]) for m in detail["messages"]]


async def test_step_bound_stops_the_loop_and_keeps_every_call(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "restless")
    llm_server.default = tool_reply(_clock_call(), text=["checking "], usage=(10, 5))
    session_id, run = await _session_message(client, admin, "restless")
    stored = await _stored(client, admin, run["id"])
    assert (stored["status"], stored["error_code"], stored["steps"]) == ("failed", "STEP_LIMIT", 3)
    assert "step bound (3 model calls" in stored["error"]
    assert len(llm_server.requests) == 3  # no fourth model call
    assert [c["status"] for c in stored["tool_calls"]] == ["ok", "ok", "ok"]
    assert stored["output"] == "checking checking checking "
    assert (stored["input_tokens"], stored["output_tokens"]) == (30, 15)
    said = [content for role, content in await _conversation(client, admin, session_id) if role == "assistant"]
    assert said == ["checking ", "checking ", "checking "]


async def test_time_bound_stops_a_run_with_a_clear_error_and_cuts_the_upstream_call(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "slowpoke")
    pieces = [f"t{i} " for i in range(300)]  # 300 chunks 50 ms apart: far longer than the 5 s bound
    llm_server.queue(text_reply(*pieces, delay_between=0.05))
    session_id, run = await _session_message(client, admin, "slowpoke")
    stored = await _stored(client, admin, run["id"])
    assert (stored["status"], stored["error_code"]) == ("timeout", "RUN_TIMEOUT")
    assert "ATOM_CHAT_MAX_SECONDS (5 s)" in stored["error"]
    partial = stored["output"]
    assert partial.startswith("t0 ") and partial != "".join(pieces) and "".join(pieces).startswith(partial)
    assert ("assistant", partial) in await _conversation(client, admin, session_id)
    # The provider server's connection ended without sending its 300 chunks.
    await asyncio.wait_for(llm_server.closed.get(), timeout=10)


async def test_token_bound_stops_a_run_and_caps_what_is_asked_of_the_model(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "wordy")
    # 60 + 20 tokens per call: the first call leaves 20 of the 100, the second goes over.
    llm_server.default = tool_reply(_clock_call(), text=["more "], usage=(60, 20))
    session_id, run = await _session_message(client, admin, "wordy")
    stored = await _stored(client, admin, run["id"])
    assert (stored["status"], stored["error_code"], stored["steps"]) == ("failed", "TOKEN_LIMIT", 2)
    assert f"ATOM_CHAT_MAX_TOKENS ({MAX_TOKENS})" in stored["error"]
    assert (stored["input_tokens"], stored["output_tokens"]) == (120, 40)
    assert len(llm_server.requests) == 2  # stopped before a third call, although the step bound allows it
    assert llm_server.requests[1].body["max_tokens"] == 20  # only what is left of the run's tokens is asked for
    assert stored["output"] == "more more " and len(stored["tool_calls"]) == 2
    said = [content for role, content in await _conversation(client, admin, session_id) if role == "assistant"]
    assert said == ["more ", "more "]
