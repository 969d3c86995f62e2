"""Seeing an INTERN's call become a proposal (RULES.md, trigger interceptor): a person's chat applies
per-action governance only; an automated trigger (`--automated`, another agent delegating) routes the
INTERN's tool call through a proposal that runs exactly the stored call once approved."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets
from sqlalchemy import select
from typer.testing import CliRunner

from atom.chat.models import AgentExecution
from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.training.models import AgentProposal
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import MakeUser, UserWithKey
from tests.support.integration_servers import HttpServer, serve
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply

runner = CliRunner()


def _database_env(settings: Settings) -> dict[str, str]:
    """What the database-side commands (`atom-os proposals ...`) need to reach this test's database."""
    env = {
        "ATOM_DATA_DIR": str(settings.data_dir),
        "ATOM_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "ATOM_LOG_FORMAT": "json",
        "COLUMNS": "250",
    }
    if settings.database_url:
        env["ATOM_DATABASE_URL"] = settings.database_url
    return env


async def _cli(env: dict[str, str], *args: str) -> tuple[int, str]:
    """The command runs its own event loop, so in a thread (the server runs in this test's loop)."""
    result = await asyncio.to_thread(runner.invoke, cli, list(args), env=env)
    return result.exit_code, result.output


def _tool_results(server: WatchedOpenAIServer, request_index: int) -> list[str]:
    return [m["content"] for m in server.requests[request_index].body["messages"] if m["role"] == "tool"]


async def test_automated_execute_of_an_intern_makes_a_proposal_that_runs_the_stored_call_when_approved(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey,
    make_user: MakeUser,
) -> None:  # fmt: skip
    intern_id = await agent_named(db, settings, MaturityLevel.INTERN, "night-intern")
    approver = await make_user(Role.APPROVER, username="ada")
    llm_server.queue(
        tool_reply(ScriptedToolCall("calculate", ['{"expression": ', '"6*7"}'], id="call_calc")),
        text_reply("The calculation waits for approval."),
    )
    api = {"ATOM_API_KEY": admin.key, "COLUMNS": "250"}
    code, out = await _cli(api, "execute", "night-intern", "what is 6*7?", "--automated", "--url", f"http://{live}")
    assert code == 0, out  # the run completed: it asked for approval instead of acting
    assert "calculate" in out and "pending_approval" in out and "waits for approval" in out

    async with db.session_scope() as s:
        execution = (await s.scalars(select(AgentExecution).where(AgentExecution.agent_id == intern_id))).one()
        call = execution.tool_calls[0]
        proposal = await s.get(AgentProposal, call["proposal_id"])
    assert (execution.trigger, execution.trigger_kind) == ("api", "automated")
    assert (call["status"], call["decision"]) == ("pending_approval", "propose")
    assert proposal is not None and (proposal.status, proposal.kind) == ("pending", "action")
    assert proposal.plan == [{"action": "calculate", "params": {"expression": "6*7"}}]
    told = _tool_results(llm_server, 1)
    assert len(told) == 1 and "Pending approval" in told[0] and proposal.id in told[0]  # the model was told

    database = _database_env(settings)
    code, out = await _cli(database, "proposals", "list")
    assert code == 0, out
    listed = next(line for line in out.splitlines() if proposal.id in line)
    assert "night-intern" in listed and "pending" in listed and "chat" in listed  # the agent's name, not its id

    code, out = await _cli(
        database, "proposals", "approve", proposal.id, "--hash", proposal.plan_hash, "--by", approver.username
    )
    assert code == 0, out
    assert "executed" in out and "step 1 calculate: done" in out
    async with db.session_scope() as s:
        executed = await s.get(AgentProposal, proposal.id)
    assert executed is not None and executed.status == "executed" and executed.plan_hash == proposal.plan_hash
    assert executed.result is not None
    assert executed.result["steps"][0]["output"] == {"expression": "6*7", "result": 42}  # exactly the stored call
    code, out = await _cli(database, "proposals", "list")
    assert proposal.id not in out  # no longer pending
    assert len(llm_server.requests) == 2  # approving ran the plan, not the model


