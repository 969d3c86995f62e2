"""The agent registry and its confidence ledger (RULES.md: Maturity, Confidence changes).

Confidence moves continuously; the level follows it DOWN at once (audited demotion) and goes UP
only through `promote` (or a starting confidence at creation), by a person with the approver
role. Invariant: an agent's confidence is never below its level's floor. Every change tells the governance
cache through the event bus ("agent.changed"): at once in this process, and again after commit
to every process.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents.models import Agent, AgentStatus, ConfidenceEvent, LevelChange
from atom.agents.schemas import AgentCreate, AgentUpdate
from atom.audit import service as audit
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import on_commit
from atom.errors import Conflict, Forbidden, InvalidInput, NotFound
from atom.events.bus import get_bus
from atom.governance.maturity import MaturityLevel, MaturityThresholds
from atom.pagination import paginate

AGENT_CHANGED = "agent.changed"
_STATUS_ACTIONS = {
    AgentStatus.ACTIVE: "agent.resume",
    AgentStatus.PAUSED: "agent.pause",
    AgentStatus.STOPPED: "agent.stop",
}


def announce_change(session: AsyncSession, agent_id: str) -> None:
    """Drop cached decisions for the agent now, and everywhere once the change is committed."""
    payload = {"agent_id": agent_id}
    get_bus().publish_local(AGENT_CHANGED, payload)
    # After commit: again here (closes the window where a check read the old row) and to others.
    on_commit(session, lambda: get_bus().publish_soon(AGENT_CHANGED, payload))


async def create_agent(
    *,
    session: AsyncSession,
    agent_in: AgentCreate,
    actor: audit.Actor,
    settings: Settings,
    may_promote: bool = False,
) -> Agent:
    """Register an agent: a STUDENT at ATOM_INITIAL_CONFIDENCE unless a starting confidence is given.

    A starting confidence above the STUDENT range is a promotion made at birth: it needs a caller
    with the approver role (`may_promote`, checked by the caller like for `promote`), and it is
    recorded like one — a level change, a ledger row from the initial confidence, an audit record.
    """
    thresholds = MaturityThresholds.from_settings(settings)
    confidence = settings.initial_confidence if agent_in.confidence is None else agent_in.confidence
    level = thresholds.level_for(confidence)
    if level is not MaturityLevel.STUDENT and not may_promote:
        raise Forbidden(
            f"A starting confidence of {confidence} makes the agent {level.value}; only an approver (or admin) "
            f"may create an agent above STUDENT (confidence below {thresholds.intern}).",
            code="ROLE_REQUIRED",
            details={"field": "confidence", "required_role": "approver", "level": level.value},
        )
    agent = Agent(
        name=agent_in.name,
        description=agent_in.description,
        category=agent_in.category,
        specialty=agent_in.specialty,
        capabilities=list(agent_in.capabilities),
        configuration=agent_in.configuration.model_dump(exclude_none=True),
        confidence=confidence,
        maturity_level=level.value,
        status=AgentStatus.ACTIVE.value,
    )
    session.add(agent)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(
            f"An agent named {agent_in.name!r} exists.", code="AGENT_EXISTS", details={"name": agent_in.name}
        ) from exc
    await audit.record(
        session=session,
        actor=actor,
        action="agent.create",
        resource_type="agent",
        resource_id=agent.id,
        decision="done",
        details={"name": agent.name, "level": agent.maturity_level, "confidence": confidence},
    )
    if level is not MaturityLevel.STUDENT:
        reason = f"created at confidence {confidence}"
        change = _level_change(agent.id, MaturityLevel.STUDENT, level, actor, reason)
        session.add(change)
        await session.flush()
        start = settings.initial_confidence
        session.add(_ledger_row(agent.id, start, confidence, "starting confidence set at creation", change.id))
        await session.flush()
        await _audit_promotion(session, agent.id, MaturityLevel.STUDENT, level, actor, reason, start, confidence)
    return agent


def _level_change(
    agent_id: str, from_level: MaturityLevel, to_level: MaturityLevel, actor: audit.Actor, reason: str
) -> LevelChange:
    return LevelChange(
        agent_id=agent_id,
        from_level=from_level.value,
        to_level=to_level.value,
        kind="promotion",
        actor_type=actor.type,
        actor_id=actor.id,
        reason=reason,
        created_at=utcnow(),
    )


def _ledger_row(agent_id: str, before: float, after: float, reason: str, level_change_id: str) -> ConfidenceEvent:
    """A confidence change whose source is a promotion (the level change row's id)."""
    return ConfidenceEvent(
        agent_id=agent_id,
        delta=after - before,
        reason=reason[:200],
        source="promotion",
        source_id=level_change_id,
        confidence_before=before,
        confidence_after=after,
        created_at=utcnow(),
    )


async def _audit_promotion(
    session: AsyncSession,
    agent_id: str,
    from_level: MaturityLevel,
    to_level: MaturityLevel,
    actor: audit.Actor,
    reason: str,
    confidence_before: float,
    confidence_after: float,
) -> None:
    await audit.record(
        session=session,
        actor=actor,
        action="agent.promote",
        resource_type="agent",
        resource_id=agent_id,
        decision="approved",
        reason=reason,
        details={
            "from": from_level.value,
            "to": to_level.value,
            "confidence_before": confidence_before,
            "confidence_after": confidence_after,
        },
    )


async def get_agent(*, session: AsyncSession, agent_id: str) -> Agent:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"No agent with id {agent_id!r}.", code="AGENT_NOT_FOUND", details={"agent_id": agent_id})
    return agent


