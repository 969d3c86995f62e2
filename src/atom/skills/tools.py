"""The one place skills meet the runtime tool registry: an agent's code skills as `Tool`s.

`runs.agent_skills` decides what an agent is offered; `register_skill_tools` turns its tool specs
into registry entries governed as `run_skill` (complexity 2). Each call runs the pinned version in
the sandbox in its own transaction (the skill run's audit record) as the calling agent.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atom.audit import service as audit
from atom.db.session import Database
from atom.errors import Forbidden, Unavailable
from atom.governance.policy import GovernanceContext
from atom.runtime.context import current_tool_context
from atom.runtime.tools import Tool, ToolRegistry
from atom.skills import runs


class SkillRunParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    script: str | None = Field(default=None, max_length=300, description="Which bundled script to run.")
    args: list[str] = Field(default_factory=list, max_length=runs.MAX_ARGS)
    stdin: str = Field(default="", max_length=runs.MAX_STDIN)


def _handler(db: Database, skill: str) -> Any:
    async def handle(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, SkillRunParams)
        context = current_tool_context.get()
        if context is None:
            raise Unavailable("A skill tool runs only inside an agent run.", code="SKILL_NO_AGENT_CONTEXT")
        async with db.session_scope() as session:
            outcome = await runs.run_skill(
                session=session,
                settings=context.settings,
                ref=skill,
                actor=audit.Actor.agent(context.agent_id),
                agent_id=context.agent_id,
                script=params.script,
                args=params.args,
                stdin=params.stdin,
                context=GovernanceContext(source="skill-tool"),
            )
        if outcome.denied or outcome.result is None:
            raise Forbidden("Governance denied this skill run.", code="SKILL_RUN_DENIED")
        result = outcome.result
        return {
            "exit_code": result.exit_code,
            "violation": result.violation,
            "stdout": result.stdout,
            "stderr": result.stderr[-4000:],
        }

    return handle


def register_skill_tools(registry: ToolRegistry, skill_set: runs.AgentSkillSet, db: Database) -> list[Tool]:
    runs.register_actions()
    added = []
    for spec in skill_set.tools:
        tool = Tool(
            name=spec.name,
            complexity=runs.RUN_COMPLEXITY,
            description=f"[skill {spec.skill}] {spec.description}",
            params=SkillRunParams,
            handler=_handler(db, spec.skill),
            governed_as=lambda _params: runs.RUN_ACTION,
            governed_names={runs.RUN_ACTION: runs.RUN_COMPLEXITY},
        )
        added.append(registry.register(tool))
    return added
