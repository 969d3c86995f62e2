"""An INTERN's automated skill call becomes a proposal; once approved, it runs as that agent, in the sandbox,
on exactly the skill version the proposal recorded, or is refused with the reason (docs/skills.md)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from atom.chat.models import AgentExecution
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.training import supervision
from atom.training.models import AgentProposal
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.chat.test_skill_tools import COUNT_MD, COUNT_PY, _audit, _install_skills, _needs_sandbox
from tests.conftest import MakeUser, UserWithKey
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply


@pytest.fixture
async def http(live: str, admin: UserWithKey) -> Any:
    async with httpx.AsyncClient(base_url=f"http://{live}", headers=admin.headers, timeout=60) as client:
        await _install_skills(client)
        yield client


async def _propose_a_count(
    http: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, agent: str
) -> AgentProposal:
    """The INTERN's automated run calls skill_word_count; governance turns the call into a proposal."""
    llm_server.queue(
        tool_reply(ScriptedToolCall("skill_word_count", ['{"stdin": "one two three four five"}'], id="call_run")),
        text_reply("The count waits for approval."),
    )
    body = {"agent": agent, "task": "count the words", "trigger": "automated", "stream": False}
    response = await http.post("/api/chat/execute", json=body)
    assert response.status_code == 200, response.text
    async with db.session_scope() as s:
        [execution] = (await s.scalars(select(AgentExecution))).all()
        [call] = execution.tool_calls
        assert (call["status"], call["action"], call["decision"]) == ("pending_approval", "run_skill", "propose")
        proposal = await s.get(AgentProposal, call["proposal_id"])
    assert proposal is not None and proposal.status == "pending"
    assert await _audit(db, "skill.run") == []  # nothing ran before approval
    return proposal


async def _approve(http: httpx.AsyncClient, approver: UserWithKey, proposal: AgentProposal) -> dict[str, Any]:
    response = await http.post(
        f"/api/proposals/{proposal.id}/approve", json={"plan_hash": proposal.plan_hash}, headers=approver.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["proposal"])


async def test_an_approved_skill_call_of_an_intern_runs_in_the_sandbox_as_the_intern_on_the_recorded_version(
    http: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, make_user: MakeUser
) -> None:
    _needs_sandbox()
    intern_id = await agent_named(db, settings, MaturityLevel.INTERN, "counter")
    approver = await make_user(Role.APPROVER, username="ada")
    skill = (await http.get("/api/skills/word-count")).json()
    latest = (await http.get("/api/skills/word-count/latest")).json()
    proposal = await _propose_a_count(http, llm_server, db, "counter")
    [step] = proposal.plan
    assert step["action"] == "skill_word_count" and step["params"] == {"stdin": "one two three four five"}
    assert step["pin"] == {
        "skill": "word-count",
        "version_id": skill["active_version_id"],
        "version": latest["number"],
        "hash": latest["content_hash"],
    }  # the version the approver is shown is part of the plan hash

    executed = await _approve(http, approver, proposal)

    assert executed["status"] == "executed", executed
    [outcome] = executed["result"]["steps"]
    assert (outcome["status"], outcome["action"]) == ("done", "skill_word_count")
    ran = outcome["output"]
    assert (ran["skill"], ran["version"], ran["exit_code"]) == ("word-count", latest["number"], 0)
    assert ran["violation"] is None
    assert ran["stdout"].strip() == "5"  # the sandbox's answer to exactly the stored call
    [record] = await _audit(db, "skill.run")
    assert (record.decision, record.actor_id) == ("completed", intern_id)
    assert record.details["execution_id"] == proposal.id and record.details["content_hash"] == latest["content_hash"]
    assert record.details["confinement"]  # run confined, as in an agent run
    checks = [e for e in await _audit(db, "governance.check") if e.resource_id == "run_skill"]
    assert sorted((e.decision, e.actor_id) for e in checks) == [("allow", intern_id), ("propose", intern_id)]
    assert len(llm_server.requests) == 2  # approving ran the stored call, not the model