async def find_agent(*, session: AsyncSession, agent_id: str) -> Agent | None:
    return await session.get(Agent, agent_id)


async def get_agent_by_name(*, session: AsyncSession, name: str) -> Agent:
    agent = await session.scalar(select(Agent).where(Agent.name == name))
    if agent is None:
        raise NotFound(f"No agent named {name!r}.", code="AGENT_NOT_FOUND", details={"name": name})
    return agent


async def resolve_ref(*, session: AsyncSession, ref: str) -> Agent:
    """An agent by id, else by name (for the CLI)."""
    agent = await session.get(Agent, ref)
    return agent if agent is not None else await get_agent_by_name(session=session, name=ref)


async def list_agents(
    *,
    session: AsyncSession,
    limit: int,
    cursor: str | None,
    status: AgentStatus | None = None,
    category: str | None = None,
) -> tuple[list[Agent], str | None]:
    stmt = select(Agent)
    if status is not None:
        stmt = stmt.where(Agent.status == status.value)
    if category is not None:
        stmt = stmt.where(Agent.category == category)
    return await paginate(session, stmt, id_column=Agent.id, limit=limit, cursor=cursor)


async def update_agent(*, session: AsyncSession, agent_id: str, agent_in: AgentUpdate, actor: audit.Actor) -> Agent:
    agent = await get_agent(session=session, agent_id=agent_id)
    changes: dict[str, Any] = agent_in.model_dump(exclude_unset=True, exclude_none=True)
    if agent_in.configuration is not None:
        changes["configuration"] = agent_in.configuration.model_dump(exclude_none=True)
    for field, value in changes.items():
        setattr(agent, field, value)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="agent.update",
        resource_type="agent",
        resource_id=agent.id,
        decision="done",
        details={"fields": sorted(changes)},
    )
    announce_change(session, agent.id)
    return agent


async def delete_agent(*, session: AsyncSession, agent_id: str, actor: audit.Actor) -> None:
    agent = await get_agent(session=session, agent_id=agent_id)
    await session.delete(agent)
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="agent.delete",
        resource_type="agent",
        resource_id=agent_id,
        decision="done",
    )
    announce_change(session, agent_id)


async def set_status(
    *, session: AsyncSession, agent_id: str, status: AgentStatus, actor: audit.Actor, reason: str | None
) -> Agent:
    agent = await get_agent(session=session, agent_id=agent_id)
    if agent.status == AgentStatus.STOPPED.value and status == AgentStatus.PAUSED:
        raise Conflict("A stopped agent cannot be paused; resume it first.", code="AGENT_STOPPED")
    previous = agent.status
    agent.status = status.value
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action=_STATUS_ACTIONS[status],
        resource_type="agent",
        resource_id=agent.id,
        decision="done",
        reason=reason,
        details={"from": previous, "to": status.value},
    )
    announce_change(session, agent.id)
    return agent


