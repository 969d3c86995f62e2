"""Automated agent runs go through the trigger interceptor (RULES.md): STUDENT -> training, nothing runs;
INTERN -> each tool call needing approval becomes a proposal; SUPERVISED -> the run happens in a supervision
session; AUTONOMOUS -> runs. Manual runs keep per-action governance only (tests/chat/test_tool_loop.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import websockets
from pydantic import BaseModel
from sqlalchemy import select
from typer.testing import CliRunner

from atom.audit.models import AuditEvent
from atom.chat.models import AgentExecution
from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.runtime import tools as runtime_tools
from atom.runtime.tools import Tool
from atom.training import supervision
from atom.training.models import AgentProposal, BlockedTriggerContext, SupervisionSession
from tests.chat.conftest import WatchedOpenAIServer, agent_named, parse_sse
from tests.conftest import UserWithKey
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply
from tests.support.proposals import approve

runner = CliRunner()


class NoteParams(BaseModel):
    text: str


@dataclass
class Notes:
    written: list[str] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)  # holds `test_held_note` open until set
    arrived: asyncio.Queue[str] = field(default_factory=asyncio.Queue)


@pytest.fixture
def notes() -> Iterator[Notes]:
    """A complexity-3 tool (SUPERVISED may run it), a complexity-4 one, and one the test holds open."""
    state = Notes()
    written = state.written

    async def held_note(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, NoteParams)
        written.append(params.text)
        await state.arrived.put(params.text)
        await state.gate.wait()
        return {"written": params.text}

    async def write_note(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, NoteParams)
        written.append(params.text)
        return {"written": params.text}

    async def erase_notes(params: BaseModel) -> dict[str, Any]:
        written.clear()
        return {"erased": True}

    registered = [
        Tool("test_write_note", 3, "test: write a note", NoteParams, write_note),
        Tool("test_erase_notes", 4, "test: erase every note", NoteParams, erase_notes),
        Tool("test_held_note", 1, "test: write a note, held open until the test lets go", NoteParams, held_note),
    ]
    tools = runtime_tools.current()
    for tool in registered:
        tools.register(tool)
    yield state
    for tool in registered:
        tools.unregister(tool.name)


async def _execute(client: httpx.AsyncClient, admin: UserWithKey, agent: str, task: str) -> httpx.Response:
    return await client.post(
        "/api/chat/execute", json={"agent": agent, "task": task, "trigger": "automated"}, headers=admin.headers
    )


async def _rows(db: Database, model: Any, agent_id: str) -> list[Any]:
    async with db.session_scope() as s:
        return list((await s.scalars(select(model).where(model.agent_id == agent_id))).all())


async def _routes(db: Database, agent_id: str) -> list[str | None]:
    async with db.session_scope() as s:
        rows = await s.scalars(
            select(AuditEvent)
            .where(AuditEvent.action == "trigger.route", AuditEvent.resource_id == agent_id)
            .order_by(AuditEvent.seq)
        )
        return [r.decision for r in rows]


async def test_student_automated_execute_is_routed_to_training_and_nothing_runs(
    chat_app: Any, client: httpx.AsyncClient, live: str, llm_server: WatchedOpenAIServer, db: Database,
    settings: Settings, admin: UserWithKey,
) -> None:  # fmt: skip
    student_id = await agent_named(db, settings, MaturityLevel.STUDENT, "pupil")
    response = await _execute(client, admin, "pupil", "send the weekly report")
    assert response.status_code == 202, response.text
    routed = response.json()
    assert (routed["route"], routed["code"], routed["agent_level"]) == ("training", "ROUTED_TO_TRAINING", "STUDENT")
    blocked = await _rows(db, BlockedTriggerContext, student_id)
    proposals = await _rows(db, AgentProposal, student_id)
    assert [b.id for b in blocked] == [routed["blocked_trigger_id"]] and blocked[0].routed_to == "training"
    assert [(p.id, p.kind, p.status) for p in proposals] == [(routed["proposal_id"], "training", "pending")]
    assert proposals[0].plan == [
        {"action": "agent.run", "params": {"task": "send the weekly report", "trigger": "api", "user_id": admin.id,
                                           "depth": 0}}
    ]  # fmt: skip
    assert routed["proposal_id"] in routed["message"] and routed["blocked_trigger_id"] in routed["message"]
    assert routed["estimate_hours"] == settings.training_default_hours

    env = {"ATOM_API_KEY": admin.key, "COLUMNS": "250"}
    result = await asyncio.to_thread(
        runner.invoke, cli, ["execute", "pupil", "send it", "--automated", "--url", f"http://{live}"], env=env
    )
    assert result.exit_code == 1, result.output
    assert "Routed to training" in result.output and "ROUTED_TO_TRAINING" in result.output

    assert llm_server.requests == []  # the model was never asked
    assert await _rows(db, AgentExecution, student_id) == []
    assert len(await _rows(db, AgentProposal, student_id)) == 2
    assert await _routes(db, student_id) == ["training", "training"]


async def test_intern_automated_execute_runs_and_its_call_becomes_a_proposal(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey, notes: Notes,
) -> None:  # fmt: skip
    intern_id = await agent_named(db, settings, MaturityLevel.INTERN, "apprentice")
    llm_server.queue(
        tool_reply(ScriptedToolCall("calculate", ['{"expression": "2+2"}'], id="call_sum")),
        text_reply("The sum waits for approval."),
    )
    response = await _execute(client, admin, "apprentice", "add 2 and 2")
    assert response.status_code == 200, response.text
    run = response.json()
    assert (run["status"], run["trigger_kind"], run["output"]) == (
        "completed",
        "automated",
        "The sum waits for approval.",
    )
    call = run["tool_calls"][0]
    assert (call["status"], call["decision"]) == ("pending_approval", "propose")
    [proposal] = await _rows(db, AgentProposal, intern_id)
    assert (proposal.id, proposal.kind, proposal.status) == (call["proposal_id"], "action", "pending")
    assert proposal.plan == [{"action": "calculate", "params": {"expression": "2+2"}}]  # exactly the call
    assert await _rows(db, BlockedTriggerContext, intern_id) == []  # the run itself was not held back
    assert await _routes(db, intern_id) == ["proposal"]


async def test_autonomous_automated_execute_runs(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey, notes: Notes,
) -> None:  # fmt: skip
    agent_id = await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "veteran")
    llm_server.queue(
        tool_reply(ScriptedToolCall("test_write_note", ['{"text": "done"}'])),
        text_reply("Noted."),
    )
    response = await _execute(client, admin, "veteran", "note that it is done")
    assert response.status_code == 200, response.text
    run = response.json()
    assert (run["status"], run["trigger"], run["trigger_kind"], run["output"]) == (
        "completed", "api", "automated", "Noted."
    )  # fmt: skip
    assert [(c["name"], c["status"], c["decision"]) for c in run["tool_calls"]] == [("test_write_note", "ok", "allow")]
    assert notes.written == ["done"]
    assert await _routes(db, agent_id) == ["run"]
    assert await _rows(db, AgentProposal, agent_id) == [] and await _rows(db, SupervisionSession, agent_id) == []


async def _until(ws: Any, kind: str, seen: list[dict[str, Any]]) -> dict[str, Any]:
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
        seen.append(event)
        if event.get("type") == kind:
            return dict(event)


async def test_supervised_automated_execute_runs_inside_a_supervision_session(
    chat_app: Any, client: httpx.AsyncClient, live: str, llm_server: WatchedOpenAIServer, db: Database,
    settings: Settings, admin: UserWithKey, notes: Notes,
) -> None:  # fmt: skip
    agent_id = await agent_named(db, settings, MaturityLevel.SUPERVISED, "trainee")
    llm_server.queue(
        tool_reply(ScriptedToolCall("test_write_note", ['{"text": "draft"}'], id="call_note")),
        tool_reply(ScriptedToolCall("test_erase_notes", ['{"text": "all"}'], id="call_erase")),
        text_reply("Wrote the note; erasing was not allowed."),
    )
    response = await _execute(client, admin, "trainee", "write the note")
    assert response.status_code == 202, response.text
    routed = response.json()
    assert (routed["route"], routed["code"], routed["supervision_status"]) == (
        "supervised", "ROUTED_TO_SUPERVISION", "queued"
    )  # fmt: skip
    session_id = routed["supervision_session_id"]
    assert llm_server.requests == [] and notes.written == []  # waits in the supervised queue: nobody watches yet

    # The supervisor corrects the first step before the run starts, then watches it live.
    corrected = await client.post(
        f"/api/supervision/{session_id}/commands",
        json={"command": "correct", "params": {"text": "final"}},
        headers=admin.headers,
    )
    assert corrected.status_code == 200, corrected.text
    seen: list[dict[str, Any]] = []
    async with websockets.connect(
        f"ws://{live}/ws/supervision/{session_id}", additional_headers={"X-API-Key": admin.key}, open_timeout=30
    ) as ws:
        assert (await _until(ws, "started", seen))["steps"] == 1
        first = await _until(ws, "step_started", seen)
        assert (first["index"], first["action"], first["params"]) == (0, "test_write_note", {"text": "final"})
        assert (await _until(ws, "step_finished", seen))["status"] == "done"
        erase = await _until(ws, "step_finished", seen)
        assert (erase["action"], erase["status"], erase["reason_code"]) == (
            "test_erase_notes", "denied", "COMPLEXITY_EXCEEDS_MATURITY"
        )  # fmt: skip
        answer = await _until(ws, "step_finished", seen)
        assert (answer["index"], answer["action"], answer["status"]) == (2, "agent.run", "done")
        assert answer["output"]["output"] == "Wrote the note; erasing was not allowed."
        assert (await _until(ws, "finished", seen))["status"] == "completed"
    assert [e["params"] for e in seen if e["type"] == "corrected"] == [{"text": "final"}]
    await supervision.wait_for_run(session_id)

    assert notes.written == ["final"]  # the corrected call ran, inside the session, at complexity 3
    row = (await client.get(f"/api/supervision/{session_id}", headers=admin.headers)).json()
    assert (row["status"], row["interventions"], len(row["steps"])) == ("completed", 1, 3)
    execution = (
        await client.get(f"/api/chat/executions/{answer['output']['execution_id']}", headers=admin.headers)
    ).json()
    assert (execution["agent_id"], execution["trigger_kind"], execution["status"]) == (
        agent_id, "automated", "completed"
    )  # fmt: skip
    calls = execution["tool_calls"]
    assert [(c["name"], c["status"], c["supervision_step"]) for c in calls] == [
        ("test_write_note", "ok", 0), ("test_erase_notes", "denied", 1)
    ]  # fmt: skip
    assert calls[0]["model_arguments"] == {"text": "draft"} and calls[0]["arguments"] == {"text": "final"}
    told = [m["content"] for m in llm_server.requests[1].body["messages"] if m["role"] == "tool"]
    assert "A supervisor corrected the arguments" in told[0]
    assert await _routes(db, agent_id) == ["supervised"]


async def test_a_supervisor_pauses_then_terminates_an_agent_run_before_its_next_tool_call(
    chat_app: Any, client: httpx.AsyncClient, live: str, llm_server: WatchedOpenAIServer, db: Database,
    settings: Settings, admin: UserWithKey, notes: Notes,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.SUPERVISED, "held")
    llm_server.queue(
        tool_reply(ScriptedToolCall("test_held_note", ['{"text": "one"}'])),
        tool_reply(ScriptedToolCall("test_write_note", ['{"text": "two"}'])),
        text_reply("never said"),
    )
    session_id = (await _execute(client, admin, "held", "write two notes")).json()["supervision_session_id"]
    seen: list[dict[str, Any]] = []
    async with websockets.connect(
        f"ws://{live}/ws/supervision/{session_id}", additional_headers={"X-API-Key": admin.key}, open_timeout=30
    ) as ws:
        assert await asyncio.wait_for(notes.arrived.get(), timeout=20) == "one"  # the first call is running
        await ws.send(json.dumps({"command": "pause"}))
        assert (await _until(ws, "ack", seen))["status"] == "paused"
        notes.gate.set()
        assert (await _until(ws, "paused", seen))["before_step"] == 1  # the model asked for the next call: held
        await ws.send(json.dumps({"command": "terminate"}))
        assert (await _until(ws, "finished", seen))["status"] == "terminated"
    await supervision.wait_for_run(session_id)
    assert notes.written == ["one"]  # the second call never ran
    assert len(llm_server.requests) == 2  # and the model was not asked again
    row = (await client.get(f"/api/supervision/{session_id}", headers=admin.headers)).json()
    assert (row["status"], row["interventions"]) == ("terminated", 2)
    assert row["steps"][-1]["action"] == "agent.run"
    execution_id = row["steps"][-1]["output"]["execution_id"]
    execution = (await client.get(f"/api/chat/executions/{execution_id}", headers=admin.headers)).json()
    assert (execution["status"], execution["error_code"]) == ("cancelled", "SUPERVISION_TERMINATED")


@pytest.mark.parametrize("settings_overrides", [{"supervised_queue_policy": "run-and-notify"}])
async def test_supervised_run_and_notify_runs_at_once_in_its_session(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey, notes: Notes,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.SUPERVISED, "night-shift")
    llm_server.queue(tool_reply(ScriptedToolCall("test_write_note", ['{"text": "night"}'])), text_reply("Done."))
    response = await _execute(client, admin, "night-shift", "write the night note")
    assert response.status_code == 202, response.text
    routed = response.json()
    assert routed["route"] == "supervised" and routed["supervision_status"] != "queued"
    await supervision.wait_for_run(routed["supervision_session_id"])
    row = (await client.get(f"/api/supervision/{routed['supervision_session_id']}", headers=admin.headers)).json()
    assert (row["status"], row["notified"], [s["action"] for s in row["steps"]]) == (
        "completed", True, ["test_write_note", "agent.run"]
    )  # fmt: skip
    assert notes.written == ["night"]


async def test_a_student_delegate_is_routed_to_training_and_the_caller_is_told(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "manager")
    student_id = await agent_named(db, settings, MaturityLevel.STUDENT, "new-hire")
    delegate = '{"agent": "new-hire", "task": "file the expense report"}'
    llm_server.queue(
        tool_reply(ScriptedToolCall("delegate_to_agent", [delegate], id="call_delegate")),
        text_reply("The new hire is in training; I will file it myself."),
    )
    response = await client.post(
        "/api/chat/execute", json={"agent": "manager", "task": "get the report filed"}, headers=admin.headers
    )
    assert response.status_code == 200, response.text
    run = response.json()
    assert run["status"] == "completed"
    call = run["tool_calls"][0]
    assert (call["name"], call["status"]) == ("delegate_to_agent", "ok")
    [proposal] = await _rows(db, AgentProposal, student_id)
    assert (proposal.kind, proposal.status) == ("training", "pending")
    assert proposal.plan[0]["params"]["parent_execution_id"] == run["id"]
    assert proposal.plan[0]["params"]["depth"] == 1
    told = next(m["content"] for m in llm_server.requests[1].body["messages"] if m["role"] == "tool")
    assert "routed_to_training" in told and "Routed to training" in told and proposal.id in told
    assert await _rows(db, AgentExecution, student_id) == []  # nothing ran for the delegate
    assert len(llm_server.requests) == 2  # the manager's two calls only


async def test_automated_sse_streams_an_autonomous_run_and_reports_a_routed_one(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "streamer")
    await agent_named(db, settings, MaturityLevel.STUDENT, "quiet-pupil")
    llm_server.queue(text_reply("Hel", "lo"))
    body = {"task": "greet", "trigger": "automated", "stream": True}
    async with httpx.AsyncClient(base_url=f"http://{live}", headers=admin.headers, timeout=20) as http:
        async with http.stream("POST", "/api/chat/execute", json={"agent": "streamer", **body}) as r:
            streamed = parse_sse((await r.aread()).decode())
        async with http.stream("POST", "/api/chat/execute", json={"agent": "quiet-pupil", **body}) as r:
            routed = parse_sse((await r.aread()).decode())
    assert streamed[0]["type"] == "start" and streamed[-1]["status"] == "completed"
    assert [e["text"] for e in streamed if e["type"] == "token"] == ["Hel", "lo"]
    assert [e["type"] for e in routed] == ["routed", "error", "done"]
    assert (routed[0]["route"], routed[1]["code"]) == ("training", "ROUTED_TO_TRAINING")
    assert routed[0]["proposal_id"] in routed[1]["message"]
    assert len(llm_server.requests) == 1  # only the AUTONOMOUS run asked the model


async def test_an_approved_agent_plan_runs_the_agent_with_the_proposal_context(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    admin: UserWithKey,
) -> None:  # fmt: skip
    """The same plan fired as a trigger: an INTERN's whole run waits as one proposal, then runs when approved."""
    intern_id = await agent_named(db, settings, MaturityLevel.INTERN, "planned-intern")
    plan = {"steps": [{"action": "agent.run", "params": {"task": "add 5 and 5"}}]}
    fired = await client.post(
        "/api/triggers", json={"agent_id": intern_id, "plan": plan, "executor": "agent"}, headers=admin.headers
    )
    assert fired.status_code == 200, fired.text
    assert fired.json()["route"] == "proposal" and llm_server.requests == []
    llm_server.queue(tool_reply(ScriptedToolCall("calculate", ['{"expression": "5+5"}'])), text_reply("10"))
    approved = await approve(client, fired.json()["proposal_id"], admin.headers)
    assert approved.status_code == 200, approved.text
    proposal = approved.json()["proposal"]
    assert proposal["status"] == "executed"
    ran = proposal["result"]["steps"][0]
    assert (ran["action"], ran["status"], ran["output"]["output"]) == ("agent.run", "done", "10")
    [execution] = await _rows(db, AgentExecution, intern_id)
    assert execution.tool_calls[0]["status"] == "ok"  # the approved proposal lets the INTERN act
    assert execution.trigger_kind == "automated"
