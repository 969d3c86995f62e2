"""Skills for agents: instructions by progressive disclosure, code skills as governed runtime tools."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from atom.agents import service as agents_service
from atom.agents.schemas import AgentCreate
from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.errors import Conflict, InvalidInput, NotFound
from atom.governance import catalogue as governance_catalogue
from atom.governance.policy import GovernanceContext
from atom.runtime.context import ToolContext, current_tool_context
from atom.runtime.tools import ToolRegistry
from atom.skills import bundle, runs, service
from atom.skills import tools as skill_tools
from atom.skills.sandbox import Sandbox
from atom.skills.tools import register_skill_tools
from tests.skills.corpus import DATA, corpus_dir
from tests.support import databases

SYSTEM = audit.Actor.system()


async def _trusted(db: Database, folder: str, path: object) -> None:
    async with db.session_scope() as session:
        [found] = bundle.read_source(path)  # type: ignore[arg-type]
        skill, version, _ = await service.import_bundle(session=session, bundle=found, actor=SYSTEM)
        await service.trust(session=session, ref=skill.name, content_hash_seen=version.content_hash, actor=SYSTEM)


async def _agent(db: Database, settings: Settings, name: str, confidence: float) -> str:
    async with db.session_scope() as session:
        agent = await agents_service.create_agent(
            session=session,
            agent_in=AgentCreate(name=name, confidence=confidence),
            actor=SYSTEM,
            settings=settings,
            may_promote=True,  # the test sets the level as an approver would
        )
        return agent.id


async def test_a_student_loads_instructions_but_gets_no_tools(db: Database, settings: Settings) -> None:
    await _trusted(db, "apple-notes", corpus_dir() / "apple-notes")
    await _trusted(db, "word-count", DATA / "word-count")
    student = await _agent(db, settings, "student", 0.3)
    async with db.session_scope() as session:
        offered = await runs.agent_skills(session=session, agent_id=student)
        assert sorted(i.name for i in offered.instructions) == ["apple-notes", "word-count"]
        assert offered.tools == []
        decision, body = await runs.load_instructions(
            session=session, settings=settings, agent_id=student, ref="apple-notes", context=GovernanceContext()
        )
        assert decision.allowed and decision.complexity == 1 and body and "Apple Notes" in body
        outcome = await runs.run_skill(
            session=session, settings=settings, ref="word-count", actor=SYSTEM, agent_id=student, stdin="a b"
        )
        assert outcome.denied and outcome.result is None and outcome.decision is not None
        assert outcome.decision.required_level.value == "INTERN"


async def test_code_skills_register_as_governed_tools_and_run_in_the_sandbox(db: Database, settings: Settings) -> None:
    if Sandbox().probe():
        databases.missing_service("the skill sandbox cannot confine here")
    await _trusted(db, "word-count", DATA / "word-count")
    intern = await _agent(db, settings, "intern", 0.6)
    async with db.session_scope() as session:
        offered = await runs.agent_skills(session=session, agent_id=intern)
    [spec] = offered.tools
    assert spec.parameters["properties"]["script"]["enum"] == ["scripts/count.py"]
    registry = ToolRegistry(governance_catalogue.current())
    [tool] = register_skill_tools(registry, offered, db)
    assert registry.get("skill_word_count") is tool
    assert (
        tool.governance_action(tool.validate({})) == "run_skill"
        and governance_catalogue.current().resolve("run_skill") == 2
    )
    token = current_tool_context.set(ToolContext(settings=settings, agent_id=intern, execution_id="e1", depth=0))
    try:
        result = await tool.handler(tool.validate({"stdin": "one two three four"}))
    finally:
        current_tool_context.reset(token)
    assert result["exit_code"] == 0 and result["stdout"].strip() == "4"
    async with db.session_scope() as session:
        events, _ = await audit.list_events(
            session=session, filters=audit.AuditFilter(action="skill.run"), limit=10, cursor=None
        )
    assert [(e.decision, e.actor_id) for e in events] == [("completed", intern)]


async def _for_run(db: Database, agent_id: str, offers: Any = lambda tool: True) -> skill_tools.RunSkills:
    base = ToolRegistry(governance_catalogue.current())
    async with db.session_scope() as session:
        return await skill_tools.for_run(session=session, db=db, base=base, agent_id=agent_id, offers=offers)


async def _call(tool: Any, settings: Settings, agent_id: str, **params: object) -> dict[str, Any]:
    token = current_tool_context.set(ToolContext(settings=settings, agent_id=agent_id, execution_id="e1", depth=0))
    try:
        result: dict[str, Any] = await tool.handler(tool.validate(params))
        return result
    finally:
        current_tool_context.reset(token)


async def test_read_skill_pages_long_instructions_and_reads_bundled_files(db: Database, settings: Settings) -> None:
    body = "".join(f"step {n}: do the thing carefully.\n" for n in range(1000))  # ~32k characters
    md = f"---\nname: long-guide\ndescription: A long guide.\n---\n{body}"
    members = {"SKILL.md": md.encode(), "references/faq.md": b"Q: why?\nA: because.\n"}
    async with db.session_scope() as session:
        found = bundle.build_bundle("long-guide", members, "test")
        skill, version, _ = await service.import_bundle(session=session, bundle=found, actor=SYSTEM)
        await service.trust(session=session, ref=skill.name, content_hash_seen=version.content_hash, actor=SYSTEM)
    agent = await _agent(db, settings, "reader", 0.3)
    read = (await _for_run(db, agent)).tools.get("read_skill")
    assert read is not None
    pages, offset = [], 0
    while offset is not None:
        page = await _call(read, settings, agent, name="long-guide", offset=offset)
        assert len(page["text"]) <= skill_tools.PAGE_CHARS
        pages.append(page["text"])
        offset = page["next_offset"]
    assert len(pages) == 3 and "".join(pages) == version.body and page["total_chars"] == len(version.body)
    assert page["files"] == ["references/faq.md"] and "tool" not in page  # a prompt-only skill has no tool
    faq = await _call(read, settings, agent, name="long-guide", file="references/faq.md")
    assert faq["text"] == "Q: why?\nA: because.\n" and faq["next_offset"] is None
    with pytest.raises(InvalidInput) as refused:
        await _call(read, settings, agent, name="long-guide", file="../../etc/passwd")
    assert refused.value.code == "SKILL_FILE_UNKNOWN"
    with pytest.raises(NotFound):
        await _call(read, settings, agent, name="no-such-skill")


async def test_a_skill_banned_during_a_run_is_refused_at_the_call(db: Database, settings: Settings) -> None:
    await _trusted(db, "word-count", DATA / "word-count")
    agent = await _agent(db, settings, "worker", 0.6)
    tools = (await _for_run(db, agent)).tools
    run = tools.get("skill_word_count")
    assert run is not None and run in tools.all()
    async with db.session_scope() as session:
        await service.ban(session=session, ref="word-count", actor=SYSTEM, reason="found bad")
    with pytest.raises(Conflict) as refused:
        await _call(run, settings, agent, stdin="a b")
    assert refused.value.code == "SKILL_NOT_ACTIVE"
    read = tools.get("read_skill")
    with pytest.raises(Conflict):
        await _call(read, settings, agent, name="word-count")


async def test_the_agents_tool_list_limits_what_skills_add(db: Database, settings: Settings) -> None:
    await _trusted(db, "word-count", DATA / "word-count")
    agent = await _agent(db, settings, "narrow", 0.6)
    only_calculate = await _for_run(db, agent, offers=lambda tool: tool.name == "calculate")
    assert only_calculate.prompt == "" and only_calculate.tools.get("read_skill") is None
    assert all(t.name != "skill_word_count" for t in only_calculate.tools.all())
    everything = await _for_run(db, agent)
    assert "- word-count: Count the words" in everything.prompt


def test_tool_names_stay_within_64_characters_and_never_collide() -> None:
    a, b = "a" * 60 + "-one", "a" * 60 + "-two"
    assert runs.tool_name("word-count") == "skill_word_count"
    assert len(runs.tool_name(a)) == 64 and runs.tool_name(a) != runs.tool_name(b)


def test_a_skill_with_several_scripts_must_name_one() -> None:
    params = skill_tools.run_params(("scripts/a.py", "scripts/b.sh"))
    schema = params.model_json_schema()
    assert schema["required"] == ["script"] and schema["properties"]["script"]["enum"] == [
        "scripts/a.py",
        "scripts/b.sh",
    ]
    assert params.model_validate({"script": "scripts/b.sh"}).model_dump()["script"] == "scripts/b.sh"
    for bad in (
        {},
        {"script": "scripts/c.py"},
        {"script": "scripts/a.py", "env": {}},
        {"script": "scripts/a.py", "args": ["x"] * 33},
    ):
        with pytest.raises(ValidationError):
            params.model_validate(bad)