async def record_confidence(
    *,
    session: AsyncSession,
    agent_id: str,
    delta: float,
    reason: str,
    source: str,
    settings: Settings,
    source_id: str | None = None,
) -> ConfidenceEvent:
    """Move confidence by `delta` (clamped to [0, 1]); demote at once if it falls under the level's floor.

    The row is locked first (a no-op UPDATE: a row lock on PostgreSQL, the write lock on SQLite)
    so concurrent changes apply one after the other instead of overwriting each other.
    """
    await session.execute(update(Agent).where(Agent.id == agent_id).values(confidence=Agent.confidence))
    agent = await session.get(Agent, agent_id, populate_existing=True)
    if agent is None:
        raise NotFound(f"No agent with id {agent_id!r}.", code="AGENT_NOT_FOUND", details={"agent_id": agent_id})
    before = agent.confidence
    after = min(1.0, max(0.0, before + delta))
    event = ConfidenceEvent(
        agent_id=agent.id,
        delta=after - before,
        reason=reason[:200],
        source=source,
        source_id=source_id,
        confidence_before=before,
        confidence_after=after,
        created_at=utcnow(),
    )
    session.add(event)
    agent.confidence = after
    thresholds = MaturityThresholds.from_settings(settings)
    level = MaturityLevel(agent.maturity_level)
    earned = thresholds.level_for(after)
    # Invariant: the level's floor is never above the confidence (promotion raises confidence to
    # the floor), so any change that leaves the agent under its floor demotes it.
    if earned.rank < level.rank:
        agent.maturity_level = earned.value
        session.add(
            LevelChange(
                agent_id=agent.id,
                from_level=level.value,
                to_level=earned.value,
                kind="demotion",
                actor_type="system",
                actor_id=None,
                reason=f"confidence {after:.4f} fell under the {level.value} floor {thresholds.floor(level)}",
                created_at=utcnow(),
            )
        )
        await audit.record(
            session=session,
            actor=audit.Actor.system(),
            action="agent.demote",
            resource_type="agent",
            resource_id=agent.id,
            decision="demoted",
            reason=f"confidence {after:.4f} < {thresholds.floor(level)} ({reason})",
            details={"from": level.value, "to": earned.value, "source": source, "source_id": source_id},
        )
    await session.flush()
    announce_change(session, agent.id)
    return event


async def promote(
    *,
    session: AsyncSession,
    agent_id: str,
    to_level: MaturityLevel,
    actor: audit.Actor,
    reason: str,
    settings: Settings,
) -> Agent:
    """Raise the agent's level. The caller checks the approver role (and, later, graduation readiness).

    An agent never sits at a level whose floor is above its confidence: a promotion ahead of the
    agent's confidence raises it to the new level's floor, in a ledger row whose source is this
    promotion (docs/governance.md explains why we raise rather than refuse).
    """
    await session.execute(update(Agent).where(Agent.id == agent_id).values(confidence=Agent.confidence))
    agent = await get_agent(session=session, agent_id=agent_id)
    await session.refresh(agent)
    current = MaturityLevel(agent.maturity_level)
    if to_level.rank <= current.rank:
        raise InvalidInput(
            f"{to_level.value} is not above the agent's level {current.value}.",
            code="NOT_A_PROMOTION",
            details={"field": "to_level", "current": current.value},
        )
    floor = MaturityThresholds.from_settings(settings).floor(to_level)
    before = agent.confidence
    agent.maturity_level = to_level.value
    change = _level_change(agent.id, current, to_level, actor, reason)
    session.add(change)
    await session.flush()
    if before < floor:
        agent.confidence = floor
        session.add(
            _ledger_row(agent.id, before, floor, f"promoted to {to_level.value}: raised to its floor", change.id)
        )
    await session.flush()
    await _audit_promotion(session, agent.id, current, to_level, actor, reason, before, agent.confidence)
    announce_change(session, agent.id)
    return agent


async def confidence_history(
    *, session: AsyncSession, agent_id: str, limit: int, cursor: str | None
) -> tuple[list[ConfidenceEvent], str | None]:
    await get_agent(session=session, agent_id=agent_id)
    stmt = select(ConfidenceEvent).where(ConfidenceEvent.agent_id == agent_id)
    return await paginate(session, stmt, id_column=ConfidenceEvent.id, limit=limit, cursor=cursor)


async def level_history(*, session: AsyncSession, agent_id: str) -> list[LevelChange]:
    stmt = select(LevelChange).where(LevelChange.agent_id == agent_id).order_by(LevelChange.id)
    return list((await session.scalars(stmt)).all())
