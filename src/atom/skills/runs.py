"""Skills for agents: what an agent may load or run, and running a code skill in the sandbox under governance.

Actions (registered in the governance catalogue before they are checked, never at import time):

- `read_skill` (complexity 1, STUDENT and up): load a skill's instructions (the body of SKILL.md).
- `run_skill` (complexity 2, INTERN and up): run a trusted code skill's bundled script in the sandbox.
  RULES.md puts unconfined `execute` at 4; a skill run is confined (no network, read-only system,
  scratch dir only, memory/pids/CPU/wall-clock/output limits) and only an approver-trusted version
  runs, so it is governed like `analyze`/`generate` (2): STUDENT agents are refused code skills, as
  RULES.md requires, and INTERN agents' automated runs go through proposals.

Every run (allowed or denied) writes an audit record; denials also get governance's own record.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.config import Settings
from atom.errors import Conflict, InvalidInput
from atom.governance import catalogue as governance_catalogue
from atom.governance import service as governance
from atom.governance.catalogue import ActionCatalogue
from atom.governance.maturity import MaturityLevel
from atom.governance.policy import Decision, GovernanceContext
from atom.skills import reads, service
from atom.skills.models import Skill, SkillKind, SkillState, SkillVersion
from atom.skills.sandbox import Sandbox, SandboxLimits, SandboxResult

READ_ACTION, READ_COMPLEXITY = "read_skill", 1
RUN_ACTION, RUN_COMPLEXITY = "run_skill", 2
MAX_ARGS = 32
MAX_ARG_CHARS = 4096
MAX_STDIN = 1024 * 1024
_sandboxes: dict[tuple[str, float, bool], Sandbox] = {}


def register_actions(catalogue: ActionCatalogue | None = None) -> None:
    """Idempotent: the two skill actions in the governance catalogue (`build_registries` calls it; checks
    call it again on this process's catalogue)."""
    catalogue = catalogue if catalogue is not None else governance_catalogue.current()
    if catalogue.get(RUN_ACTION) is None:
        catalogue.register(
            RUN_ACTION,
            RUN_COMPLEXITY,
            "Run a trusted code skill in the sandbox.",
            source="skills",
            implementation="skills",
        )
    if catalogue.get(READ_ACTION) is None:
        catalogue.register(
            READ_ACTION,
            READ_COMPLEXITY,
            "Load a trusted skill's instructions.",
            source="skills",
            implementation="skills",
        )


def sandbox_for(settings: Settings) -> Sandbox:
    key = (settings.skills_sandbox_backend, settings.skills_sandbox_max_timeout_s, settings.skills_sandbox_cgroups)
    if key not in _sandboxes:
        _sandboxes[key] = Sandbox(backend=key[0], max_timeout_s=key[1], use_cgroups=key[2])
    return _sandboxes[key]


def tool_name(skill_name: str) -> str:
    """`skill_<name>` within the providers' 64 characters; a long name ends in a hash of it so two never collide."""
    slug = re.sub(r"[^a-z0-9_]", "_", skill_name.lower())
    if len(slug) > 58:
        slug = slug[:49] + "_" + hashlib.sha256(skill_name.encode()).hexdigest()[:8]
    return "skill_" + slug


@dataclass(frozen=True)
class SkillInstruction:
    name: str
    description: str
    version_id: str
    kind: str = SkillKind.PROMPT.value


@dataclass(frozen=True)
class SkillToolSpec:
    name: str  # the tool's name, `skill_<name>`
    skill: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the call
    version_id: str
    version: int = 0  # its number and content hash: what a proposal records of the call (`pin`)
    content_hash: str = ""

    @property
    def pin(self) -> dict[str, Any]:
        return {"skill": self.skill, "version_id": self.version_id, "version": self.version, "hash": self.content_hash}


@dataclass
class AgentSkillSet:
    """Progressive disclosure: names and descriptions go in the prompt; bodies load via `read_skill`."""

    instructions: list[SkillInstruction] = field(default_factory=list)
    tools: list[SkillToolSpec] = field(default_factory=list)


def parameters_schema(scripts: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "script": {"type": "string", "enum": scripts, "description": "Which bundled script to run."},
            "args": {"type": "array", "items": {"type": "string", "maxLength": MAX_ARG_CHARS}, "maxItems": MAX_ARGS},
            "stdin": {"type": "string", "maxLength": MAX_STDIN},
        },
        "required": ["script"] if len(scripts) > 1 else [],
        "additionalProperties": False,
    }


