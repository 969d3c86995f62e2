"""Community skills as an agent's tools in a chat run: announced in the prompt, loaded, run in the sandbox, governed."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.skills.sandbox import Sandbox
from tests.chat.conftest import WatchedOpenAIServer, agent_named, parse_sse
from tests.conftest import UserWithKey
from tests.skills.corpus import DATA
from tests.support import databases
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply

STYLE_MD = """---
name: team-style
description: House style for status reports. Use when writing a status update.
---

# Team style

Write every status report as three bullet points: done, next, blocked.
"""
SHADY_MD = """---
name: shady-helper
description: Speeds up your computer.
---

Run `scripts/go.sh`.
"""
GONE_MD = """---
name: gone-skill
description: Once useful, now banned.
---

Nothing to see.
"""
COUNT_MD = (DATA / "word-count" / "SKILL.md").read_text()
COUNT_PY = (DATA / "word-count" / "scripts" / "count.py").read_text()


def _needs_sandbox() -> None:
    reason = Sandbox().probe()
    if reason:
        databases.missing_service(f"the skill sandbox cannot confine here: {reason}")


async def _import(http: httpx.AsyncClient, folder: str, skill_md: str, files: dict[str, str] | None = None) -> str:
    body = {"folder_name": folder, "skill_md": skill_md, "files": files or {}}
    response = await http.post("/api/skills", json=body)
    assert response.status_code == 201, response.text
    latest = (await http.get(f"/api/skills/{folder}/latest")).json()
    return str(latest["content_hash"])


async def _install_skills(http: httpx.AsyncClient) -> None:
    """Trusted: team-style (prompt-only), word-count (code). Untrusted: shady-helper (code). Banned: gone-skill."""
    for folder, md, files in (
        ("team-style", STYLE_MD, {"references/template.md": "- done:\n- next:\n- blocked:\n"}),
        ("word-count", COUNT_MD, {"scripts/count.py": COUNT_PY}),
        ("gone-skill", GONE_MD, {}),
    ):
        content_hash = await _import(http, folder, md, files)
        trusted = await http.post(f"/api/skills/{folder}/trust", json={"content_hash": content_hash})
        assert trusted.status_code == 200, trusted.text
    await _import(http, "shady-helper", SHADY_MD, {"scripts/go.sh": "echo fast\n"})
    banned = await http.post("/api/skills/gone-skill/ban", json={"reason": "test"})
    assert banned.status_code == 200, banned.text


async def _stream(http: httpx.AsyncClient, agent: str) -> list[dict[str, Any]]:
    body = {"agent": agent, "task": "write my status report", "stream": True}
    async with http.stream("POST", "/api/chat/execute", json=body) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        return parse_sse((await response.aread()).decode())


def _results(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in events if e["type"] == "tool_result"}


def _system(server: WatchedOpenAIServer) -> str:
    first = server.requests[0].body["messages"][0]
    assert first["role"] == "system"
    return str(first["content"])


def _offered(server: WatchedOpenAIServer) -> dict[str, dict[str, Any]]:
    return {t["function"]["name"]: t["function"] for t in server.requests[0].body["tools"]}


def _told(server: WatchedOpenAIServer, request_index: int) -> list[str]:
    return [m["content"] for m in server.requests[request_index].body["messages"] if m["role"] == "tool"]


async def _audit(db: Database, action: str) -> list[Any]:
    async with db.session_scope() as session:
        events, _ = await audit.list_events(
            session=session, filters=audit.AuditFilter(action=action), limit=50, cursor=None
        )
    return list(events)


@pytest.fixture
async def http(live: str, admin: UserWithKey) -> Any:
    async with httpx.AsyncClient(base_url=f"http://{live}", headers=admin.headers, timeout=60) as client:
        await _install_skills(client)
        yield client


@pytest.mark.parametrize("level", [MaturityLevel.SUPERVISED, MaturityLevel.AUTONOMOUS])
async def test_a_trusted_agent_sees_trusted_skills_reads_one_and_runs_a_code_skill_in_the_sandbox(
    http: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, level: MaturityLevel
) -> None:
    _needs_sandbox()
    agent_id = await agent_named(db, settings, level, "reporter")
    llm_server.queue(
        tool_reply(ScriptedToolCall("read_skill", ['{"name": ', '"team-style"}'], id="call_read")),
        tool_reply(
            ScriptedToolCall("read_skill", ['{"name": "team-style", "file": "references/template.md"}'], id="call_ref")
        ),
        tool_reply(ScriptedToolCall("skill_word_count", ['{"stdin": "one two three four"}'], id="call_run")),
        text_reply("- done: counted 4 words"),
    )
    events = await _stream(http, "reporter")

    system = _system(llm_server)
    assert "- team-style: House style for status reports. Use when writing a status update." in system
    assert "- word-count: Count the words" in system and "[code: run it with the tool skill_word_count]" in system
    assert "three bullet points" not in system  # progressive disclosure: the body is not in the prompt
    assert "shady-helper" not in system and "gone-skill" not in system
    offered = _offered(llm_server)
    assert {"read_skill", "skill_word_count"} <= set(offered)
    assert not {"skill_shady_helper", "skill_gone_skill"} & set(offered)
    assert offered["skill_word_count"]["parameters"]["properties"]["script"]["enum"] == ["scripts/count.py"]
    assert offered["skill_word_count"]["parameters"]["additionalProperties"] is False

    results = _results(events)
    assert [results[c]["status"] for c in ("call_read", "call_ref", "call_run")] == ["ok", "ok", "ok"]
    assert (results["call_read"]["action"], results["call_read"]["decision"]) == ("read_skill", "allow")
    assert (results["call_run"]["action"], results["call_run"]["decision"]) == ("run_skill", "allow")
    ran = results["call_run"]["output"]
    assert (ran["exit_code"], ran["stdout"].strip(), ran["violation"]) == (0, "4", None)
    assert "three bullet points" in json.loads(_told(llm_server, 1)[0])["text"]
    assert json.loads(_told(llm_server, 2)[1])["text"] == "- done:\n- next:\n- blocked:\n"
    assert json.loads(_told(llm_server, 3)[2])["stdout"].strip() == "4"  # the sandbox's answer reached the model
    done = events[-1]
    assert done["type"] == "done" and done["status"] == "completed" and done["output"] == "- done: counted 4 words"

    [run_record] = await _audit(db, "skill.run")
    assert (run_record.decision, run_record.actor_id) == ("completed", agent_id)
    assert run_record.details["execution_id"] == done["execution_id"] and run_record.details["exit_code"] == 0
    reads = await _audit(db, "skill.read")
    assert sorted((r.decision, r.details["file"]) for r in reads) == [
        ("read", "SKILL.md"),
        ("read", "references/template.md"),
    ]


async def test_a_student_may_read_skills_but_its_code_skill_call_is_denied_with_the_reason(
    http: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings
) -> None:
    student_id = await agent_named(db, settings, MaturityLevel.STUDENT, "learner")
    llm_server.queue(
        tool_reply(ScriptedToolCall("read_skill", ['{"name": "word-count"}'], id="call_read")),
        tool_reply(ScriptedToolCall("skill_word_count", ['{"stdin": "a b"}'], id="call_run")),
        text_reply("I may not run it."),
    )
    events = await _stream(http, "learner")

    system = _system(llm_server)
    assert "- word-count: Count the words" in system
    assert "[code: your maturity level may not run its scripts; you may read its instructions]" in system
    offered = _offered(llm_server)
    assert "read_skill" in offered and "skill_word_count" not in offered
    results = _results(events)
    assert (results["call_read"]["status"], results["call_read"]["decision"]) == ("ok", "allow")
    assert "scripts/count.py" in results["call_read"]["output"]["text"]
    denied = results["call_run"]
    assert (denied["status"], denied["action"], denied["decision"]) == ("denied", "run_skill", "deny")
    assert denied["reason_code"] == "COMPLEXITY_EXCEEDS_MATURITY"
    assert "run_skill (complexity 2) needs INTERN; the agent is STUDENT." in denied["error"]
    assert "Denied by governance" in _told(llm_server, 2)[1]
    assert events[-1]["status"] == "completed"
    assert await _audit(db, "skill.run") == []  # nothing ran
    checks = [e for e in await _audit(db, "governance.check") if e.resource_id == "run_skill"]
    assert [(e.decision, e.actor_id) for e in checks] == [("deny", student_id)]


async def test_untrusted_and_banned_skills_are_not_offered_and_a_call_naming_one_is_refused(
    http: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "boss")
    llm_server.queue(
        tool_reply(
            ScriptedToolCall("read_skill", ['{"name": "shady-helper"}'], id="call_untrusted"),
            ScriptedToolCall("read_skill", ['{"name": "gone-skill"}'], id="call_banned"),
            ScriptedToolCall("skill_shady_helper", ["{}"], id="call_run"),
        ),
        text_reply("Those are not available."),
    )
    events = await _stream(http, "boss")

    assert "shady-helper" not in _system(llm_server) and "gone-skill" not in _system(llm_server)
    assert "skill_shady_helper" not in _offered(llm_server)
    results = _results(events)
    for call, state in (("call_untrusted", "untrusted"), ("call_banned", "banned")):
        refused = results[call]
        assert (refused["status"], refused["code"], refused["decision"]) == ("failed", "SKILL_NOT_ACTIVE", "allow")
        assert f"is {state}; only Active skills can be used" in refused["error"]
    assert results["call_run"]["status"] == "unknown_tool" and "skill_shady_helper" in results["call_run"]["error"]
    assert "read_skill" in results["call_run"]["error"]  # the tools it does have are named
    assert await _audit(db, "skill.run") == []
    refusals = await _audit(db, "skill.read")
    assert sorted((r.decision, r.details["skill"], r.details["code"]) for r in refusals) == [
        ("refused", "gone-skill", "SKILL_NOT_ACTIVE"),
        ("refused", "shady-helper", "SKILL_NOT_ACTIVE"),
    ]


async def test_without_active_skills_the_prompt_and_tools_are_unchanged(
    live: str, admin: UserWithKey, llm_server: WatchedOpenAIServer, db: Database, settings: Settings
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "plain")
    async with httpx.AsyncClient(base_url=f"http://{live}", headers=admin.headers, timeout=60) as http:
        await _import(http, "shady-helper", SHADY_MD, {"scripts/go.sh": "echo fast\n"})  # untrusted only
        llm_server.queue(text_reply("hi"))
        await _stream(http, "plain")
    assert "Skills a person trusted" not in _system(llm_server)
    assert not {name for name in _offered(llm_server) if "skill" in name}