async def test_an_approved_http_get_proposal_is_governed_as_the_get_it_holds(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey,
    make_user: MakeUser,
) -> None:  # fmt: skip
    """http_request is governed by method (GET: 1), also when its approved proposal executes."""
    await agent_named(db, settings, MaturityLevel.INTERN, "fetcher")
    approver = await make_user(Role.APPROVER, username="grace")
    target = HttpServer()
    async with serve(target.app) as url:
        get = json.dumps({"method": "GET", "url": f"{url}/echo", "query": {"q": "status"}})
        llm_server.queue(tool_reply(ScriptedToolCall("http_request", [get])), text_reply("Waiting for approval."))
        api = {"ATOM_API_KEY": admin.key, "COLUMNS": "250"}
        code, out = await _cli(api, "execute", "fetcher", "fetch the status", "--automated", "--url", f"http://{live}")
        assert code == 0 and "pending_approval" in out, out
        assert target.requests == []  # nothing was fetched before approval
        async with db.session_scope() as s:
            proposal = (await s.scalars(select(AgentProposal))).one()
        database = {**_database_env(settings), "ATOM_HTTP_TOOL_ALLOW_PRIVATE": "true"}
        code, out = await _cli(
            database, "proposals", "approve", proposal.id, "--hash", proposal.plan_hash, "--by", approver.username
        )
    assert code == 0, out
    assert "step 1 http_request: done" in out
    assert [(r["method"], r["path"], r["query"]) for r in target.requests] == [("GET", "/echo", {"q": "status"})]


async def test_manual_execute_of_an_intern_applies_per_action_governance_only(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.INTERN, "day-intern")
    llm_server.queue(
        tool_reply(ScriptedToolCall("calculate", ['{"expression": "6*7"}'])),
        text_reply("42"),
    )
    api = {"ATOM_API_KEY": admin.key, "COLUMNS": "250"}
    code, out = await _cli(api, "execute", "day-intern", "what is 6*7?", "--url", f"http://{live}")
    assert code == 0, out
    assert "calculate ok" in out and "42" in out
    async with db.session_scope() as s:
        assert (await s.scalars(select(AgentProposal))).all() == []


async def _chat_run(live: str, key: str, agent: str, content: str) -> list[dict[str, Any]]:
    async with websockets.connect(
        f"ws://{live}/ws/chat/{agent}", additional_headers={"X-API-Key": key}, open_timeout=30
    ) as ws:
        assert json.loads(await ws.recv())["type"] == "session"
        await ws.send(json.dumps({"type": "message", "content": content}))
        events = []
        while True:
            event = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
            events.append(event)
            if event["type"] == "done":
                return events


async def test_a_chat_shows_the_proposal_of_an_intern_it_delegated_to(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    lead_id = await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "lead")
    intern_id = await agent_named(db, settings, MaturityLevel.INTERN, "junior")
    delegate = '{"agent": "junior", "task": "compute 6*7"}'
    llm_server.queue(
        tool_reply(ScriptedToolCall("delegate_to_agent", [delegate], id="call_lead")),  # the lead, in the chat
        tool_reply(ScriptedToolCall("calculate", ['{"expression": "6*7"}'], id="call_junior")),  # the junior
        text_reply("My calculation waits for approval."),  # the junior, told it is pending
        text_reply("Junior's calculation is waiting for a person's approval."),  # the lead
    )
    events = await _chat_run(live, admin.key, "lead", "ask junior for 6*7")

    assert events[-1]["status"] == "completed"
    proposals = [e for e in events if e["type"] == "proposal"]
    assert len(proposals) == 1
    shown = proposals[0]
    assert (shown["name"], shown["id"], shown["agent_id"]) == ("calculate", "call_junior", intern_id)
    async with db.session_scope() as s:
        child = (
            await s.scalars(
                select(AgentExecution).where(AgentExecution.parent_execution_id == events[0]["execution_id"])
            )
        ).one()
        proposal = await s.get(AgentProposal, shown["proposal_id"])
    assert shown["execution_id"] == child.id
    assert (child.agent_id, child.trigger, child.trigger_kind) == (intern_id, "delegation", "automated")
    assert child.tool_calls[0]["status"] == "pending_approval"
    assert proposal is not None and proposal.agent_id == intern_id and proposal.status == "pending"
    assert proposal.plan == [{"action": "calculate", "params": {"expression": "6*7"}}]
    assert "Pending approval" in _tool_results(llm_server, 2)[0]  # the junior was told
    # The lead's own call ran (a person's chat: per-action governance) and returned the junior's answer.
    lead_call = next(e for e in events if e["type"] == "tool_result" and e["id"] == "call_lead")
    assert lead_call["status"] == "ok" and lead_call["output"]["output"] == "My calculation waits for approval."
    assert [e["name"] for e in events if e["type"] == "tool_call"] == ["delegate_to_agent"]  # only the lead's calls
    assert lead_id != intern_id
