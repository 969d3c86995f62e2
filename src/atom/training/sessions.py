"""Training sessions for STUDENT agents: a duration estimate from history, scheduling, completion.

Estimate (RULES.md): the median hours of completed training sessions of agents in the same
category, scaled by how far the agent is from INTERN — (0.5 - confidence) / 0.2, so a new agent
at 0.3 gets the median — and by capability gaps (+10% for each planned action the agent does not
list among its capabilities); 40 h (ATOM_TRAINING_DEFAULT_HOURS) without history; at least 1 h;
shown with a 0.7x-1.5x range. A person may override it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.agents.models import Agent
from atom.audit import service as audit
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import rows_affected
from atom.errors import Conflict, NotFound
from atom.pagination import paginate
from atom.training.models import TrainingSession, TrainingStatus

HISTORY_WINDOW = 200


@dataclass(frozen=True)
class Estimate:
    hours: float
    low: float
    high: float
    basis: str


def performance_delta(performance: float, settings: Settings) -> float:
    """The change of the highest ATOM_CONFIDENCE_TRAINING_BANDS band the performance reaches."""
    delta = settings.confidence_training_bands[0][1]
    for start, change in settings.confidence_training_bands:
        if performance >= start:
            delta = change
    return delta


async def estimate(*, session: AsyncSession, agent: Agent, planned_actions: list[str], settings: Settings) -> Estimate:
    durations = list(
        (
            await session.scalars(
                select(TrainingSession.duration_hours)
                .where(
                    TrainingSession.category == agent.category,
                    TrainingSession.status == TrainingStatus.COMPLETED.value,
                    TrainingSession.duration_hours.is_not(None),
                )
                .order_by(TrainingSession.completed_at.desc())
                .limit(HISTORY_WINDOW)
            )
        ).all()
    )
    if not durations:
        hours, basis = settings.training_default_hours, "no completed training in this category yet"
    else:
        median = statistics.median(d for d in durations if d is not None)
        distance = max(0.0, settings.maturity_intern_threshold - agent.confidence) / 0.2
        gaps = len({a for a in planned_actions if a not in set(agent.capabilities)})
        hours = median * distance * (1 + 0.1 * gaps)
        basis = f"median {median:.1f} h of {len(durations)} sessions, distance {distance:.2f}, {gaps} capability gaps"
    hours = max(1.0, round(hours, 1))
    return Estimate(hours=hours, low=round(hours * 0.7, 1), high=round(hours * 1.5, 1), basis=basis)


async def schedule(*, session: AsyncSession, agent: Agent, proposal_id: str, estimate_hours: float) -> TrainingSession:
    training = TrainingSession(
        agent_id=agent.id,
        proposal_id=proposal_id,
        category=agent.category,
        status=TrainingStatus.SCHEDULED.value,
        estimate_hours=estimate_hours,
        scheduled_at=utcnow(),
    )
    session.add(training)
    await session.flush()
    return training


async def get(*, session: AsyncSession, training_id: str) -> TrainingSession:
    training = await session.get(TrainingSession, training_id)
    if training is None:
        raise NotFound(f"No training session {training_id!r}.", code="TRAINING_NOT_FOUND")
    return training


async def list_sessions(
    *, session: AsyncSession, status: TrainingStatus | None, agent_id: str | None, limit: int, cursor: str | None
) -> tuple[list[TrainingSession], str | None]:
    stmt = select(TrainingSession)
    if status is not None:
        stmt = stmt.where(TrainingSession.status == status.value)
    if agent_id is not None:
        stmt = stmt.where(TrainingSession.agent_id == agent_id)
    return await paginate(session, stmt, id_column=TrainingSession.id, limit=limit, cursor=cursor)


async def override(*, session: AsyncSession, training_id: str, hours: float, actor: audit.Actor) -> TrainingSession:
    training = await get(session=session, training_id=training_id)
    if training.status != TrainingStatus.SCHEDULED.value:
        raise Conflict("Only a scheduled training can be re-estimated.", code="TRAINING_FINISHED")
    training.override_hours = hours
    await session.flush()
    await audit.record(
        session=session,
        actor=actor,
        action="training.override",
        resource_type="training",
        resource_id=training.id,
        decision="done",
        details={"estimate_hours": training.estimate_hours, "override_hours": hours},
    )
    return training


async def complete(
    *,
    session: AsyncSession,
    training_id: str,
    performance: float,
    duration_hours: float | None,
    actor: audit.Actor,
    settings: Settings,
    scored_by: str = "person",
    results: list[dict[str, Any]] | None = None,
) -> TrainingSession:
    """Close the session with performance p; confidence moves by p's band (a ledger row naming the session).

    A person completes a scheduled session; a scenario run (`scored_by="scenarios"`) completes the
    running session it claimed, with its per-scenario results.
    """
    now = utcnow()
    training = await get(session=session, training_id=training_id)
    hours = duration_hours if duration_hours is not None else (now - training.scheduled_at) / timedelta(hours=1)
    by_run = scored_by == "scenarios"
    expected = TrainingStatus.RUNNING if by_run else TrainingStatus.SCHEDULED
    values: dict[str, Any] = {
        "status": TrainingStatus.COMPLETED.value,
        "completed_at": now,
        "performance": performance,
        "duration_hours": hours,
        "scored_by": scored_by,
        "current_scenario": None,
    }
    if by_run:
        values.update(scenario_performance=performance, results=results, run_heartbeat_at=now)
    claimed = await session.execute(
        update(TrainingSession)
        .where(TrainingSession.id == training_id, TrainingSession.status == expected.value)
        .values(**values)
    )
    if rows_affected(claimed) != 1:
        await session.refresh(training)
        if training.status == TrainingStatus.RUNNING.value:
            raise Conflict(
                "Its scenarios are being run; the run scores it (override the score afterwards).",
                code="TRAINING_RUNNING",
            )
        raise Conflict("This training session is already completed.", code="TRAINING_FINISHED")
    await session.refresh(training)
    delta = performance_delta(performance, settings)
    await agents_service.record_confidence(
        session=session,
        agent_id=training.agent_id,
        delta=delta,
        reason=f"training completed, performance {performance:.2f}" + (" (scenarios)" if by_run else ""),
        source="training",
        source_id=training.id,
        settings=settings,
    )
    await audit.record(
        session=session,
        actor=actor,
        action="training.complete",
        resource_type="training",
        resource_id=training.id,
        decision="done",
        details={
            "performance": performance,
            "confidence_delta": delta,
            "duration_hours": hours,
            "scored_by": scored_by,
        },
    )
    return training


async def override_score(
    *, session: AsyncSession, training_id: str, performance: float, reason: str, actor: audit.Actor, settings: Settings
) -> TrainingSession:
    """A person replaces a completed session's score: confidence moves by the difference of the two bands, so
    the session's ledger rows add up to the band of the score in force (audited with both scores)."""
    training = await get(session=session, training_id=training_id)
    if training.status != TrainingStatus.COMPLETED.value or training.performance is None:
        raise Conflict(
            "Only a completed session's score can be overridden; complete it (or run its scenarios) first.",
            code="TRAINING_NOT_SCORED",
            details={"status": training.status},
        )
    before = training.performance
    changed = await session.execute(
        update(TrainingSession)
        .where(TrainingSession.id == training_id, TrainingSession.performance == before)
        .values(performance=performance, scored_by="person")
    )
    if rows_affected(changed) != 1:
        raise Conflict("The score changed meanwhile; look again.", code="TRAINING_SCORE_CHANGED")
    await session.refresh(training)
    delta = performance_delta(performance, settings) - performance_delta(before, settings)
    if delta:
        await agents_service.record_confidence(
            session=session,
            agent_id=training.agent_id,
            delta=delta,
            reason=f"training score overridden {before:.2f} -> {performance:.2f}",
            source="training",
            source_id=training.id,
            settings=settings,
        )
    await audit.record(
        session=session,
        actor=actor,
        action="training.score.override",
        resource_type="training",
        resource_id=training.id,
        decision="overridden",
        reason=reason,
        details={
            "before": before,
            "after": performance,
            "scenario_performance": training.scenario_performance,
            "confidence_delta": delta,
        },
    )
    return training
