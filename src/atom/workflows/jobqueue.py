"""The scale-out step queue: Procrastinate, in the PostgreSQL database that holds the steps.

A job carries one step run id ("step X is ready"); everything else stays in the step's row, where the
conditional claim decides which delivery runs it (docs/scale-out.md). The API side defers jobs
(`QueueDispatcher`), `atom-os worker` runs a Procrastinate worker over them (`QueueConsumer`). Jobs are
deleted once handled, whatever the outcome: the outcome lives in the step's row.

- Deduplication: a job's queueing lock is `wf:<step run id>:<dispatch number>`, so dispatching the same
  step twice for the same reason while the first job waits defers it once.
- Delays (a retry's backoff) are Procrastinate's `scheduled_at`; new jobs wake idle workers at once by
  LISTEN/NOTIFY, and workers look for jobs that have come due every poll interval.
- A worker that died leaves its jobs `doing`: once its heartbeat is older than `STALLED_AFTER_S`, a
  live worker puts them back in the queue (`sweep_stalled`). By then the scheduler has usually run the
  step again from its expired lease, and the claim makes that delivery a no-op.
- The schema comes from migration queue01 (`atom-os db upgrade`), on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy.engine import make_url

from atom.config import Settings
from atom.observability.logging import get_logger
from atom.workflows.machine import QueuedStep

log = get_logger("atom.workflows.jobqueue")
TASK = "atom.run_workflow_step"
HEARTBEAT_S = 10.0
STALLED_AFTER_S = 30.0  # three missed heartbeats
SWEEP_EVERY_S = 30.0


def conninfo(settings: Settings) -> str:
    """The libpq form of ATOM_DATABASE_URL (Procrastinate runs on psycopg 3, the engine on asyncpg)."""
    url = make_url(settings.resolved_database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def build_app(settings: Settings, *, pool_size: int) -> Any:
    import procrastinate

    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(settings),
        min_size=1,
        max_size=pool_size,
        kwargs={"application_name": "atom-queue"},
        configure=_autocommit,
    )
    return procrastinate.App(connector=connector)


async def _autocommit(connection: Any) -> None:
    """Each of Procrastinate's queries is one statement (a function call), its own transaction: without
    autocommit psycopg would add a BEGIN and a COMMIT round trip to every fetch, finish and defer.
    (A `kwargs` entry would clash with the autocommit Procrastinate gives its LISTEN connection.)"""
    await connection.set_autocommit(True)


class QueueDispatcher:
    """Defers "step X is ready" jobs (after the transaction that made the step ready has committed)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._app: Any = None

    async def start(self) -> None:
        if self._app is None:
            app = build_app(self.settings, pool_size=4)
            await app.open_async()
            self._app = app

    async def stop(self) -> None:
        if self._app is not None:
            app, self._app = self._app, None
            await app.close_async()

    async def dispatch(self, jobs: Sequence[QueuedStep]) -> None:
        from procrastinate.exceptions import AlreadyEnqueued

        if self._app is None:
            await self.start()
        for job in jobs:
            deferrer = self._app.configure_task(
                TASK,
                queue=self.settings.workflow_queue_name,
                queueing_lock=f"wf:{job.step_run_id}:{job.dispatch}",
                schedule_in={"seconds": job.delay_s} if job.delay_s > 0 else None,
            )
            with contextlib.suppress(AlreadyEnqueued):  # the same dispatch is already waiting
                await deferrer.defer_async(step_run_id=job.step_run_id)


class QueueConsumer:
    """A Procrastinate worker on the workflow queue, handing each step id to `handle`."""

    def __init__(self, settings: Settings, *, concurrency: int, poll_interval_s: float, grace_s: float) -> None:
        self.settings = settings
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.grace_s = grace_s
        self.jobs_requeued = 0
        self._app: Any = None
        self._worker: Any = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self, handle: Callable[[str], Awaitable[None]]) -> asyncio.Task[None]:
        """Open the queue and start taking jobs; returns the worker's main task (it ends on `stop_taking`)."""
        from procrastinate.worker import Worker

        app = build_app(self.settings, pool_size=4)

        async def run_workflow_step(step_run_id: str) -> None:
            await handle(step_run_id)

        app.task(name=TASK, queue=self.settings.workflow_queue_name)(run_workflow_step)
        await app.open_async()
        self._app = app
        self._worker = Worker(
            app=app,
            queues=[self.settings.workflow_queue_name],
            name="atom",
            concurrency=self.concurrency,
            install_signal_handlers=False,  # the workflow worker owns SIGTERM and the grace
            delete_jobs="always",
            listen_notify=True,
            fetch_job_polling_interval=self.poll_interval_s,
            update_heartbeat_interval=HEARTBEAT_S,
            stalled_worker_timeout=STALLED_AFTER_S,
            shutdown_graceful_timeout=self.grace_s + 5,  # a backstop: the workflow worker cancels at the grace
        )
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="atom-queue-sweeper")
        return asyncio.create_task(self._worker.run(), name="atom-queue-worker")

    async def _sweep_loop(self) -> None:
        while True:
            try:
                await self.sweep_stalled()
            except Exception:  # the database may be briefly away: try again next time
                log.exception("could not look for stalled workflow jobs")
            await asyncio.sleep(SWEEP_EVERY_S)

    async def sweep_stalled(self) -> int:
        """Put back in the queue the jobs held by workers whose heartbeat stopped. Returns how many."""
        from procrastinate.exceptions import ConnectorException

        manager = self._app.job_manager
        stalled = await manager.get_stalled_jobs(
            queue=self.settings.workflow_queue_name, seconds_since_heartbeat=STALLED_AFTER_S
        )
        requeued = 0
        for job in stalled:
            try:
                await manager.retry_job(job)
            except ConnectorException:  # no longer `doing`: another worker requeued it first
                log.debug("stalled workflow job already requeued", job_id=job.id)
                continue
            requeued += 1
        if requeued:
            self.jobs_requeued += requeued
            log.info("requeued the jobs of a stopped workflow worker", count=requeued)
        return requeued

    def stop_taking(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._worker is not None:
            self._worker.stop()

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._app is not None:
            app, self._app = self._app, None
            await app.close_async()
