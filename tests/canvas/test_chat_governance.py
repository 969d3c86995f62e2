"""Canvas tools under governance in a real agent run (both databases): a STUDENT's present_form (2) is
refused before any canvas exists, its present_chart (1) runs."""

from __future__ import annotations

import json
from typing import Any

import httpx

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named, chat_app, llm_server
from tests.conftest import UserWithKey
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply

__all__ = ["chat_app", "llm_server"]

FORM = {"schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}, "title": "Go?"}


async def test_a_student_may_not_present_a_form(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.STUDENT, "learner")
    llm_server.queue(
        tool_reply(ScriptedToolCall("present_form", [json.dumps(FORM)], id="call_form")),
        tool_reply(
            ScriptedToolCall("present_chart", ['{"chart_type": "pie", "labels": ["a"], "series": [{"values": [1]}]}'])
        ),
        text_reply("Shown what I may."),
    )
    body = (
        await client.post("/api/chat/execute", json={"agent": "learner", "task": "go"}, headers=admin.headers)
    ).json()
    assert [c["status"] for c in body["tool_calls"]] == ["denied", "ok"]
    assert [c["kind"] for c in (await client.get("/api/canvases", headers=admin.headers)).json()["items"]] == ["chart"]
