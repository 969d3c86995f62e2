"""Agent runs report their progress as they go: step n of at most m, what / why / next in plain words,
each tool call's outcome, guidance on each error; a chat session's run is private like the run."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import MakeUser, UserWithKey
from tests.guidance.conftest import eventually
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"chat_max_steps": 5, "guidance_request_recheck_s": 0.5}


async def _execute(client: httpx.AsyncClient, user: UserWithKey, agent: str) -> dict[str, Any]:
    response = await client.post("/api/chat/execute", json={"agent": agent, "task": "paint it"}, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_run_advances_step_by_step_and_ends_with_guidance_on_its_failed_calls(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    make_user: MakeUser,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "painter")
    operator = await make_user("operator")
    ask = '{"question": "Which colour?", "options": ["red", "blue"], "default": "red", "timeout_s": 60}'
    llm_server.queue(
        tool_reply(ScriptedToolCall("request_decision", [ask], id="call_ask")),
        tool_reply(
            ScriptedToolCall("calculate", ['{"expr": "1+1"}'], id="call_bad1"),
            ScriptedToolCall("teleport", ["{}"], id="call_bad2"),
        ),
        text_reply("Painted it blue."),
    )
    run = asyncio.create_task(_execute(client, operator, "painter"))

    # Live: the run waits for a person in step 1; its progress says so while it waits.
    waiting = await eventually(
        client, "/api/guidance/agent-runs?status=running", operator,
        lambda page: bool(page["items"]) and page["items"][0]["what"].startswith("Waiting for a person"),
        "the run to wait for an answer",
    )  # fmt: skip
    live = waiting["items"][0]
    assert (live["step"], live["total"], live["bounded"], live["percent"]) == (1, 5, True, 0)
    assert live["what"] == "Waiting for a person to answer: “Which colour?”"
    assert "“red”" in live["why"] and "Requests" in live["next"]
    assert [(s["kind"], s["status"]) for s in live["steps"]] == [("model", "done"), ("tool", "running")]
    pending = (
        await eventually(
            client, "/api/guidance/requests?status=pending", operator, lambda p: bool(p["items"]), "the request"
        )
    )["items"]
    assert pending[0]["question"] == "Which colour?" and pending[0]["execution_id"] == live["subject_id"]
    answered = await client.post(
        f"/api/guidance/requests/{pending[0]['id']}/answer", json={"answer": "blue"}, headers=operator.headers
    )
    assert answered.status_code == 200, answered.text

    done = await run
    assert done["status"] == "completed" and done["output"] == "Painted it blue."
    progress = (await client.get(f"/api/guidance/agent-runs/{done['id']}", headers=operator.headers)).json()
    assert (progress["status"], progress["step"], progress["total"], progress["bounded"]) == ("completed", 3, 3, False)
    assert progress["percent"] == 100 and progress["what"] == "Finished in 3 steps"
    assert progress["next"] == "Nothing: the run is over."
    kinds = [(s["kind"], s["key"], s["status"]) for s in progress["steps"]]
    assert kinds == [
        ("model", "step-1", "done"),
        ("tool", "call_ask", "ok"),
        ("model", "step-2", "done"),
        ("tool", "call_bad1", "invalid_arguments"),
        ("tool", "call_bad2", "unknown_tool"),
        ("model", "step-3", "done"),
    ]
    bad_args, unknown_tool = progress["steps"][3]["guidance"], progress["steps"][4]["guidance"]
    assert bad_args["category"] == "invalid_input" and bad_args["suggested"] == "fix_input"
    assert bad_args["agent_fix"]["id"] == "fix_input" and bad_args["person_fix"]["id"] == "fix_definition"
    assert unknown_tool["category"] == "resource_not_found" and unknown_tool["suggested"] == "look_up_again"
    assert progress["steps"][1]["guidance"] is None and progress["guidance"] is None


async def test_a_failed_run_says_what_happened_and_what_to_do(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    make_user: MakeUser,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "looper")
    operator = await make_user("operator")
    llm_server.queue(*[tool_reply(ScriptedToolCall("get_current_time", ["{}"], id=f"c{i}")) for i in range(5)])
    done = await _execute(client, operator, "looper")
    assert done["status"] == "failed" and done["error_code"] == "STEP_LIMIT"
    progress = (await client.get(f"/api/guidance/agent-runs/{done['id']}", headers=operator.headers)).json()
    assert progress["status"] == "failed" and progress["what"] == "Failed" and "step bound" in progress["why"]
    assert progress["step"] == 5 and progress["percent"] == 100 and progress["next"] == "See what to do below."
    assert progress["guidance"]["subject_type"] == "agent_run" and progress["guidance"]["error_code"] == "STEP_LIMIT"


async def test_a_chat_sessions_run_is_seen_by_its_author_and_admins_only(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    make_user: MakeUser,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "confidant")
    author, other, admin = await make_user("operator"), await make_user("operator"), await make_user("admin")
    created = await client.post("/api/chat/sessions", json={"agent": "confidant"}, headers=author.headers)
    assert created.status_code == 201, created.text
    llm_server.queue(text_reply("A secret answer."))
    sent = await client.post(
        f"/api/chat/sessions/{created.json()['id']}/messages",
        json={"content": "my secret", "stream": False},
        headers=author.headers,
    )
    assert sent.status_code == 200, sent.text
    path = f"/api/guidance/agent-runs/{sent.json()['id']}"
    assert (await client.get(path, headers=author.headers)).json()["title"] == "confidant: my secret"
    assert (await client.get(path, headers=admin.headers)).status_code == 200
    hidden = await client.get(path, headers=other.headers)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "OPERATION_NOT_FOUND"
    assert (await client.get("/api/guidance/agent-runs", headers=other.headers)).json()["items"] == []
    assert len((await client.get("/api/guidance/agent-runs", headers=author.headers)).json()["items"]) == 1
    bad = await client.get("/api/guidance/agent-runs?status=sleeping", headers=author.headers)
    assert bad.status_code == 422 and bad.json()["error"]["details"]["fields"][0]["field"] == "query.status"
