"""The skill tools of a stored plan run outside an agent run (an approved proposal, a supervised plan).

The plan executor gets its steps' agent-context tools here (`atom.registries` passes `plan_tools` to
it): the process's tools plus `read_skill` and one `skill_<name>` tool per code skill, as in the agent
runtime (`tools.for_run`). A step that recorded a skill version (`pins`: the step's action -> its
`pin`) gets a tool built from that very version, whatever the skill's state now, so that its handler
refuses it with the reason when the skill was banned or re-trusted at another version since, instead
of the step vanishing as an unknown tool. Governance decides every step before a handler runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.db.session import Database
from atom.errors import NotFound
from atom.runtime.tools import ToolRegistry
from atom.skills import runs, service
from atom.skills.tools import RunTools, read_tool, skill_tool


async def plan_tools(
    *, db: Database, base: ToolRegistry, agent_id: str, pins: Mapping[str, dict[str, Any]]
) -> ToolRegistry:
    """The tools of one plan run for `agent_id`; every skill tool is resolvable (governance refuses a call
    the agent's maturity does not allow, as in the runtime)."""
    runs.register_actions(base.catalogue)
    tools = RunTools(base)
    tools.offer(read_tool(db))
    async with db.session_scope() as session:
        skill_set = await runs.agent_skills(session=session, agent_id=agent_id, include_all_tools=True)
        specs = {spec.name: spec for spec in skill_set.tools}
        for action, pin in pins.items():
            recorded = await _recorded(session, action, pin)
            if recorded is not None:
                specs[action] = recorded
    for spec in specs.values():
        tools.offer(skill_tool(db, spec))
    return tools


async def _recorded(session: AsyncSession, action: str, pin: dict[str, Any]) -> runs.SkillToolSpec | None:
    """The tool of the skill version a step recorded (None: the pin is not a skill version of this tool)."""
    skill, version_id = pin.get("skill"), pin.get("version_id")
    if not isinstance(skill, str) or not isinstance(version_id, str) or runs.tool_name(skill) != action:
        return None
    try:
        version = await service.get_version(session=session, version_id=version_id)
    except NotFound:
        return None
    scripts = service.entrypoints(version.files)
    if not scripts:
        return None
    return runs.SkillToolSpec(
        action,
        skill,
        version.description[:500],
        runs.parameters_schema(scripts),
        version.id,
        version.number,
        version.content_hash,
    )
