"""`atom-os worker`: a process that runs workflow steps from the PostgreSQL job queue (scale-out).

The API (`atom-os serve` with ATOM_WORKFLOW_EXECUTOR=queue) defers each ready step as a Procrastinate
job whose only argument is the step run id (`workflows/jobqueue.py`); any worker takes it, and
`StepRunner.run_step` claims it in the database with a conditional UPDATE, runs it and records the
outcome. Every worker also runs the scheduler loop (cron fires, waits, approvals, recovery of stalled
steps); its conditional updates make each of those happen once however many processes run it.

Delivery is at-least-once (docs/scale-out.md):
- the scheduler of any live process re-dispatches a step whose lease (ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S)
  has expired, and the jobs a dead worker held go back to the queue once its heartbeat stops;
- the claim lets exactly one delivery run a step at a time, the record is conditional on still
  owning the attempt, and a re-run sends the same idempotency key, so a side effect that completed
  is not repeated by the services that honour the key.

SIGTERM/SIGINT: stop taking jobs and stop the scheduler, let running steps finish for up to the
shutdown grace, then cancel the rest and release their leases so another worker takes them over at
once instead of after the visibility timeout.

Refused configurations (`check_worker_settings`): no ATOM_REDIS_URL (the event bus between the
processes); ATOM_WORKFLOW_EXECUTOR not `queue`; SQLite (a worker is a separate process, usually on
another machine; SQLite is the single-process embedded default: its file lock serializes every writer
and does not work across machines or network file systems); a visibility timeout not longer than the
job timeout (a step still running would be handed to a second worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from atom import heap
from atom.config import Settings, WorkflowExecutorMode
from atom.db.session import Database, rows_affected
from atom.errors import ConfigurationError
from atom.events.bus import build_bus, reset_bus, set_bus
from atom.observability.logging import get_logger
from atom.workflows import app as workflows_app
from atom.workflows.jobqueue import QueueConsumer, QueueDispatcher
from atom.workflows.models import StepRun, StepStatus
from atom.workflows.runner import StepRunner

log = get_logger("atom.workflows.worker")
DEFAULT_POLL_INTERVAL_S = 0.5
DEFAULT_SHUTDOWN_GRACE_S = 30.0
STATS_EVERY_S = 60.0


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int
    scheduler: bool = True
    poll_interval_s: float = DEFAULT_POLL_INTERVAL_S
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S
    worker_id: str | None = None


def check_worker_settings(settings: Settings) -> None:
    """Refuse, with one clear line, a configuration a worker cannot run safely with."""
    if not settings.redis_url:
        raise ConfigurationError(
            "atom-os worker shares events with the API servers over Redis (a cancel reaches the worker running "
            "the step, live pages see the workers' progress), and no Redis is configured.",
            setting="ATOM_REDIS_URL",
            fix="set ATOM_REDIS_URL=redis://HOST:6379/0 (the same on the API servers and every worker), "
            "or run without workers: the default ATOM_WORKFLOW_EXECUTOR=embedded runs steps inside atom-os serve.",
        )
    if settings.workflow_executor is WorkflowExecutorMode.EMBEDDED:
        raise ConfigurationError(
            "atom-os worker runs the steps the API puts in the job queue, but ATOM_WORKFLOW_EXECUTOR is "
            f"{settings.workflow_executor.value!r}, so the API runs them itself.",
            setting="ATOM_WORKFLOW_EXECUTOR",
            fix="set ATOM_WORKFLOW_EXECUTOR=queue on the API servers and on every worker.",
        )
    if settings.is_sqlite:
        raise ConfigurationError(
            "atom-os worker needs a database shared by several processes and machines; SQLite is the "
            "single-process embedded default.",
            setting="ATOM_DATABASE_URL",
            fix="set ATOM_DATABASE_URL=postgresql://USER@HOST:5432/atom (the same on the API servers and every "
            "worker), or run without workers (ATOM_WORKFLOW_EXECUTOR=embedded).",
        )
    if settings.workflow_visibility_timeout_s <= settings.workflow_job_timeout_s:
        raise ConfigurationError(
            f"the visibility timeout ({settings.workflow_visibility_timeout_s:g} s) must be longer than the "
            f"job timeout ({settings.workflow_job_timeout_s:g} s), or a step still running would be handed "
            "to a second worker.",
            setting="ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S",
            fix="raise ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S above ATOM_WORKFLOW_JOB_TIMEOUT_S (for example by 30 s).",
        )


async def check_redis(redis_url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    except Exception as exc:
        raise ConfigurationError(
            f"cannot reach Redis ({type(exc).__name__}).",
            setting="ATOM_REDIS_URL",
            fix="check the URL and that Redis is running and reachable from this machine.",
        ) from exc
    finally:
        await client.aclose()


class WorkflowWorker:
    """One worker process: a queue consumer, a step runner, a scheduler."""

    def __init__(self, settings: Settings, options: WorkerOptions, *, db: Database | None = None) -> None:
        check_worker_settings(settings)
        assert settings.redis_url is not None
        self.settings = settings
        self.options = options
        self.db = db or Database(settings, pre_ping=False)
        self._owns_db = db is None
        self.runner = StepRunner(
            db=self.db,
            settings=settings,
            dispatcher=QueueDispatcher(settings),
            worker_id=options.worker_id,
        )
        # Chains (a step going on with the run's next one) end when stopping, and before the lease would run out.
        self.runner.may_continue = lambda: not self.stopping
        self.runner.chain_budget_s = settings.workflow_visibility_timeout_s
        self.stopping = False
        self.steps_run = 0
        self.deliveries_skipped = 0
        self.steps_released = 0
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[Any]] = set()
        self.consumer = QueueConsumer(
            settings,
            concurrency=options.concurrency,
            poll_interval_s=options.poll_interval_s,
            grace_s=options.shutdown_grace_s,
        )
        self._started: workflows_app.Engine | None = None

    @property
    def worker_id(self) -> str:
        return self.runner.worker_id

    async def run(self, step_run_id: str) -> None:
        held = [step_run_id]  # the step this job holds now: it may go on with the run's next steps
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            outcome = await self.runner.run_step(step_run_id, holding=held.append)
        except asyncio.CancelledError:
            if self.stopping:
                await asyncio.shield(self._release(held[-1]))
            raise
        finally:
            if task is not None:
                self._running.discard(task)
        if outcome is None:
            self.deliveries_skipped += 1  # another delivery holds or finished the step, or it is not due yet
        else:
            self.steps_run += 1

    async def _release(self, step_run_id: str) -> None:
        """A step this process holds and will not finish: expire its lease so it is taken over now."""
        try:
            async with self.db.session_scope() as session:
                released = await session.execute(
                    update(StepRun)
                    .where(
                        StepRun.id == step_run_id,
                        StepRun.status == StepStatus.RUNNING.value,
                        StepRun.worker == self.worker_id,
                    )
                    .values(lease_expires_at=self.runner.clock() - timedelta(microseconds=1))
                    .execution_options(synchronize_session=False)
                )
            if rows_affected(released) == 1:
                self.steps_released += 1
                log.info("released an unfinished workflow step for another worker", step_run_id=step_run_id)
        except Exception:  # the lease then simply expires on its own
            log.exception("could not release a workflow step", step_run_id=step_run_id)

    def request_stop(self, reason: str = "requested") -> None:
        if not self._stop.is_set():
            log.info("workflow worker stopping", worker=self.worker_id, reason=reason)
            self._stop.set()

    async def serve(self, *, install_signal_handlers: bool = True) -> None:
        """Run until SIGTERM/SIGINT (or `request_stop`), then shut down gracefully."""
        assert self.settings.redis_url is not None
        loop = asyncio.get_running_loop()
        if install_signal_handlers:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
        bus = build_bus(self.settings)
        await bus.start()
        set_bus(bus)
        main: asyncio.Task[None] | None = None
        try:
            self._started = await workflows_app.start(self.runner, scheduler=self.options.scheduler, group_commit=True)
            main = await self.consumer.start(self.run)
            heap.settle()
            log.info(
                "workflow worker ready",
                worker=self.worker_id,
                queue=self.settings.workflow_queue_name,
                concurrency=self.options.concurrency,
                scheduler=self.options.scheduler,
                database=self.db.dialect,
            )
            await self._until_stopped(main)
        finally:
            await self._shutdown(main)
            if self._started is not None:
                await workflows_app.stop(self._started)
                self._started = None
            with contextlib.suppress(Exception):
                await self.consumer.close()
            await bus.drain()
            await bus.stop()
            reset_bus()
            if self._owns_db:
                await self.db.dispose()
            if install_signal_handlers:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
            log.info(
                "workflow worker stopped",
                worker=self.worker_id,
                steps_run=self.steps_run,
                deliveries_skipped=self.deliveries_skipped,
                steps_released=self.steps_released,
                jobs_requeued=self.consumer.jobs_requeued,
            )

    async def _until_stopped(self, main: asyncio.Task[None]) -> None:
        stopped = asyncio.ensure_future(self._stop.wait())
        last_stats = time.monotonic()
        try:
            while True:
                done, _ = await asyncio.wait({main, stopped}, timeout=STATS_EVERY_S, return_when="FIRST_COMPLETED")
                if stopped in done:
                    return
                if main in done:
                    main.result()  # the queue worker ended: surface why (the database gone, ...)
                    raise RuntimeError("the queue worker loop ended")
                if time.monotonic() - last_stats >= STATS_EVERY_S:
                    last_stats = time.monotonic()
                    log.info("workflow worker alive", worker=self.worker_id, steps_run=self.steps_run)
        finally:
            stopped.cancel()

    async def _shutdown(self, main: asyncio.Task[None] | None) -> None:
        self.stopping = True
        if self._started is not None:  # no new cron fires or redispatches from this process
            await workflows_app.stop_scheduler(self._started)
        if main is None:
            return
        self.consumer.stop_taking()
        running = [t for t in self._running if not t.done()]
        if running:
            log.info("waiting for running workflow steps", count=len(running), grace_s=self.options.shutdown_grace_s)
            _, pending = await asyncio.wait(running, timeout=self.options.shutdown_grace_s)
            for task in pending:  # `run` releases their leases as they unwind
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)
        await asyncio.wait({main}, timeout=10)  # the queue worker unregisters itself once its jobs are done
        main.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await main


def quiet_library_logs(settings: Settings) -> None:
    """Procrastinate and httpx log lines per job / request; keep those for DEBUG, our structured lines otherwise."""
    level = logging.DEBUG if settings.log_level.upper() == "DEBUG" else logging.WARNING
    for name in ("procrastinate", "psycopg", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(level)


async def run_worker(settings: Settings, options: WorkerOptions) -> None:
    """Check the configuration and the services, then serve until a signal."""
    from atom.process import check_startup

    check_worker_settings(settings)
    assert settings.redis_url is not None
    await check_redis(settings.redis_url)
    db = Database(settings, pre_ping=False)  # every worker transaction is retried on a dead connection
    try:
        await check_startup(db, settings)
        await WorkflowWorker(settings, options, db=db).serve()
    finally:
        await db.dispose()
