"""Supervised runs: every step streamed live; pause, resume, correct and terminate act before the next step.

Commands are written to the session row, so they reach the runner whichever process received
them; the runner re-reads the row before each step (and is woken early by the bus). A run waits
in the supervised queue until a supervisor connects (policy `wait`) or runs at once and notifies
(policy `run-and-notify`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.agents import service as agents_service
from atom.audit import service as audit
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database, on_commit, rows_affected
from atom.errors import Conflict, InvalidInput, NotFound
from atom.events.bus import get_bus
from atom.governance.policy import GovernanceContext, TriggerKind
from atom.observability.logging import get_logger
from atom.pagination import paginate
from atom.training.executor import RunResult, StepOutcome, executor_for
from atom.training.models import SupervisionSession, SupervisionStatus
from atom.training.plan import PlanStep

log = get_logger("atom.supervision")
RECHECK_S = 0.25
_ACTIVE = (SupervisionStatus.QUEUED.value, SupervisionStatus.RUNNING.value, SupervisionStatus.PAUSED.value)


class Command(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    CORRECT = "correct"
    TERMINATE = "terminate"


def topic(session_id: str) -> str:
    return f"supervision.{session_id}"


def rating_delta(rating: int, interventions: int, settings: Settings) -> float:
    """RULES: max(0, (r - 1) / DIVISOR - min(CAP, PENALTY * n)), each an ATOM_CONFIDENCE_SUPERVISION_* setting."""
    penalty = min(
        settings.confidence_supervision_penalty_cap,
        settings.confidence_supervision_intervention_penalty * interventions,
    )
    return max(0.0, (rating - 1) / settings.confidence_supervision_rating_divisor - penalty)


_connected: dict[str, int] = {}
_runs: set[asyncio.Task[None]] = set()


def supervisor_connected(session_id: str) -> bool:
    return _connected.get(session_id, 0) > 0


@contextlib.asynccontextmanager
async def supervising(db: Database, settings: Settings, session_id: str) -> AsyncIterator[None]:
    """While a supervisor watches (WebSocket or SSE): a queued run starts."""
    _connected[session_id] = _connected.get(session_id, 0) + 1
    try:
        await start_if_queued(db=db, settings=settings, session_id=session_id)
        yield
    finally:
        _connected[session_id] -= 1
        if _connected[session_id] <= 0:
            _connected.pop(session_id, None)


async def create(
    *, session: AsyncSession, agent_id: str, plan: list[dict[str, Any]], source: str
) -> SupervisionSession:
    row = SupervisionSession(
        agent_id=agent_id,
        status=SupervisionStatus.QUEUED.value,
        source=source,
        plan=plan,
        steps=[],
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return row


async def get(*, session: AsyncSession, session_id: str) -> SupervisionSession:
    row = await session.get(SupervisionSession, session_id, populate_existing=True)
    if row is None:
        raise NotFound(f"No supervision session {session_id!r}.", code="SUPERVISION_NOT_FOUND")
    return row


async def list_sessions(
    *, session: AsyncSession, status: SupervisionStatus | None, limit: int, cursor: str | None
) -> tuple[list[SupervisionSession], str | None]:
    stmt = select(SupervisionSession)
    if status is not None:
        stmt = stmt.where(SupervisionSession.status == status.value)
    return await paginate(session, stmt, id_column=SupervisionSession.id, limit=limit, cursor=cursor)


def _publish_after_commit(session: AsyncSession, session_id: str, event: dict[str, Any]) -> None:
    def send() -> None:
        with contextlib.suppress(RuntimeError):
            task = asyncio.get_running_loop().create_task(get_bus().publish(topic(session_id), event))
            _runs.add(task)
            task.add_done_callback(_runs.discard)

    on_commit(session, send)


async def command(
    *, session: AsyncSession, session_id: str, cmd: Command, params: dict[str, Any] | None, actor: audit.Actor
) -> SupervisionSession:
    row = await get(session=session, session_id=session_id)
    status = SupervisionStatus(row.status)
    if status.finished:
        raise Conflict(f"The session is {status.value}; commands no longer apply.", code="SUPERVISION_FINISHED")
    values: dict[str, Any] = {}
    counts = True
    if cmd is Command.PAUSE:
        values["status"] = SupervisionStatus.PAUSED.value
    elif cmd is Command.RESUME:
        counts = False
        values["status"] = (
            SupervisionStatus.RUNNING.value if row.started_at is not None else SupervisionStatus.QUEUED.value
        )
    elif cmd is Command.CORRECT:
        if not params:
            raise InvalidInput("A correction needs the next step's params.", details={"field": "params"})
        values["pending_correction"] = {"params": params}
    else:
        values.update(status=SupervisionStatus.TERMINATED.value, finished_at=utcnow())
    if counts:
        values["interventions"] = SupervisionSession.interventions + 1
    result = await session.execute(
        update(SupervisionSession)
        .where(SupervisionSession.id == session_id, SupervisionSession.status.in_(_ACTIVE))
        .values(**values)
    )
    if rows_affected(result) != 1:
        raise Conflict("The session finished meanwhile; commands no longer apply.", code="SUPERVISION_FINISHED")
    await audit.record(
        session=session,
        actor=actor,
        action=f"supervision.{cmd.value}",
        resource_type="supervision",
        resource_id=session_id,
        decision="done",
        details={"params": params} if params else {},
    )
    _publish_after_commit(session, session_id, {"type": "command", "command": cmd.value, "params": params})
    return await get(session=session, session_id=session_id)


async def rate(
    *, session: AsyncSession, session_id: str, rating: int, actor: audit.Actor, settings: Settings
) -> SupervisionSession:
    row = await get(session=session, session_id=session_id)
    if not SupervisionStatus(row.status).finished:
        raise Conflict("Rate a session once it has finished.", code="SUPERVISION_NOT_FINISHED")
    result = await session.execute(
        update(SupervisionSession)
        .where(SupervisionSession.id == session_id, SupervisionSession.rating.is_(None))
        .values(rating=rating)
    )
    if rows_affected(result) != 1:
        raise Conflict("This session is already rated.", code="SUPERVISION_RATED")
    delta = rating_delta(rating, row.interventions, settings)
    await agents_service.record_confidence(
        session=session,
        agent_id=row.agent_id,
        delta=delta,
        reason=f"supervision rated {rating}/5 with {row.interventions} interventions",
        source="supervision",
        source_id=session_id,
        settings=settings,
    )
    await audit.record(
        session=session,
        actor=actor,
        action="supervision.rate",
        resource_type="supervision",
        resource_id=session_id,
        decision="done",
        details={"rating": rating, "interventions": row.interventions, "confidence_delta": delta},
    )
    return await get(session=session, session_id=session_id)


async def start_if_queued(*, db: Database, settings: Settings, session_id: str, notify: bool = False) -> bool:
    """Claim a queued session and run it in the background; False when it was not queued."""
    async with db.session_scope() as session:
        claimed = await session.execute(
            update(SupervisionSession)
            .where(
                SupervisionSession.id == session_id,
                SupervisionSession.status == SupervisionStatus.QUEUED.value,
            )
            .values(status=SupervisionStatus.RUNNING.value, started_at=utcnow(), notified=notify)
        )
        if rows_affected(claimed) != 1:
            return False
        row = await get(session=session, session_id=session_id)
        if notify:
            await audit.record(
                session=session,
                actor=audit.Actor.system(),
                action="supervision.notify",
                resource_type="supervision",
                resource_id=session_id,
                decision="run-and-notify",
                reason="no supervisor connected; running and notifying per ATOM_SUPERVISED_QUEUE_POLICY",
            )
        agent_id, plan = row.agent_id, [PlanStep.model_validate(s) for s in row.plan]
    await get_bus().publish(topic(session_id), {"type": "started", "notify": notify, "steps": len(plan)})
    task = asyncio.create_task(_run(db, settings, session_id, agent_id, plan), name=f"supervised-{session_id}")
    _runs.add(task)
    task.add_done_callback(_runs.discard)
    return True


async def wait_for_run(session_id: str) -> None:
    """Tests and shutdown: wait until this process's runner for the session has finished."""
    for task in list(_runs):
        if task.get_name() == f"supervised-{session_id}":
            await task


