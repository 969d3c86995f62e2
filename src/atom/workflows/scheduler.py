"""The scheduler loop, run in every engine process (serve and each worker); safe to run many times over.

Each tick:
- cron: triggers whose next fire time has passed. A conditional UPDATE moves `next_fire_at` forward
  only if it still holds the value this process read, so exactly one process fires each time, and
  the fire row's unique key (`cron:<time>`) makes that doubly sure.
- waits: wait steps whose time has come continue (the run lock makes that happen once).
- approvals: approval steps whose proposal was rejected or expired in the proposals list fail.
- recovery: steps queued or claimed longer than the visibility timeout ago (a lost message, a worker
  that died) are dispatched again; the conditional claim lets one delivery run them.

At start (`reclaim_at_start`, called by workflows/app.py before the first tick) a process does not wait
for those timeouts where it can tell better: a step held by a dead process of this host (holders.py:
its own earlier incarnation after a crash) has its lease ended and is dispatched again at once, and
with the embedded executor the queued steps, which lived in a pool's memory, are dispatched again too.
- event topics: event triggers are subscribed on the event bus.

`tick(now)` is public so tests drive it with a controllable clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.config import WorkflowExecutorMode
from atom.db.session import rows_affected
from atom.events.bus import get_bus
from atom.observability.logging import get_logger
from atom.workflows import cron, flows, holders, interventions, machine
from atom.workflows.definition import MissedPolicy
from atom.workflows.models import RunStatus, StepRun, StepStatus, WorkflowRun, WorkflowTrigger

if TYPE_CHECKING:
    from atom.workflows.runner import StepRunner

log = get_logger("atom.workflows.scheduler")
BATCH = 200
APPROVAL_CHECK_EVERY_S = 2.0
TOPIC_REFRESH_EVERY_S = 5.0


@dataclass
class TickReport:
    fired: list[str] = field(default_factory=list)  # trigger ids that started something
    skipped: list[str] = field(default_factory=list)  # trigger ids whose missed fires were dropped
    waits_released: int = 0
    approvals_settled: int = 0
    redispatched: int = 0


async def reclaim_at_start(runner: StepRunner, *, limit: int = 10_000) -> int:
    """Steps whose holder is known dead (and, embedded, queued ones) dispatched again now. Returns how many."""
    now = runner.clock()
    embedded = runner.settings.workflow_executor is WorkflowExecutorMode.EMBEDDED
    held_here = and_(StepRun.status == StepStatus.RUNNING.value, StepRun.worker.like(f"{holders.host()}:%"))
    queued = and_(StepRun.status == StepStatus.QUEUED.value, or_(StepRun.due_at.is_(None), StepRun.due_at <= now))
    async with runner.db.session_scope() as session:
        rows = (
            await session.execute(
                select(StepRun.id, StepRun.run_id, StepRun.dispatches, StepRun.status, StepRun.worker)
                .join(WorkflowRun, WorkflowRun.id == StepRun.run_id)
                .where(
                    WorkflowRun.status == RunStatus.RUNNING.value,
                    WorkflowRun.mode == "pool",
                    or_(held_here, queued) if embedded else held_here,
                )
                .limit(limit)
            )
        ).all()
    jobs: list[machine.QueuedStep] = []
    for step_id, run_id, dispatches, status, worker in rows:
        if status == StepStatus.RUNNING.value and (worker == runner.worker_id or not holders.is_dead(worker)):
            continue
        values: dict[str, Any] = {"dispatches": dispatches + 1, "queued_at": now}
        condition = [StepRun.id == step_id, StepRun.dispatches == dispatches, StepRun.status == status]
        if status == StepStatus.RUNNING.value:
            values["lease_expires_at"] = now - timedelta(microseconds=1)  # the claim takes an expired lease over
            condition.append(StepRun.worker == worker)
        async with runner.db.session_scope() as session:
            bumped = await session.execute(update(StepRun).where(*condition).values(**values))
        if rows_affected(bumped) == 1:
            jobs.append(machine.QueuedStep(step_id, run_id, dispatches + 1))
    if jobs:
        log.info("reclaimed workflow steps at start", count=len(jobs), worker=runner.worker_id)
        await runner.dispatcher.dispatch(jobs)
    return len(jobs)


class Scheduler:
    def __init__(self, runner: StepRunner) -> None:
        self.runner = runner
        self._task: asyncio.Task[None] | None = None
        self._topics: set[str] = set()
        self._last_approval_check = 0.0
        self._last_topic_refresh = 0.0

    async def start(self) -> None:
        await self.refresh_event_topics()
        self._task = asyncio.create_task(self._loop(), name="atom-workflow-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        interval = self.runner.settings.workflow_scheduler_interval_s
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("workflow scheduler tick failed")
            await asyncio.sleep(interval)

    async def tick(self, now: datetime | None = None) -> TickReport:
        now = now or self.runner.clock()
        report = TickReport()
        await self.fire_due_schedules(now, report)
        await self.release_due_waits(now, report)
        monotonic = asyncio.get_running_loop().time()
        if monotonic - self._last_approval_check >= APPROVAL_CHECK_EVERY_S:
            self._last_approval_check = monotonic
            await self.settle_approvals(report)
        await self.recover_stalled(now, report)
        if monotonic - self._last_topic_refresh >= TOPIC_REFRESH_EVERY_S:
            await self.refresh_event_topics()
        return report

    async def fire_due_schedules(self, now: datetime, report: TickReport) -> None:
        runner = self.runner
        async with runner.db.session_scope() as session:
            due = list(
                (
                    await session.scalars(
                        select(WorkflowTrigger)
                        .where(
                            WorkflowTrigger.kind == "schedule",
                            WorkflowTrigger.enabled.is_(True),
                            WorkflowTrigger.next_fire_at <= now,
                        )
                        .limit(BATCH)
                    )
                ).all()
            )
        grace = timedelta(seconds=runner.settings.workflow_cron_grace_s)
        for trigger in due:
            assert trigger.next_fire_at is not None
            config = trigger.config
            plan = cron.plan_fires(
                str(config["cron"]),
                str(config.get("timezone", "UTC")),
                due_since=trigger.next_fire_at,
                now=now,
                grace=grace,
                policy=MissedPolicy(config.get("missed", MissedPolicy.SKIP.value)),
            )
            async with runner.db.session_scope() as session:
                claimed = await session.execute(
                    update(WorkflowTrigger)
                    .where(WorkflowTrigger.id == trigger.id, WorkflowTrigger.next_fire_at == trigger.next_fire_at)
                    .values(next_fire_at=plan.next_fire_at, last_fired_at=now)
                )
                won = rows_affected(claimed) == 1
            if not won:
                continue  # another process took this fire
            if plan.fire_at is not None:
                result = await flows.fire_schedule(runner, trigger, fire_at=plan.fire_at, missed=plan.missed, now=now)
                if result is not None:
                    report.fired.append(trigger.id)
            elif plan.skipped and plan.last_missed is not None:
                await flows.record_skipped_fires(runner, trigger, last_missed=plan.last_missed, missed=plan.missed)
                report.skipped.append(trigger.id)

    async def release_due_waits(self, now: datetime, report: TickReport) -> None:
        runner = self.runner
        async with runner.db.session_scope() as session:
            rows = (
                await session.execute(
                    select(StepRun.id, StepRun.run_id, WorkflowRun.workflow_id, WorkflowRun.version, StepRun.due_at)
                    .join(WorkflowRun, WorkflowRun.id == StepRun.run_id)
                    .where(StepRun.status == StepStatus.WAITING.value, StepRun.kind == "wait", StepRun.due_at <= now)
                    .limit(BATCH)
                )
            ).all()
        for step_id, run_id, workflow_id, version, due_at in rows:
            release = self._release(step_id, run_id, workflow_id, version, due_at or now, now)
            if await runner.transact(release) is not None:
                report.waits_released += 1

    def _release(
        self, step_id: str, run_id: str, workflow_id: str, version: int, due_at: datetime, now: datetime
    ) -> Callable[[AsyncSession], Awaitable[machine.Advance | None]]:
        runner = self.runner

        async def body(session: AsyncSession) -> machine.Advance | None:
            definition = await runner.definition(session, workflow_id, version)
            return await interventions.resolve_waiting(
                session,
                run_id=run_id,
                step_run_id=step_id,
                definition=definition,
                approved=True,
                output={"waited_until": due_at.isoformat()},
                error=None,
                code=None,
                now=now,
                settings=runner.settings,
            )

        return body

    async def settle_approvals(self, report: TickReport) -> None:
        runner = self.runner
        async with runner.db.session_scope() as session:
            steps = list(
                (
                    await session.scalars(
                        select(StepRun)
                        .where(
                            StepRun.status == StepStatus.WAITING.value,
                            StepRun.kind == "approval",
                            StepRun.proposal_id.is_not(None),
                        )
                        .limit(BATCH)
                    )
                ).all()
            )
        for step in steps:
            before = step.status
            await flows.settle_approval(runner, step)
            async with runner.db.session_scope() as session:
                current = await session.get(StepRun, step.id)
            if current is not None and current.status != before:
                report.approvals_settled += 1

    async def recover_stalled(self, now: datetime, report: TickReport) -> None:
        runner = self.runner
        stale_before = now - timedelta(seconds=runner.settings.workflow_visibility_timeout_s)
        async with runner.db.session_scope() as session:
            rows = (
                await session.execute(
                    select(StepRun.id, StepRun.run_id, StepRun.dispatches)
                    .join(WorkflowRun, WorkflowRun.id == StepRun.run_id)
                    .where(
                        WorkflowRun.status == RunStatus.RUNNING.value,
                        WorkflowRun.mode == "pool",
                        or_(
                            and_(
                                StepRun.status == StepStatus.QUEUED.value,
                                func.coalesce(StepRun.due_at, StepRun.queued_at) < stale_before,
                            ),
                            and_(StepRun.status == StepStatus.RUNNING.value, StepRun.lease_expires_at < now),
                        ),
                    )
                    .limit(BATCH)
                )
            ).all()
        jobs = []
        for step_id, run_id, dispatches in rows:
            async with runner.db.session_scope() as session:
                bumped = await session.execute(
                    update(StepRun)
                    .where(StepRun.id == step_id, StepRun.dispatches == dispatches)
                    .values(dispatches=dispatches + 1, queued_at=now)
                )
            if rows_affected(bumped) == 1:
                jobs.append(machine.QueuedStep(step_id, run_id, dispatches + 1))
        if jobs:
            log.info("redispatching stalled workflow steps", count=len(jobs))
            await runner.dispatcher.dispatch(jobs)
            report.redispatched += len(jobs)

    async def refresh_event_topics(self) -> None:
        self._last_topic_refresh = asyncio.get_running_loop().time()
        async with self.runner.db.session_scope() as session:
            topics = set(
                (
                    await session.scalars(
                        select(WorkflowTrigger.event_topic)
                        .where(WorkflowTrigger.kind == "event", WorkflowTrigger.enabled.is_(True))
                        .distinct()
                    )
                ).all()
            )
        for topic in topics - self._topics:
            if topic:
                self.subscribe(topic)

    def subscribe(self, topic: str) -> None:
        if topic in self._topics:
            return
        self._topics.add(topic)
        runner = self.runner

        def on_event(payload: dict[str, Any]) -> None:
            if runner.http.is_closed:  # listeners outlive a stopped engine (they carry over to new buses)
                return
            runner.spawn(flows.fire_event(runner, topic, payload), name=f"workflow-event-{topic}")

        get_bus().on(topic, on_event)
