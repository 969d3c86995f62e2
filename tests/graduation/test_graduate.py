"""An agent graduates end to end: it runs tools, is remembered, rated and corrected, is scored against the
constitution, passes readiness and the exam, and an approver promotes it; the gate holds until then."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.memory import ingest
from atom.memory.runtime import Memory
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import MakeUser, UserWithKey
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"graduation_intern_min_episodes": 3}


async def run_with_tool(client: httpx.AsyncClient, server: WatchedOpenAIServer, user: UserWithKey) -> str:
    server.queue(tool_reply(ScriptedToolCall("get_current_time", ('{"timezone": "UTC"}',))), text_reply("Noon."))
    response = await client.post(
        "/api/chat/execute", json={"agent": "clerk", "task": "what time is it?", "stream": False}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    assert response.json()["tool_calls"][0]["name"] == "get_current_time"
    return str(response.json()["id"])


async def remember_everything(db: Database, memory: Memory) -> None:
    async with db.session_scope() as s:
        assert await ingest.ingest_source(session=s, memory=memory, source="executions") > 0


async def readiness(client: httpx.AsyncClient, user: UserWithKey) -> dict[str, Any]:
    response = await client.get("/api/graduation/agents/clerk/readiness", headers=user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_an_agent_earns_its_promotion(
    chat_app: Any,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    make_user: MakeUser,
    db: Database,
    settings: Settings,
    memory: Memory,
) -> None:
    await agent_named(db, settings, MaturityLevel.STUDENT, "clerk")
    operator, approver, admin = await make_user("operator"), await make_user("approver"), await make_user("admin")

    early = await readiness(client, operator)
    assert early["target_level"] == "INTERN" and early["episodes"] == 0 and not early["ready"]
    assert any("3 more" in gap for gap in early["gaps"])

    runs = [await run_with_tool(client, llm_server, operator) for _ in range(3)]
    await remember_everything(db, memory)
    fresh = await readiness(client, operator)
    assert fresh["episodes"] == 3 and fresh["intervention_rate"] == 0 and fresh["constitutional_score"] == 1.0
    assert fresh["ready"] and fresh["score"] == 100

    # A constitution the agent's recorded calls break: its score falls and readiness names the gap.
    strict = (
        "rules:\n  - id: paris-only\n    actions: [get_current_time]\n"
        "    condition: \"params.timezone == 'Europe/Paris'\"\n"
    )
    saved = await client.put("/api/graduation/rules", json={"source": strict}, headers=admin.headers)
    assert saved.status_code == 201 and saved.json()["version"] == 1, saved.text
    broken = await readiness(client, operator)
    assert broken["constitutional_score"] == 0 and not broken["ready"]
    assert any("Constitutional score 0.00" in gap for gap in broken["gaps"])
    bad = await client.put(
        "/api/graduation/rules", json={"source": "rules:\n  - id: x\n    actions: [a]\n    condition: '1 +'\n"},
        headers=admin.headers,
    )  # fmt: skip
    assert bad.status_code == 422 and bad.json()["error"]["details"] == {"rule": "x", "line": 2, "column": 4}
    assert (
        await client.put("/api/graduation/rules", json={"source": strict}, headers=approver.headers)
    ).status_code == 403
    fair = "rules:\n  - id: utc\n    actions: [get_current_time]\n    condition: \"params.timezone == 'UTC'\"\n"
    assert (await client.put("/api/graduation/rules", json={"source": fair}, headers=admin.headers)).json()[
        "version"
    ] == 2
    versions = (await client.get("/api/graduation/rules", headers=operator.headers)).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]

    # People rate and correct: a correction is an intervention on that run's episode.
    for execution_id in runs:
        rated = await client.post(
            "/api/feedback",
            json={"target_type": "execution", "target_id": execution_id, "kind": "rating", "rating": 5},
            headers=approver.headers,
        )
        assert rated.status_code == 201
    corrected = await client.post(
        "/api/feedback",
        json={"target_type": "execution", "target_id": runs[0], "kind": "correction", "corrected": "It is 12:00 UTC."},
        headers=approver.headers,
    )
    assert corrected.status_code == 201
    ready = await readiness(client, operator)
    assert ready["intervention_rate"] == pytest.approx(1 / 3, abs=1e-3) and ready["ready"], ready

    promotion = {"to_level": "INTERN", "reason": "earned it"}
    gated = await client.post("/api/agents/clerk/promote", json=promotion, headers=approver.headers)
    assert gated.status_code == 409 and gated.json()["error"]["code"] == "PROMOTION_NOT_READY"
    assert any("exam" in gap for gap in gated.json()["error"]["details"]["gaps"])

    assert (
        await client.post("/api/graduation/agents/clerk/exams", json={}, headers=operator.headers)
    ).status_code == 403
    exam = await client.post("/api/graduation/agents/clerk/exams", json={}, headers=approver.headers)
    assert exam.status_code == 201, exam.text
    body = exam.json()
    assert body["passed"] and body["target_level"] == "INTERN" and body["rule_set_version"] == 2
    assert body["episodes"] == 1 and body["actions"] == 1  # the corrected run is the edge case it replays
    assert body["evidence"][0]["action"] == "get_current_time" and body["evidence"][0]["governance"] == "allow"

    promoted = await client.post("/api/agents/clerk/promote", json=promotion, headers=approver.headers)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["maturity_level"] == "INTERN"

    # Past the gate only an admin, and only saying so; the override is audited with what it skipped.
    jump = {"to_level": "SUPERVISED", "reason": "urgent", "override": True}
    assert (await client.post("/api/agents/clerk/promote", json=jump, headers=approver.headers)).status_code == 403
    no_override = {"to_level": "SUPERVISED", "reason": "urgent"}
    assert (await client.post("/api/agents/clerk/promote", json=no_override, headers=admin.headers)).status_code == 409
    forced = await client.post("/api/agents/clerk/promote", json=jump, headers=admin.headers)
    assert forced.status_code == 200 and forced.json()["maturity_level"] == "SUPERVISED"
    trail = await client.get("/api/audit?action=agent.promote.override", headers=admin.headers)
    (record,) = trail.json()["items"]
    assert record["details"]["to"] == "SUPERVISED" and record["details"]["gaps"]


async def test_an_exam_with_a_violation_fails_and_keeps_the_gate_shut(
    chat_app: Any,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    make_user: MakeUser,
    db: Database,
    settings: Settings,
    memory: Memory,
) -> None:
    await agent_named(db, settings, MaturityLevel.STUDENT, "clerk")
    operator, approver, admin = await make_user("operator"), await make_user("approver"), await make_user("admin")
    runs = [await run_with_tool(client, llm_server, operator) for _ in range(3)]
    await remember_everything(db, memory)
    await client.post(
        "/api/feedback",
        json={"target_type": "execution", "target_id": runs[1], "kind": "correction", "corrected": "wrong zone"},
        headers=approver.headers,
    )
    rule = (
        "rules:\n  - id: paris\n    actions: [get_current_time]\n    condition: \"params.timezone == 'Europe/Paris'\"\n"
    )
    assert (await client.put("/api/graduation/rules", json={"source": rule}, headers=admin.headers)).status_code == 201
    exam = await client.post("/api/graduation/agents/clerk/exams", json={}, headers=approver.headers)
    body = exam.json()
    assert exam.status_code == 201 and not body["passed"]
    assert [v["rule_id"] for v in body["violations"]] == ["paris"]
    gated = await client.post(
        "/api/agents/clerk/promote", json={"to_level": "INTERN", "reason": "try"}, headers=approver.headers
    )
    assert gated.status_code == 409
    assert any("exam failed" in gap for gap in gated.json()["error"]["details"]["gaps"])