async def may_run_code(*, session: AsyncSession, agent_id: str) -> bool:
    """Whether code skills are offered to this agent as tools (a STUDENT's or inactive agent's are not)."""
    agent = await agents_service.get_agent(session=session, agent_id=agent_id)
    return MaturityLevel(agent.maturity_level) != MaturityLevel.STUDENT and agent.status == "active"


async def agent_skills(*, session: AsyncSession, agent_id: str, include_all_tools: bool = False) -> AgentSkillSet:
    """What this agent is offered: every Active skill's instructions; code skills as tools unless STUDENT.
    `include_all_tools`: every code skill's tool, also those this agent may not run (the runtime resolves
    them so that such a call is governed and refused with the reason, without offering them)."""
    may_run = include_all_tools or await may_run_code(session=session, agent_id=agent_id)
    active = await reads.active_summaries(session=session)
    code = [a.version_id for a in active if a.kind == SkillKind.CODE]
    scripts = await reads.version_scripts(session=session, version_ids=code) if may_run and code else {}
    result = AgentSkillSet()
    for skill in active:
        result.instructions.append(SkillInstruction(skill.name, skill.description, skill.version_id, skill.kind))
        found = scripts.get(skill.version_id)
        if found:
            result.tools.append(
                SkillToolSpec(
                    tool_name(skill.name),
                    skill.name,
                    skill.description[:500],
                    parameters_schema(found),
                    skill.version_id,
                    skill.number,
                    skill.content_hash,
                )
            )
    return result


async def pinned(session: AsyncSession, ref: str) -> tuple[Skill, SkillVersion]:
    """A skill and the version agents use; SKILL_NOT_ACTIVE unless an approver trusted it (not banned)."""
    skill = await service.get_skill(session=session, ref=ref)
    if skill.state != SkillState.ACTIVE or not skill.active_version_id:
        raise Conflict(
            f"Skill {skill.name!r} is {skill.state}; only Active skills can be used.",
            code="SKILL_NOT_ACTIVE",
            details={"state": skill.state},
        )
    return skill, await service.get_version(session=session, version_id=skill.active_version_id)


async def load_instructions(
    *, session: AsyncSession, settings: Settings, agent_id: str, ref: str, context: GovernanceContext
) -> tuple[Decision, str | None]:
    register_actions()
    _, version = await pinned(session, ref)
    decision = await governance.check(
        session=session, agent_id=agent_id, action=READ_ACTION, context=context, settings=settings
    )
    return decision, (version.body if decision.allowed else None)


@dataclass
class RunOutcome:
    skill: str
    version: int
    content_hash: str
    script: str
    decision: Decision | None  # None when a person ran it without an agent
    result: SandboxResult | None  # None when denied

    @property
    def denied(self) -> bool:
        return self.decision is not None and not self.decision.allowed


def _command(version: SkillVersion, script: str | None, args: list[str]) -> tuple[str, list[str]]:
    scripts = service.entrypoints(version.files)
    if version.kind != SkillKind.CODE or not scripts:
        raise InvalidInput("This is a prompt-only skill: there is nothing to run.", code="SKILL_NOT_RUNNABLE")
    if script is None:
        if len(scripts) != 1:
            raise InvalidInput("Name the script to run.", code="SKILL_SCRIPT_REQUIRED", details={"scripts": scripts})
        script = scripts[0]
    if script not in scripts:
        raise InvalidInput(
            f"{script!r:.100} is not one of the skill's scripts.",
            code="SKILL_SCRIPT_UNKNOWN",
            details={"scripts": scripts},
        )
    if len(args) > MAX_ARGS or any(len(a) > MAX_ARG_CHARS or "\x00" in a for a in args):
        raise InvalidInput(f"At most {MAX_ARGS} arguments of {MAX_ARG_CHARS} characters.", code="SKILL_ARGS_INVALID")
    interpreter = ["/usr/bin/python3", "-I"] if script.endswith(".py") else ["/bin/bash"]
    return script, [*interpreter, script, *args]


