"""Feedback on agent runs, chat messages and workflow steps, and the confidence it moves (RULES.md).

- A correction from a trusted reviewer (approver role or higher) is accepted at once:
  ATOM_CONFIDENCE_CORRECTION_TRUSTED (-0.10).
- Anyone else's correction is pending until an approver reviews it; accepted:
  ATOM_CONFIDENCE_CORRECTION_UNTRUSTED (-0.02); rejected: nothing.
- A rating >= 4 from a trusted reviewer: ATOM_CONFIDENCE_RATING_TRUSTED (+0.005), at most
  ATOM_FEEDBACK_RATING_DAILY_CAP (3) per agent, reviewer and UTC day.
- Thumbs, comments and other ratings move nothing (they count in analytics and A/B results).

Each change is a ledger row whose source is the feedback. `feedback.created` is published on the
event bus after commit, so workflows can trigger on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.chat import service as chat_service
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import on_commit
from atom.errors import Conflict, NotFound
from atom.events.bus import get_bus
from atom.feedback.models import Feedback, FeedbackKind, FeedbackStatus, TargetType
from atom.feedback.schemas import AgentFeedbackStats, DayStats, FeedbackCreate
from atom.pagination import paginate
from atom.security.models import Role
from atom.security.principal import Principal
from atom.workflows import service as workflows_service

FEEDBACK_CREATED = "feedback.created"


@dataclass(frozen=True)
class Target:
    agent_id: str
    output: str | None  # what the agent produced, kept beside a correction


async def resolve_target(
    *, session: AsyncSession, target_type: TargetType, target_id: str, reader: Principal
) -> Target:
    """The agent behind a target the reader may see; NotFound otherwise (hidden targets look absent)."""
    if target_type is TargetType.EXECUTION:
        execution = await chat_service.get_execution(session=session, execution_id=target_id, reader=reader)
        return Target(agent_id=execution.agent_id, output=execution.output)
    if target_type is TargetType.MESSAGE:
        message, chat = await chat_service.get_message(session=session, message_id=target_id, reader=reader)
        return Target(agent_id=chat.agent_id, output=message.content)
    step, run = await workflows_service.get_step(session=session, step_id=target_id)
    output = None if step.output is None else json.dumps(step.output, default=str, ensure_ascii=False)
    return Target(agent_id=run.agent_id, output=output)


def is_trusted(principal: Principal) -> bool:
    return principal.has_role(Role.APPROVER)


async def create(
    *, session: AsyncSession, settings: Settings, feedback_in: FeedbackCreate, principal: Principal
) -> Feedback:
    target = await resolve_target(
        session=session, target_type=feedback_in.target_type, target_id=feedback_in.target_id, reader=principal
    )
    trusted = is_trusted(principal)
    kind = feedback_in.kind
    status = FeedbackStatus.RECORDED
    if kind is FeedbackKind.CORRECTION:
        status = FeedbackStatus.ACCEPTED if trusted else FeedbackStatus.PENDING
    row = Feedback(
        agent_id=target.agent_id,
        target_type=feedback_in.target_type.value,
        target_id=feedback_in.target_id,
        user_id=principal.user_id,
        kind=kind.value,
        thumbs=feedback_in.thumbs,
        rating=feedback_in.rating,
        original=target.output if kind is FeedbackKind.CORRECTION else None,
        corrected=feedback_in.corrected,
        comment=feedback_in.comment,
        trusted=trusted,
        status=status.value,
        confidence_delta=0.0,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    if kind is FeedbackKind.CORRECTION and trusted:
        await _move(session, settings, row, settings.confidence_correction_trusted, "correction by a trusted reviewer")
    elif (
        kind is FeedbackKind.RATING
        and trusted
        and (feedback_in.rating or 0) >= 4
        and await _rating_rewards_today(session, row) < settings.feedback_rating_daily_cap
    ):
        await _move(session, settings, row, settings.confidence_rating_trusted, f"rated {row.rating} by a reviewer")
    await audit.record(
        session=session,
        actor=audit.Actor.user(principal.user_id),
        action="feedback.create",
        resource_type="feedback",
        resource_id=row.id,
        decision=row.status,
        details={
            "kind": row.kind,
            "agent_id": row.agent_id,
            "target_type": row.target_type,
            "target_id": row.target_id,
        },
    )
    payload = {
        "id": row.id,
        "agent_id": row.agent_id,
        "kind": row.kind,
        "target_type": row.target_type,
        "target_id": row.target_id,
        "rating": row.rating,
        "thumbs": row.thumbs,
        "status": row.status,
    }
    on_commit(session, lambda: get_bus().publish_soon(FEEDBACK_CREATED, payload))
    return row


async def _move(session: AsyncSession, settings: Settings, row: Feedback, delta: float, reason: str) -> None:
    event = await agents_service.record_confidence(
        session=session,
        agent_id=row.agent_id,
        delta=delta,
        reason=f"feedback: {reason}",
        source="feedback",
        source_id=row.id,
        settings=settings,
    )
    row.confidence_delta = event.delta


async def _rating_rewards_today(session: AsyncSession, row: Feedback) -> int:
    """High ratings by this reviewer for this agent today that already moved confidence."""
    day_start = row.created_at.replace(hour=0, minute=0, second=0, microsecond=0)
    stmt = select(func.count(Feedback.id)).where(
        Feedback.agent_id == row.agent_id,
        Feedback.user_id == row.user_id,
        Feedback.kind == FeedbackKind.RATING.value,
        Feedback.confidence_delta > 0,
        Feedback.created_at >= day_start,
        Feedback.id != row.id,
    )
    return int((await session.scalar(stmt)) or 0)


async def get(*, session: AsyncSession, feedback_id: str) -> Feedback:
    row = await session.get(Feedback, feedback_id)
    if row is None:
        raise NotFound(f"No feedback with id {feedback_id!r}.", code="FEEDBACK_NOT_FOUND", details={"id": feedback_id})
    return row


async def list_feedback(
    *,
    session: AsyncSession,
    limit: int,
    cursor: str | None,
    agent_id: str | None = None,
    status: FeedbackStatus | None = None,
    kind: FeedbackKind | None = None,
    target_type: TargetType | None = None,
    target_id: str | None = None,
) -> tuple[list[Feedback], str | None]:
    stmt = select(Feedback)
    if agent_id is not None:
        stmt = stmt.where(Feedback.agent_id == agent_id)
    if status is not None:
        stmt = stmt.where(Feedback.status == status.value)
    if kind is not None:
        stmt = stmt.where(Feedback.kind == kind.value)
    if target_type is not None:
        stmt = stmt.where(Feedback.target_type == target_type.value)
    if target_id is not None:
        stmt = stmt.where(Feedback.target_id == target_id)
    return await paginate(session, stmt, id_column=Feedback.id, limit=limit, cursor=cursor)


async def review(
    *,
    session: AsyncSession,
    settings: Settings,
    feedback_ids: list[str],
    accept: bool,
    reason: str,
    reviewer: Principal,
) -> list[Feedback]:
    """Accept or reject pending corrections, all or none (one already decided -> conflict, nothing changes)."""
    rows = [await get(session=session, feedback_id=feedback_id) for feedback_id in dict.fromkeys(feedback_ids)]
    for row in rows:
        if row.status != FeedbackStatus.PENDING.value:
            raise Conflict(
                f"Feedback {row.id} is not a pending correction (it is {row.status}).",
                code="FEEDBACK_NOT_PENDING",
                details={"id": row.id, "status": row.status},
            )
    now = utcnow()
    for row in rows:
        row.status = (FeedbackStatus.ACCEPTED if accept else FeedbackStatus.REJECTED).value
        row.reviewed_by = reviewer.user_id
        row.review_reason = reason or None
        row.reviewed_at = now
        if accept:
            await _move(session, settings, row, settings.confidence_correction_untrusted, "correction, reviewed")
        await audit.record(
            session=session,
            actor=audit.Actor.user(reviewer.user_id),
            action="feedback.review",
            resource_type="feedback",
            resource_id=row.id,
            decision=row.status,
            reason=reason or None,
            details={"agent_id": row.agent_id},
        )
    await session.flush()
    return rows


async def agent_stats(
    *, session: AsyncSession, agent_id: str, days: int, now: datetime | None = None
) -> AgentFeedbackStats:
    agent = await agents_service.get_agent(session=session, agent_id=agent_id)
    since = (now or utcnow()) - timedelta(days=days)
    rows = list(
        (
            await session.scalars(
                select(Feedback)
                .where(Feedback.agent_id == agent.id, Feedback.created_at >= since)
                .order_by(Feedback.id)
            )
        ).all()
    )
    by_kind: dict[str, int] = {kind.value: 0 for kind in FeedbackKind}
    per_day: dict[str, list[Feedback]] = {}
    for row in rows:
        by_kind[row.kind] += 1
        per_day.setdefault(row.created_at.date().isoformat(), []).append(row)
    ratings = [row.rating for row in rows if row.rating is not None]
    runs = await chat_service.count_executions(session=session, agent_id=agent.id, since=since)
    corrections = by_kind[FeedbackKind.CORRECTION.value]
    trend = []
    for day in sorted(per_day):
        day_rows = per_day[day]
        day_ratings = [row.rating for row in day_rows if row.rating is not None]
        trend.append(
            DayStats(
                day=day,
                count=len(day_rows),
                mean_rating=sum(day_ratings) / len(day_ratings) if day_ratings else None,
                corrections=sum(1 for row in day_rows if row.kind == FeedbackKind.CORRECTION.value),
            )
        )
    return AgentFeedbackStats(
        agent_id=agent.id,
        days=days,
        count=len(rows),
        by_kind=by_kind,
        thumbs_up=sum(1 for row in rows if row.thumbs == 1),
        thumbs_down=sum(1 for row in rows if row.thumbs == -1),
        mean_rating=sum(ratings) / len(ratings) if ratings else None,
        correction_rate=corrections / runs if runs else None,
        pending_corrections=sum(1 for row in rows if row.status == FeedbackStatus.PENDING.value),
        trend=trend,
    )


async def feedback_for_executions(*, session: AsyncSession, execution_ids: list[str]) -> list[Feedback]:
    if not execution_ids:
        return []
    stmt = select(Feedback).where(
        Feedback.target_type == TargetType.EXECUTION.value, Feedback.target_id.in_(execution_ids)
    )
    return list((await session.scalars(stmt)).all())


def score_of(row: Feedback) -> float | None:
    """RULES.md's feedback score: thumbs +1 / -1, a rating r -> (r - 3) / 2; corrections and comments none."""
    if row.kind == FeedbackKind.THUMBS.value and row.thumbs is not None:
        return float(row.thumbs)
    if row.kind == FeedbackKind.RATING.value and row.rating is not None:
        return (row.rating - 3) / 2
    return None


async def scores_for(*, session: AsyncSession, execution_ids: list[str], step_ids: list[str]) -> dict[str, list[float]]:
    """The feedback scores given to these agent runs (on the run itself or one of its messages) and these
    workflow steps, by execution or step id; a target without a scored feedback is left out."""
    messages = await chat_service.messages_of_executions(session=session, execution_ids=execution_ids)
    targets = [
        (TargetType.EXECUTION, execution_ids),
        (TargetType.MESSAGE, list(messages)),
        (TargetType.WORKFLOW_STEP, step_ids),
    ]
    conditions = [and_(Feedback.target_type == kind.value, Feedback.target_id.in_(ids)) for kind, ids in targets if ids]
    if not conditions:
        return {}
    stmt = select(Feedback).where(
        Feedback.kind.in_((FeedbackKind.THUMBS.value, FeedbackKind.RATING.value)), or_(*conditions)
    )
    scores: dict[str, list[float]] = {}
    for row in (await session.scalars(stmt)).all():
        score = score_of(row)
        if score is not None:
            target = (
                messages.get(row.target_id, row.target_id)
                if row.target_type == TargetType.MESSAGE.value
                else row.target_id
            )
            scores.setdefault(target, []).append(score)
    return scores
