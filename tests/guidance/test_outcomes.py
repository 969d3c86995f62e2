"""A person marks whether a resolution worked; the suggestion follows the recorded successes (ties: the
documented default); only a real error can be marked, once per resolution, by an operator."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atom.audit.models import AuditEvent
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import MakeUser, UserWithKey
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"chat_max_steps": 3}


async def _suggested(client: httpx.AsyncClient, user: UserWithKey) -> str:
    response = await client.post(
        "/api/guidance/classify", json={"message": "Invalid arguments for calculate"}, headers=user.headers
    )
    assert response.json()["category"] == "invalid_input"
    return str(response.json()["suggested"])


async def test_the_suggestion_is_the_resolution_that_worked_most_often(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    make_user: MakeUser,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "fumbler")
    operator, viewer = await make_user("operator"), await make_user("viewer")
    llm_server.queue(
        tool_reply(
            *[ScriptedToolCall("calculate", ['{"nope": 1}'], id=f"bad{i}") for i in (1, 2, 3)],
            ScriptedToolCall("calculate", ['{"expression": "2+2"}'], id="good"),
        ),
        text_reply("Sorry."),
    )
    run = await client.post("/api/chat/execute", json={"agent": "fumbler", "task": "add"}, headers=operator.headers)
    execution = run.json()["id"]

    async def mark(call: str, resolution: str, worked: bool, user: UserWithKey = operator) -> httpx.Response:
        body = {"subject_type": "agent_tool_call", "subject_id": f"{execution}/{call}", "resolution_id": resolution}
        return await client.post("/api/guidance/outcomes", json={**body, "worked": worked}, headers=user.headers)

    assert await _suggested(client, viewer) == "fix_input"  # nothing recorded: the documented default
    first = await mark("bad1", "fix_definition", True)
    assert first.status_code == 201, first.text
    assert first.json()["category"] == "invalid_input" and first.json()["user_id"] == operator.id
    assert await _suggested(client, viewer) == "fix_definition"  # 1 success against 0
    assert (await mark("bad2", "fix_input", True)).status_code == 201
    assert await _suggested(client, viewer) == "fix_input"  # 1 against 1: the default wins the tie
    assert (await mark("bad3", "fix_input", False)).status_code == 201
    assert await _suggested(client, viewer) == "fix_input"  # a failure is no success: still 1 against 1
    assert (await mark("bad3", "fix_definition", True)).status_code == 201
    assert await _suggested(client, viewer) == "fix_definition"  # 2 against 1

    progress = (await client.get(f"/api/guidance/agent-runs/{execution}", headers=viewer.headers)).json()
    by_key = {s["key"]: s for s in progress["steps"]}
    assert by_key["bad3"]["guidance"]["marked"] == {"fix_input": False, "fix_definition": True}
    assert by_key["bad1"]["guidance"]["suggested"] == "fix_definition"
    assert by_key["bad1"]["guidance"]["person_fix"]["successes"] == 2
    assert by_key["bad1"]["guidance"]["agent_fix"]["failures"] == 1
    assert by_key["good"]["guidance"] is None

    # Refused, and nothing recorded: a resolution of another category, twice the same mark, no error,
    # an unknown run, a malformed subject, a viewer.
    other = await mark("bad1", "retry_once", True)
    assert other.status_code == 422 and other.json()["error"]["code"] == "UNKNOWN_RESOLUTION"
    assert other.json()["error"]["details"]["fields"][0]["field"] == "body.resolution_id"
    again = await mark("bad1", "fix_definition", False)
    assert again.status_code == 409 and again.json()["error"]["code"] == "OUTCOME_EXISTS"
    fine = await mark("good", "fix_input", True)
    assert fine.status_code == 409 and fine.json()["error"]["code"] == "NO_ERROR"
    body = {"subject_type": "agent_run", "subject_id": "0190", "resolution_id": "fix_input", "worked": True}
    assert (await client.post("/api/guidance/outcomes", json=body, headers=operator.headers)).status_code == 404
    body["subject_id"] = "a b"
    malformed = await client.post("/api/guidance/outcomes", json=body, headers=operator.headers)
    assert malformed.status_code == 422 and malformed.json()["error"]["details"]["fields"][0]["field"] == (
        "body.subject_id"
    )
    assert (await mark("bad2", "fix_definition", True, viewer)).status_code == 403
    listed = (await client.get("/api/guidance/outcomes?category=invalid_input", headers=viewer.headers)).json()
    assert len(listed["items"]) == 4

    async with db.session_scope() as s:
        audited = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "guidance.resolution_outcome"))).all()
    assert sorted(e.decision or "" for e in audited) == ["did_not_work", "worked", "worked", "worked"]
    assert {e.actor_id for e in audited} == {operator.id}
