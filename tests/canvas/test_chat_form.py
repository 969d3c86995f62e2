"""A form's round trip through a real agent run on both databases: the model (the local test LLM server)
calls present_form, the run waits past ATOM_CHAT_TOOL_TIMEOUT_S (the form's own wait bounds it), the
person's submission is the tool's result and the model continues."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from atom.canvas import service as canvas_service
from atom.config import Settings
from atom.db.session import Database
from atom.events.bus import get_bus
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named, chat_app, llm_server
from tests.conftest import UserWithKey
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply

__all__ = ["chat_app", "llm_server"]

FORM = {"schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}, "title": "Go?"}


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"chat_tool_timeout_s": 0.5, "canvas_form_wait_s": 60.0}


async def _canvases(client: httpx.AsyncClient, admin: UserWithKey) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get("/api/canvases", headers=admin.headers)).json()["items"]
    return items


async def test_the_submission_is_the_tool_result(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.SUPERVISED, "asker")
    llm_server.queue(
        tool_reply(ScriptedToolCall("present_form", [json.dumps(FORM)], id="call_form")),
        text_reply("Going ahead."),
    )
    async with get_bus().subscribe(canvas_service.TOPIC) as events:
        run = asyncio.create_task(
            client.post(
                "/api/chat/execute", json={"agent": "asker", "task": "ask me"}, headers=admin.headers, timeout=60
            )
        )
        presented = await asyncio.wait_for(anext(aiter(events)), 30)
    found = await _canvases(client, admin)
    assert [c["id"] for c in found] == [presented["canvas_id"]]
    await asyncio.sleep(1.0)  # longer than ATOM_CHAT_TOOL_TIMEOUT_S: the form's wait is its own bound
    assert not run.done()
    submitted = await client.post(
        f"/api/canvases/{found[0]['id']}/submit", json={"values": {"ok": True}}, headers=admin.headers
    )
    assert submitted.status_code == 200
    body = (await asyncio.wait_for(run, 30)).json()
    assert body["status"] == "completed" and body["output"] == "Going ahead."
    assert body["tool_calls"][0]["status"] == "ok" and body["tool_calls"][0]["decision"] == "allow"
    result = json.loads(next(m for m in llm_server.requests[1].body["messages"] if m["role"] == "tool")["content"])
    assert result["status"] == "submitted" and result["values"] == {"ok": True}
    assert result["submitted_by"] == f"user:{admin.id}" and result["submitted_by_name"] == admin.username


async def test_a_refused_submission_reaches_the_waiting_tool_call(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    """An INTERN may present a form (2) but not act on a person's submission (canvas_submit, 3): the
    refusal is the tool's result at once, not a wait until the form's timeout (60 s here)."""
    await agent_named(db, settings, MaturityLevel.INTERN, "trainee")
    llm_server.queue(
        tool_reply(ScriptedToolCall("present_form", [json.dumps(FORM)], id="call_form")),
        text_reply("I may not act on that."),
    )
    async with get_bus().subscribe(canvas_service.TOPIC) as events:
        run = asyncio.create_task(
            client.post(
                "/api/chat/execute", json={"agent": "trainee", "task": "ask me"}, headers=admin.headers, timeout=60
            )
        )
        presented = await asyncio.wait_for(anext(aiter(events)), 30)
    denied = await client.post(
        f"/api/canvases/{presented['canvas_id']}/submit", json={"values": {"ok": True}}, headers=admin.headers
    )
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "CANVAS_SUBMIT_DENIED"
    body = (await asyncio.wait_for(run, 30)).json()
    assert body["status"] == "completed" and body["output"] == "I may not act on that."
    result = json.loads(next(m for m in llm_server.requests[1].body["messages"] if m["role"] == "tool")["content"])
    assert result["status"] == "refused" and result["code"] == "CANVAS_SUBMIT_DENIED"
    assert result["canvas_id"] == presented["canvas_id"] and "intern" in result["reason"].lower()
    form = (await client.get(f"/api/canvases/{presented['canvas_id']}", headers=admin.headers)).json()
    assert form["status"] == "open" and form["submission"] is None
