"""Group commit for the engine (embedded, and each `atom-os worker`): one writer task runs the
transactions many callers ask for together, in one database transaction, and answers each caller
after that commit.

A caller hands over a body (`async def body(session) -> T`, the same bodies `StepRunner.transact`
runs); the writer takes every body waiting when it is free, runs them one after another on one session,
commits once and resolves each caller with its body's result. While a batch commits the next one
gathers, so under load each commit carries many callers' rows and an idle writer answers one caller
at once. Durability is unchanged: nobody is answered before the commit that holds their rows.

A body that raises is its own caller's error only: the transaction is rolled back, that caller gets
the exception and the other bodies run again in the next batch (bodies are written to be run again, as
`transact` retries them after a deadlock). A transient database error (deadlock, serialization) runs
the whole batch again, a few times, before each caller is given the error.

On SQLite the writer has a connection of its own that runs statements on the event loop
(`db/inline.py`), begins every transaction with the write lock and checkpoints the WAL on a thread; on
PostgreSQL it uses the process's pool. There, a batch holds the row locks of every run its bodies
advanced until it commits, so two workers' batches can lock two runs in opposite orders (parallel
branches of a run finishing on both): PostgreSQL ends one of them as a deadlock, which is transient,
and that batch runs again.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from atom.audit import service as audit
from atom.db import inline
from atom.db.session import Database
from atom.observability.logging import get_logger

log = get_logger("atom.workflows.commits")
T = TypeVar("T")
Body = Callable[[AsyncSession], Awaitable[Any]]
BATCH_RETRIES = 5
MAX_BATCH = 500  # bodies per transaction: bounds how long the write lock is held
CHECKPOINT_EVERY = 200  # commits between WAL checkpoints (SQLite)


@dataclass
class _Job:
    body: Body
    done: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupCommitter:
    def __init__(self, db: Database, transient: Callable[[DBAPIError], bool]) -> None:
        self.db = db
        self.transient = transient
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] = db.sessionmaker
        self._path: Path | None = None
        self._pending: list[_Job] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checkpoint: asyncio.Task[None] | None = None
        self._commits = 0
        self._stopping = False
        self.batches = 0
        self.bodies = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self.running:
            return
        if self.db.dialect == "sqlite":
            database = self.db.engine.url.database
            assert database is not None
            self._path = Path(database)
            self._engine = inline.build_inline_engine(self._path)
            self._sessions = async_sessionmaker(self._engine, expire_on_commit=False, autoflush=True)
        self._task = asyncio.create_task(self._loop(), name="atom-workflow-commits")

    async def stop(self) -> None:
        """Run what was handed over, then stop; later bodies go the ordinary way (`run` raises)."""
        task, self._task = self._task, None
        if task is not None:
            self._stopping = True
            self._wakeup.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for job in self._pending:
            if not job.done.done():
                job.done.set_exception(RuntimeError("the workflow engine stopped"))
        self._pending = []
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):  # a failure is logged by _report_checkpoint
                await self._checkpoint
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def run(self, body: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`body`'s result once the transaction it ran in has committed."""
        job = _Job(body)
        self._pending.append(job)
        self._wakeup.set()
        result: T = await job.done
        return result

    async def _loop(self) -> None:
        while True:
            if not self._pending:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch = [job for job in self._pending[:MAX_BATCH] if not job.done.cancelled()]
            del self._pending[:MAX_BATCH]
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Job]) -> None:
        for attempt in range(BATCH_RETRIES):
            results: list[Any] = []
            failed: tuple[int, BaseException] | None = None
            try:
                async with self._sessions() as session:  # closing it rolls back what was not committed
                    audit.defer_writes(session)  # the batch's audit records: one INSERT at the end
                    for index, job in enumerate(batch):
                        try:
                            results.append(await job.body(session))
                        except DBAPIError:
                            raise
                        except Exception as exc:
                            failed = (index, exc)
                            break
                    if failed is None:
                        await audit.write_deferred(session)
                        await session.commit()
            except DBAPIError as exc:
                if attempt < BATCH_RETRIES - 1 and self.transient(exc):
                    await asyncio.sleep(0.01 * (attempt + 1))
                    continue
                for job in batch:
                    _settle(job, exc=exc)
                return
            except Exception as exc:  # the session itself broke (commit, connect): every caller learns it
                log.exception("a workflow group commit failed")
                for job in batch:
                    _settle(job, exc=exc)
                return
            if failed is not None:
                index, error = failed
                _settle(batch[index], exc=error)
                self._pending[:0] = batch[:index] + batch[index + 1 :]  # again, without the failed body
                return
            self.batches += 1
            self.bodies += len(batch)
            for job, result in zip(batch, results, strict=True):
                _settle(job, result=result)
            self._after_commit()
            return

    def _after_commit(self) -> None:
        self._commits += 1
        due = self._path is not None and self._commits % CHECKPOINT_EVERY == 0
        if due and (self._checkpoint is None or self._checkpoint.done()):
            assert self._path is not None
            self._checkpoint = asyncio.create_task(asyncio.to_thread(_checkpoint, self._path))
            self._checkpoint.add_done_callback(_report_checkpoint)


def _checkpoint(path: Path) -> None:
    try:
        inline.checkpoint(path)
    except sqlite3.OperationalError as exc:
        if not inline.busy(exc):
            raise
        log.debug("WAL checkpoint skipped: the database is busy; tried again after the next commits")


def _report_checkpoint(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("WAL checkpoint failed", exc_info=task.exception())


def _settle(job: _Job, *, result: Any = None, exc: BaseException | None = None) -> None:
    if job.done.done():
        return
    if exc is not None:
        job.done.set_exception(exc)
    else:
        job.done.set_result(result)
