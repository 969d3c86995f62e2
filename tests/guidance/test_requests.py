"""Agent requests: the agent asks, a person answers (a permission: an approver), the answer is the tool's
result; without an answer in time the default applies; a cancelled run cancels its request; bad input is
refused naming the field and changes nothing; every step is audited."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select

from atom.audit.models import AuditEvent
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.guidance import requests
from atom.guidance.models import AgentRequest, RequestKind
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import MakeUser, UserWithKey
from tests.guidance.conftest import eventually
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"chat_max_steps": 3, "guidance_request_recheck_s": 0.5}


def _tool_result(server: WatchedOpenAIServer, index: int) -> dict[str, Any]:
    message = next(m for m in server.requests[index].body["messages"] if m["role"] == "tool")
    result: dict[str, Any] = json.loads(message["content"])
    return result


async def _execute(client: httpx.AsyncClient, user: UserWithKey, agent: str) -> dict[str, Any]:
    response = await client.post("/api/chat/execute", json={"agent": agent, "task": "go"}, headers=user.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _pending(client: httpx.AsyncClient, user: UserWithKey) -> dict[str, Any]:
    page = await eventually(
        client, "/api/guidance/requests?status=pending", user, lambda p: bool(p["items"]), "a pending request"
    )
    item: dict[str, Any] = page["items"][0]
    return item


async def _audit(db: Database, request_id: str) -> list[tuple[str, str | None, str | None]]:
    async with db.session_scope() as s:
        rows = await s.scalars(select(AuditEvent).where(AuditEvent.resource_id == request_id).order_by(AuditEvent.seq))
        return [(e.action, e.actor_type, e.decision) for e in rows]


async def test_a_permission_is_answered_by_an_approver_and_the_agent_gets_the_answer(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    make_user: MakeUser,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.INTERN, "mover")
    operator, approver = await make_user("operator"), await make_user("approver")
    ask = '{"action": "move the files to the archive", "reason": "the disk is full", "timeout_s": 50}'
    llm_server.queue(tool_reply(ScriptedToolCall("request_permission", [ask], id="p1")), text_reply("Moving."))
    run = asyncio.create_task(_execute(client, operator, "mover"))
    pending = await _pending(client, operator)
    assert pending["kind"] == "permission" and pending["options"] == ["allow", "deny"]
    assert pending["question"] == "May the agent move the files to the archive?"
    assert pending["context"] == "the disk is full" and pending["default_option"] == "deny"
    assert pending["timeout_s"] == 50  # within ATOM_CHAT_TOOL_TIMEOUT_S (60) less its margin
    path = f"/api/guidance/requests/{pending['id']}/answer"

    refused = await client.post(path, json={"answer": "allow"}, headers=operator.headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "APPROVER_REQUIRED"
    wrong = await client.post(path, json={"answer": "maybe"}, headers=approver.headers)
    assert wrong.status_code == 422 and wrong.json()["error"]["details"]["fields"][0]["field"] == "body.answer"
    long_note = await client.post(path, json={"answer": "allow", "note": "x" * 2001}, headers=approver.headers)
    assert long_note.status_code == 422
    still = (await client.get(f"/api/guidance/requests/{pending['id']}", headers=operator.headers)).json()
    assert still["status"] == "pending" and still["answer"] is None  # nothing changed on bad input

    answered = await client.post(path, json={"answer": "allow", "note": "go ahead"}, headers=approver.headers)
    assert answered.status_code == 200 and answered.json()["answered_by"] == approver.id
    done = await run
    assert done["status"] == "completed" and done["tool_calls"][0]["status"] == "ok"
    result = _tool_result(llm_server, 1)
    assert (result["answer"], result["granted"], result["timed_out"], result["answered_by"]) == (
        "allow",
        True,
        False,
        "person",
    )
    assert result["message"] == "A person chose “allow”. Their note: go ahead"
    twice = await client.post(path, json={"answer": "deny"}, headers=approver.headers)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "REQUEST_SETTLED"
    assert await _audit(db, pending["id"]) == [
        ("guidance.request", "agent", "pending"),
        ("guidance.request.answer", "user", "allow"),
    ]


async def test_a_decision_nobody_answers_times_out_to_its_default(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    make_user: MakeUser,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "chooser")
    operator = await make_user("operator")
    ask = '{"question": "Ship today?", "options": ["yes", "no"], "default": "no", "timeout_s": 1}'
    llm_server.queue(tool_reply(ScriptedToolCall("request_decision", [ask], id="d1")), text_reply("Not today."))
    reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM guidance_agent_requests" in statement:
            reads.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        done = await _execute(client, operator, "chooser")
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    # The wait sleeps between re-reads (every ATOM_GUIDANCE_REQUEST_RECHECK_S, 0.5 s here): a few, not a spin.
    assert 1 <= len(reads) <= 8, len(reads)
    assert done["status"] == "completed"
    result = _tool_result(llm_server, 1)
    assert (result["answer"], result["timed_out"], result["answered_by"]) == ("no", True, "default")
    assert result["message"] == "No one answered within 1 s: the default “no” applies."
    page = (await client.get("/api/guidance/requests?status=timed_out", headers=operator.headers)).json()
    row = page["items"][0]
    assert (row["status"], row["answer"], row["answered_by"]) == ("timed_out", "no", None)
    late = await client.post(
        f"/api/guidance/requests/{row['id']}/answer", json={"answer": "yes"}, headers=operator.headers
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "REQUEST_SETTLED"
    assert await _audit(db, row["id"]) == [
        ("guidance.request", "agent", "pending"),
        ("guidance.request.timeout", "system", "no"),
    ]
    assert (await client.get("/api/guidance/requests?status=pending", headers=operator.headers)).json()["items"] == []


async def test_a_cancelled_run_cancels_its_request(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    make_user: MakeUser,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "asker")
    operator = await make_user("operator")
    ask = '{"question": "Wait?", "options": ["a", "b"], "default": "a", "timeout_s": 50}'
    llm_server.queue(tool_reply(ScriptedToolCall("request_decision", [ask], id="d1")), text_reply("never"))
    run = asyncio.create_task(_execute(client, operator, "asker"))
    pending = await _pending(client, operator)
    cancel = await client.post(f"/api/chat/executions/{pending['execution_id']}/cancel", headers=operator.headers)
    assert cancel.json()["cancelled"] is True
    with contextlib.suppress(asyncio.CancelledError):  # the execute call ends with its cancelled run
        await run
    execution = await client.get(f"/api/chat/executions/{pending['execution_id']}", headers=operator.headers)
    assert execution.json()["status"] == "cancelled"
    row = (await client.get(f"/api/guidance/requests/{pending['id']}", headers=operator.headers)).json()
    assert row["status"] == "cancelled" and row["answer"] is None
    answer = await client.post(
        f"/api/guidance/requests/{pending['id']}/answer", json={"answer": "a"}, headers=operator.headers
    )
    assert answer.status_code == 409


async def test_bad_requests_are_refused_and_nothing_is_asked(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    make_user: MakeUser,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "sloppy")
    operator = await make_user("operator")
    too_many = json.dumps({"question": "Pick", "options": [str(i) for i in range(11)], "default": "1"})
    llm_server.queue(
        tool_reply(
            ScriptedToolCall("request_decision", ['{"question": "Pick", "options": ["a", "b"], "default": "c"}']),
            ScriptedToolCall("request_decision", [too_many]),
            ScriptedToolCall("request_decision", ['{"question": "P", "options": ["a", "a"], "default": "a"}']),
            ScriptedToolCall("request_permission", ['{"action": "x", "timeout_s": 0}']),
            ScriptedToolCall("request_permission", ['{"action": "x", "default": "maybe"}']),
        ),
        text_reply("I give up."),
    )
    done = await _execute(client, operator, "sloppy")
    assert [c["status"] for c in done["tool_calls"]] == ["invalid_arguments"] * 5
    told = [m["content"] for m in llm_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert "default: Value error, must be one of the options" in told[0]
    assert "options: List should have at most 10 items" in told[1]
    assert "options must be distinct" in told[2]
    assert "timeout_s: Input should be greater than or equal to 1" in told[3]
    assert "default: Input should be 'allow' or 'deny'" in told[4]
    async with db.session_scope() as s:
        assert (await s.scalars(select(AgentRequest))).all() == []
    bad = await client.get("/api/guidance/requests?status=sleeping", headers=operator.headers)
    assert bad.status_code == 422 and bad.json()["error"]["details"]["fields"][0]["field"] == "query.status"
    assert (await client.get("/api/guidance/requests/nope", headers=operator.headers)).status_code == 404


async def test_an_expired_request_cannot_be_answered(
    client: httpx.AsyncClient, db: Database, settings: Settings, make_user: MakeUser
) -> None:
    agent_id = await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "gone")
    operator = await make_user("operator")
    ask = requests.Ask(RequestKind.DECISION, agent_id, None, "Now?", ("yes", "no"), "no", timeout_s=1)
    async with db.session_scope() as s:
        row = await requests.create(session=s, ask=ask)
    await asyncio.sleep(1.1)  # past its expiry; nobody waits for it (its run is gone)
    late = await client.post(
        f"/api/guidance/requests/{row.id}/answer", json={"answer": "yes"}, headers=operator.headers
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "REQUEST_EXPIRED"
    async with db.session_scope() as s:
        assert (await requests.get(session=s, request_id=row.id)).status == "pending"
        with pytest.raises(Exception, match="default"):
            await requests.create(
                session=s, ask=requests.Ask(RequestKind.DECISION, agent_id, None, "?", ("a",), "b", 5)
            )
