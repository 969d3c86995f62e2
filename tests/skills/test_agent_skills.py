"""Skills for agents: instructions by progressive disclosure, code skills as governed runtime tools."""

from __future__ import annotations

from atom.agents import service as agents_service
from atom.agents.schemas import AgentCreate
from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.governance import catalogue as governance_catalogue
from atom.governance.policy import GovernanceContext
from atom.runtime.context import ToolContext, current_tool_context
from atom.runtime.tools import ToolRegistry
from atom.skills import bundle, runs, service
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
