"""Handing queued steps to workers: an in-process async pool (default) or the PostgreSQL job queue
read by `atom-os worker` processes (scale-out, `workflows/jobqueue.py`).

Both are at-least-once: a step can be delivered more than once (a sweeper redispatch, a redelivery
after a worker died), and the conditional claim in the database lets exactly one delivery run it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from atom.config import Settings, WorkflowExecutorMode
from atom.errors import ConfigurationError
from atom.observability.logging import get_logger
from atom.workflows.machine import QueuedStep

log = get_logger("atom.workflows.dispatch")
StepHandler = Callable[[str], Awaitable[object]]
Work = Callable[[], Awaitable[object]]


class Dispatcher(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def dispatch(self, jobs: Sequence[QueuedStep]) -> None: ...


class EmbeddedPool:
    """A bounded set of asyncio workers reading one queue; delayed jobs wait on the event loop's timer."""

    def __init__(self, handler: StepHandler, concurrency: int) -> None:
        self.handler = handler
        self.concurrency = concurrency
        self._queue: asyncio.Queue[str | Work] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._stopping = False
        self._taken = asyncio.Event()  # set each time a worker takes an item (`room`)

    async def start(self) -> None:
        self._stopping = False
        self._workers = [
            asyncio.create_task(self._work(), name=f"atom-workflow-worker-{n}") for n in range(self.concurrency)
        ]

    async def stop(self) -> None:
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []

    async def dispatch(self, jobs: Sequence[QueuedStep]) -> None:
        loop = asyncio.get_running_loop()
        for job in jobs:
            if self._stopping:
                return
            if job.delay_s > 0:
                self._timers.add(loop.call_later(job.delay_s, self._fire, job.step_run_id))
            else:
                self._queue.put_nowait(job.step_run_id)

    def run_now(self, work: Work) -> None:
        """Run `work` (a step this process already claimed, see `StepRunner.drive_claimed`) on a worker."""
        if not self._stopping:
            self._queue.put_nowait(work)

    async def room(self, waiting: int) -> None:
        """Return once at most `waiting` items wait for a worker: what a producer that could outrun the
        workers (the webhook intake, whose batches claim steps for them) waits on."""
        while self._queue.qsize() > waiting and not self._stopping:
            self._taken.clear()
            await self._taken.wait()

    def _fire(self, step_id: str) -> None:
        self._timers = {t for t in self._timers if not t.cancelled() and t.when() > asyncio.get_running_loop().time()}
        self._queue.put_nowait(step_id)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            self._taken.set()
            try:
                await (self.handler(item) if isinstance(item, str) else item())
            except Exception:  # the handler records failures itself; never let one kill the worker
                log.exception("workflow step handler failed", step_run_id=item if isinstance(item, str) else None)
            finally:
                self._queue.task_done()


def build_dispatcher(settings: Settings, handler: StepHandler) -> Dispatcher:
    if settings.workflow_executor is WorkflowExecutorMode.QUEUE:
        if settings.is_sqlite:
            raise ConfigurationError(
                "the queue workflow executor keeps its jobs in PostgreSQL, and the database is SQLite.",
                setting="ATOM_WORKFLOW_EXECUTOR",
                fix="set ATOM_DATABASE_URL=postgresql://USER@HOST:5432/atom, or ATOM_WORKFLOW_EXECUTOR=embedded "
                "to run steps inside the server.",
            )
        if not settings.redis_url:
            raise ConfigurationError(
                "the queue workflow executor needs Redis: it carries the events between the API and the workers "
                "(a cancel reaches the worker running the step).",
                setting="ATOM_REDIS_URL",
                fix="set ATOM_REDIS_URL, or ATOM_WORKFLOW_EXECUTOR=embedded to run steps inside the server.",
            )
        from atom.workflows.jobqueue import QueueDispatcher

        return QueueDispatcher(settings)
    return EmbeddedPool(handler, settings.workflow_concurrency)
