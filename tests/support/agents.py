"""Factories for agents at a given level and status."""

from __future__ import annotations

from atom.agents import service as agents_service
from atom.agents.models import Agent, AgentStatus
from atom.agents.schemas import AgentCreate
from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel

LEVEL_CONFIDENCE = {
    MaturityLevel.STUDENT: 0.3,
    MaturityLevel.INTERN: 0.6,
    MaturityLevel.SUPERVISED: 0.8,
    MaturityLevel.AUTONOMOUS: 0.95,
}
_counter = {"n": 0}


async def make_agent(
    db: Database,
    settings: Settings,
    level: MaturityLevel = MaturityLevel.STUDENT,
    status: AgentStatus = AgentStatus.ACTIVE,
    *,
    category: str = "general",
    confidence: float | None = None,
    name: str | None = None,
) -> Agent:
    _counter["n"] += 1
    async with db.session_scope() as s:
        agent = await agents_service.create_agent(
            session=s,
            agent_in=AgentCreate(
                name=name or f"agent-{_counter['n']}",
                category=category,
                confidence=LEVEL_CONFIDENCE[level] if confidence is None else confidence,
            ),
            actor=audit.Actor.system(),
            settings=settings,
            may_promote=True,  # the factory acts as an approver
        )
        if status is not AgentStatus.ACTIVE:
            await agents_service.set_status(
                session=s, agent_id=agent.id, status=status, actor=audit.Actor.system(), reason="test"
            )
    return agent