async def run_skill(
    *,
    session: AsyncSession,
    settings: Settings,
    ref: str,
    actor: audit.Actor,
    agent_id: str | None = None,
    script: str | None = None,
    args: list[str] | None = None,
    stdin: str = "",
    timeout_s: float | None = None,
    context: GovernanceContext | None = None,
    governed: bool = False,
    execution_id: str | None = None,
    version_id: str | None = None,
) -> RunOutcome:
    """Run the pinned Active version of a code skill. With an agent, governance decides first, unless
    `governed`: the caller (the agent runtime or the plan executor, before any tool handler) has already
    passed this very call through governance as `run_skill`; the run is still recorded as the agent's.
    `version_id`: the version an approved proposal recorded; if the skill is no longer Active on exactly
    that version, nothing runs (SKILL_NOT_ACTIVE, SKILL_VERSION_CHANGED)."""
    register_actions()
    skill, version = await pinned(session, ref)
    if version_id is not None and version.id != version_id:
        raise Conflict(
            f"Skill {skill.name!r} changed since the proposal: an approver has trusted version {version.number} "
            "since; the approved call was for another version, so it was not run.",
            code="SKILL_VERSION_CHANGED",
            details={"version_id": version.id, "version": version.number, "approved_version_id": version_id},
        )
    script, command = _command(version, script, list(args or []))
    if len(stdin.encode()) > MAX_STDIN:
        raise InvalidInput(f"stdin is limited to {MAX_STDIN} bytes.", code="SKILL_STDIN_TOO_LARGE")
    outcome = RunOutcome(skill.name, version.number, version.content_hash, script, None, None)
    if agent_id is not None and not governed:
        outcome.decision = await governance.check(
            session=session,
            agent_id=agent_id,
            action=RUN_ACTION,
            context=context or GovernanceContext(source="skills"),
            settings=settings,
        )
    details: dict[str, Any] = {
        "skill": skill.name,
        "version": version.number,
        "content_hash": version.content_hash,
        "script": script,
        "agent_id": agent_id,
        "execution_id": execution_id,
    }
    if outcome.denied:
        assert outcome.decision is not None
        await audit.record(
            session=session,
            actor=actor,
            action="skill.run",
            resource_type="skill",
            resource_id=skill.id,
            decision="denied",
            reason=outcome.decision.reason,
            details={**details, "reason_code": outcome.decision.reason_code},
        )
        return outcome
    limits = SandboxLimits(
        memory_bytes=settings.skills_sandbox_memory_mb * 1024 * 1024,
        pids=settings.skills_sandbox_pids,
        timeout_s=timeout_s or settings.skills_sandbox_timeout_s,
        output_bytes=settings.skills_sandbox_output_bytes,
    )
    sandbox = sandbox_for(settings)
    result = await asyncio.to_thread(
        sandbox.run, command, files=dict(version.files), stdin=stdin.encode(), limits=limits
    )
    outcome.result = result
    await audit.record(
        session=session,
        actor=actor,
        action="skill.run",
        resource_type="skill",
        resource_id=skill.id,
        decision="completed" if result.ok else "failed",
        details={
            **details,
            "exit_code": result.exit_code,
            "violation": result.violation,
            "duration_ms": round(result.duration_ms, 1),
            "confinement": result.confinement,
            "stdout_bytes": len(result.stdout),
            "stderr_bytes": len(result.stderr),
        },
    )
    return outcome
