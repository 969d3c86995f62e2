"""ATOM_AUTO_PROMOTE: when a training session is scored, an agent whose readiness and a fresh exam pass is
promoted by `system:auto-promote` (audited); off, or not ready, nothing is promoted."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.memory import ingest
from atom.memory.runtime import Memory
from atom.security.models import Role
from tests.chat.conftest import WatchedOpenAIServer
from tests.conftest import MakeUser, UserWithKey
from tests.support.agents import make_agent
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply
from tests.training.conftest import SideEffects
from tests.training_scenarios.support import add_scenario, audit_rows, run_to_the_end, scheduled_training

SCENARIO: dict[str, Any] = {
    "name": "greet",
    "category": "sales",
    "task": "Greet Ann.",
    "tools": [],
    "expect": {"reference": {"answer": "Hello Ann", "match": "contains"}},
}
READY = {"graduation_intern_min_episodes": 2}


async def earn_episodes(
    client: httpx.AsyncClient, server: WatchedOpenAIServer, who: UserWithKey, db: Database, memory: Memory
) -> None:
    """Two real runs of the agent, remembered as two clean episodes (what readiness counts)."""
    for _ in range(2):
        server.queue(tool_reply(ScriptedToolCall("get_current_time", ('{"timezone": "UTC"}',))), text_reply("Noon."))
        response = await client.post(
            "/api/chat/execute",
            json={"agent": "seller", "task": "what time is it?", "stream": False},
            headers=who.headers,
        )
        assert response.status_code == 200, response.text
    async with db.session_scope() as s:
        assert await ingest.ingest_source(session=s, memory=memory, source="executions") > 0


async def level(client: httpx.AsyncClient, who: UserWithKey, agent_id: str) -> str:
    return str((await client.get(f"/api/agents/{agent_id}", headers=who.headers)).json()["maturity_level"])


@pytest.mark.parametrize(
    ("settings_overrides", "promoted"),
    [({"auto_promote": True, **READY}, True), ({"auto_promote": False, **READY}, False)],
    ids=["on", "off"],
)
async def test_a_scored_training_run_promotes_a_ready_agent_only_when_on(
    chat_app: FastAPI,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    make_user: MakeUser,
    db: Database,
    settings: Settings,
    memory: Memory,
    effects: SideEffects,
    promoted: bool,
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.STUDENT, category="sales", name="seller")
    approver = await make_user(Role.APPROVER)
    await earn_episodes(client, llm_server, approver, db, memory)
    ready = (await client.get("/api/graduation/agents/seller/readiness", headers=approver.headers)).json()
    assert ready["ready"], ready
    await add_scenario(client, approver, SCENARIO)
    training_id = await scheduled_training(client, approver, agent.id)

    llm_server.queue(text_reply("Hello Ann!"))
    done = await run_to_the_end(chat_app, client, approver, training_id)
    assert done["status"] == "completed" and done["performance"] == 1.0

    decisions = await audit_rows(client, approver, "agent.promote.auto")
    promotions = await audit_rows(client, approver, "agent.promote")
    exams = (await client.get("/api/graduation/agents/seller/exams", headers=approver.headers)).json()
    if not promoted:
        assert await level(client, approver, agent.id) == "STUDENT"
        assert decisions == [] and promotions == [] and exams == []  # off: nothing read, nothing written
        return
    assert await level(client, approver, agent.id) == "INTERN"
    (decision,) = decisions
    assert (decision["actor_type"], decision["actor_id"], decision["decision"]) == (
        "system",
        "auto-promote",
        "promoted",
    )
    assert decision["details"]["moment"] == "training.scored" and decision["details"]["gaps"] == []
    (promotion,) = promotions
    assert (promotion["actor_type"], promotion["actor_id"]) == ("system", "auto-promote")
    assert promotion["details"]["to"] == "INTERN" and "ATOM_AUTO_PROMOTE" in promotion["reason"]
    (exam,) = exams  # a fresh exam, taken by the same actor, is what let it through
    assert exam["passed"] and exam["created_by"] == "auto-promote" and decision["details"]["exam_id"] == exam["id"]
    (change,) = (await client.get(f"/api/agents/{agent.id}/levels", headers=approver.headers)).json()
    assert change["to_level"] == "INTERN" and change["actor_type"] == "system" and change["actor_id"] == "auto-promote"


@pytest.mark.parametrize("settings_overrides", [{"auto_promote": True}])
async def test_an_agent_that_is_not_ready_is_not_promoted_and_the_gaps_are_audited(
    client: httpx.AsyncClient, make_user: MakeUser, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.STUDENT, category="sales", name="seller")
    approver = await make_user(Role.APPROVER)
    training_id = await scheduled_training(client, approver, agent.id)
    done = await client.post(  # a person's completion is a moment too
        f"/api/training/{training_id}/complete", json={"performance": 0.9}, headers=approver.headers
    )
    assert done.status_code == 200, done.text
    assert await level(client, approver, agent.id) == "STUDENT"
    (decision,) = await audit_rows(client, approver, "agent.promote.auto")
    assert decision["decision"] == "skipped" and decision["details"]["moment"] == "training.completed"
    assert any("10 INTERN needs" in gap for gap in decision["details"]["gaps"])
    assert decision["details"]["exam_id"] is None  # not ready: no exam is taken
    assert (await client.get("/api/graduation/agents/seller/exams", headers=approver.headers)).json() == []
