"""The governed tool-calling loop: each governance outcome, schema errors, bounds and delegation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atom.chat.models import AgentExecution
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.training.models import AgentProposal
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import UserWithKey
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"chat_max_steps": 3, "delegation_max_depth": 1}


def _tool_messages(server: WatchedOpenAIServer, request_index: int) -> list[dict[str, Any]]:
    return [m for m in server.requests[request_index].body["messages"] if m["role"] == "tool"]


async def _execute(client: httpx.AsyncClient, admin: UserWithKey, agent: str, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/chat/execute", json={"agent": agent, "task": "do it", **extra}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_allowed_tool_runs_and_the_model_sees_its_result(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.STUDENT, "counter")
    llm_server.queue(
        tool_reply(ScriptedToolCall("calculate", ['{"expres', 'sion": "6*7"}'], id="call_a")),
        text_reply("It is 42."),
    )
    run = await _execute(client, admin, "counter")
    assert run["status"] == "completed" and run["output"] == "It is 42." and run["steps"] == 2
    assert run["tool_calls"][0]["name"] == "calculate" and run["tool_calls"][0]["status"] == "ok"
    assert run["tool_calls"][0]["decision"] == "allow"
    results = _tool_messages(llm_server, 1)
    assert results[0]["tool_call_id"] == "call_a" and '"result": 42' in results[0]["content"]
    assert run["input_tokens"] == 24 and run["output_tokens"] == 14  # two calls of (12, 7)
    offered = {t["function"]["name"] for t in llm_server.requests[0].body["tools"]}
    assert {"calculate", "get_current_time", "http_request", "delegate_to_agent"} <= offered


async def test_denied_tool_is_explained_to_the_model(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.STUDENT, "poster")
    post = '{"method": "POST", "url": "https://example.com/things", "json": {"a": 1}}'
    llm_server.queue(tool_reply(ScriptedToolCall("http_request", [post])), text_reply("I may not do that."))
    run = await _execute(client, admin, "poster")
    call = run["tool_calls"][0]
    assert (call["status"], call["decision"], call["action"]) == ("denied", "deny", "http_post")
    assert call["reason_code"] == "COMPLEXITY_EXCEEDS_MATURITY"
    told = _tool_messages(llm_server, 1)[0]["content"]
    assert "Denied by governance" in told and "SUPERVISED" in told
    assert run["status"] == "completed"


async def test_intern_automated_call_becomes_a_proposal(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    intern_id = await agent_named(db, settings, MaturityLevel.INTERN, "intern")
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "helper")
    args = '{"agent": "helper", "task": "summarise the report"}'
    llm_server.queue(tool_reply(ScriptedToolCall("delegate_to_agent", [args])), text_reply("Waiting for approval."))
    run = await _execute(client, admin, "intern", trigger="automated")
    call = run["tool_calls"][0]
    assert call["status"] == "pending_approval" and call["decision"] == "propose"
    async with db.session_scope() as s:
        proposal = await s.get(AgentProposal, call["proposal_id"])
        assert proposal is not None
        assert (proposal.agent_id, proposal.status, proposal.source) == (intern_id, "pending", "chat")
        assert proposal.plan == [
            {"action": "delegate_to_agent", "params": {"agent": "helper", "task": "summarise the report"}}
        ]
        assert (await s.scalars(select(AgentExecution).where(AgentExecution.trigger == "delegation"))).all() == []
    told = _tool_messages(llm_server, 1)[0]["content"]
    assert "Pending approval" in told and call["proposal_id"] in told
    assert len(llm_server.requests) == 2  # the helper agent never ran


async def test_invalid_arguments_are_told_to_the_model_which_retries(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.INTERN, "sloppy")
    llm_server.queue(
        tool_reply(ScriptedToolCall("calculate", ['{"expr": "1+1"}'])),
        tool_reply(ScriptedToolCall("calculate", ['{"expression": "1+1"}'])),
        text_reply("2"),
    )
    run = await _execute(client, admin, "sloppy")
    assert [c["status"] for c in run["tool_calls"]] == ["invalid_arguments", "ok"]
    told = _tool_messages(llm_server, 1)[0]["content"]
    assert "Invalid arguments for calculate" in told and "expression" in told
    assert run["status"] == "completed" and run["output"] == "2"


async def test_step_bound_stops_a_model_that_keeps_calling_tools(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.INTERN, "looper")
    llm_server.default = tool_reply(ScriptedToolCall("get_current_time", ['{"timezone": "UTC"}']), text=["again "])
    run = await _execute(client, admin, "looper")
    assert run["status"] == "failed" and run["error_code"] == "STEP_LIMIT"
    assert run["steps"] == 3 and len(run["tool_calls"]) == 3 and len(llm_server.requests) == 3
    assert run["output"] == "again again again "  # what it said is kept


async def test_delegation_runs_the_other_agent_up_to_the_depth_limit(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "boss")
    worker_id = await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "worker")
    llm_server.queue(
        tool_reply(ScriptedToolCall("delegate_to_agent", ['{"agent": "worker", "task": "add 2 and 3"}'])),
        tool_reply(ScriptedToolCall("delegate_to_agent", ['{"agent": "boss", "task": "you do it"}'])),
        text_reply("5"),
        text_reply("The worker says 5."),
    )
    run = await _execute(client, admin, "boss")
    assert run["status"] == "completed" and run["output"] == "The worker says 5."
    delegated = run["tool_calls"][0]
    assert delegated["status"] == "ok"
    async with db.session_scope() as s:
        child = (await s.scalars(select(AgentExecution).where(AgentExecution.parent_execution_id == run["id"]))).one()
    assert (child.agent_id, child.depth, child.trigger, child.trigger_kind) == (worker_id, 1, "delegation", "automated")
    assert child.output == "5" and child.status == "completed"
    refused = child.tool_calls[0]
    assert refused["status"] == "failed"
    assert "Delegation depth limit" in _tool_messages(llm_server, 2)[0]["content"]
    assert '"output": "5"' in _tool_messages(llm_server, 3)[0]["content"]


async def test_agent_configuration_limits_tools_and_sets_temperature(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, admin: UserWithKey
) -> None:
    created = await client.post(
        "/api/agents",
        json={
            "name": "narrow",
            "confidence": 0.95,
            "configuration": {"tools": ["calculate"], "temperature": 0.2, "system_prompt": "Only arithmetic."},
        },
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text
    get = '{"url": "https://example.com/"}'
    llm_server.queue(tool_reply(ScriptedToolCall("http_request", [get])), text_reply("I can only calculate."))
    run = await _execute(client, admin, "narrow")
    assert run["tool_calls"][0]["status"] == "unknown_tool"
    first = llm_server.requests[0].body
    assert [t["function"]["name"] for t in first["tools"]] == ["calculate"]
    assert first["temperature"] == 0.2 and first["messages"][0] == {"role": "system", "content": "Only arithmetic."}
    assert "Available tools: calculate" in _tool_messages(llm_server, 1)[0]["content"]