class _Hooks:
    def __init__(self, db: Database, session_id: str) -> None:
        self.db = db
        self.session_id = session_id
        self.wake = asyncio.Event()

    def _on_event(self, _payload: dict[str, Any]) -> None:
        self.wake.set()

    async def before_step(self, index: int, step: PlanStep) -> PlanStep | None:
        announced_pause = False
        while True:
            async with self.db.session_scope() as session:
                row = await get(session=session, session_id=self.session_id)
                if row.status == SupervisionStatus.TERMINATED.value:
                    return None
                if row.status != SupervisionStatus.PAUSED.value:
                    if row.pending_correction is not None:
                        step = step.model_copy(update={"params": dict(row.pending_correction.get("params") or {})})
                        row.pending_correction = None
                        await get_bus().publish(
                            topic(self.session_id), {"type": "corrected", "index": index, "params": step.params}
                        )
                    row.next_step = index
                    await get_bus().publish(
                        topic(self.session_id),
                        {"type": "step_started", "index": index, "action": step.action, "params": step.params},
                    )
                    return step
            if not announced_pause:
                await get_bus().publish(topic(self.session_id), {"type": "paused", "before_step": index})
                announced_pause = True
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=RECHECK_S)

    async def after_step(self, outcome: StepOutcome) -> None:
        async with self.db.session_scope() as session:
            row = await get(session=session, session_id=self.session_id)
            row.steps = [*row.steps, outcome.as_dict()]
            row.next_step = outcome.index + 1
        await get_bus().publish(topic(self.session_id), {"type": "step_finished", **outcome.as_dict()})


async def _run(db: Database, settings: Settings, session_id: str, agent_id: str, plan: list[PlanStep]) -> None:
    hooks = _Hooks(db, session_id)
    get_bus().on(topic(session_id), hooks._on_event)
    context = GovernanceContext(trigger=TriggerKind.AUTOMATED, source="supervision", supervision_session_id=session_id)
    try:
        result = await executor_for(plan).run(
            db=db, settings=settings, agent_id=agent_id, steps=plan, context=context, hooks=hooks
        )
    except Exception as exc:
        log.error("supervised run failed", session_id=session_id, exc_info=exc)
        result = RunResult(ok=False, error=f"{type(exc).__name__}: {exc}")
    final = (
        SupervisionStatus.TERMINATED
        if result.terminated
        else (SupervisionStatus.COMPLETED if result.ok else SupervisionStatus.FAILED)
    )
    async with db.session_scope() as session:
        await session.execute(
            update(SupervisionSession)
            .where(SupervisionSession.id == session_id, SupervisionSession.status.in_(_ACTIVE))
            .values(status=final.value, finished_at=utcnow(), error=result.error)
        )
        await audit.record(
            session=session,
            actor=audit.Actor.agent(agent_id),
            action="supervision.finish",
            resource_type="supervision",
            resource_id=session_id,
            decision=final.value,
            reason=result.error,
        )
    await get_bus().publish(topic(session_id), {"type": "finished", "status": final.value, "error": result.error})