async def test_a_skill_banned_between_proposal_and_approval_is_refused_with_the_reason_and_nothing_runs(
    http: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, make_user: MakeUser
) -> None:
    intern_id = await agent_named(db, settings, MaturityLevel.INTERN, "counter")
    approver = await make_user(Role.APPROVER, username="grace")
    proposal = await _propose_a_count(http, llm_server, db, "counter")
    banned = await http.post("/api/skills/word-count/ban", json={"reason": "exfiltrates data"})
    assert banned.status_code == 200, banned.text

    executed = await _approve(http, approver, proposal)

    assert executed["status"] == "execution_failed"
    [outcome] = executed["result"]["steps"]
    assert (outcome["status"], outcome["reason_code"]) == ("failed", "SKILL_NOT_ACTIVE")
    assert "'word-count' is banned" in outcome["error"] and "'word-count' is banned" in executed["error"]
    [record] = await _audit(db, "skill.run")  # the refusal, and no run
    assert (record.decision, record.actor_id, record.details["code"]) == ("refused", intern_id, "SKILL_NOT_ACTIVE")
    assert record.details["approved_version_id"] == proposal.plan[0]["pin"]["version_id"]


async def test_a_skill_trusted_at_another_version_since_the_proposal_is_refused_and_nothing_runs(
    http: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, make_user: MakeUser
) -> None:
    await agent_named(db, settings, MaturityLevel.INTERN, "counter")
    approver = await make_user(Role.APPROVER, username="joan")
    proposal = await _propose_a_count(http, llm_server, db, "counter")
    updated = await http.post(
        "/api/skills",
        json={
            "folder_name": "word-count",
            "skill_md": COUNT_MD,
            "files": {"scripts/count.py": COUNT_PY + "\n# version two\n"},
            "update": True,
        },
    )
    assert updated.status_code == 201, updated.text
    new_hash = (await http.get("/api/skills/word-count/latest")).json()["content_hash"]
    trusted = await http.post("/api/skills/word-count/trust", json={"content_hash": new_hash})
    assert trusted.status_code == 200, trusted.text

    executed = await _approve(http, approver, proposal)

    assert executed["status"] == "execution_failed"
    [outcome] = executed["result"]["steps"]
    assert (outcome["status"], outcome["reason_code"]) == ("failed", "SKILL_VERSION_CHANGED")
    assert "changed since the proposal" in outcome["error"]
    assert [r.decision for r in await _audit(db, "skill.run")] == ["refused"]


async def test_a_supervised_plan_reads_and_runs_a_skill_as_its_agent(
    http: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    _needs_sandbox()
    agent_id = await agent_named(db, settings, MaturityLevel.SUPERVISED, "watched")
    steps = [
        {"action": "read_skill", "params": {"name": "word-count"}},
        {"action": "skill_word_count", "params": {"stdin": "a b c"}},
    ]
    routed = await http.post("/api/triggers", json={"agent_id": agent_id, "plan": {"steps": steps}})
    assert routed.status_code == 200, routed.text
    session_id = routed.json()["supervision_session_id"]
    assert await supervision.start_if_queued(db=db, settings=settings, session_id=session_id)  # as a supervisor joins
    await supervision.wait_for_run(session_id)

    row = (await http.get(f"/api/supervision/{session_id}")).json()
    assert row["status"] == "completed", row
    read, ran = row["steps"]
    assert read["status"] == "done" and "scripts/count.py" in read["output"]["text"]
    assert (ran["status"], ran["output"]["exit_code"], ran["output"]["stdout"].strip()) == ("done", 0, "3")
    [record] = await _audit(db, "skill.run")
    assert (record.decision, record.actor_id, record.details["execution_id"]) == ("completed", agent_id, session_id)
    [loaded] = await _audit(db, "skill.read")
    assert (loaded.decision, loaded.actor_id) == ("read", agent_id)
