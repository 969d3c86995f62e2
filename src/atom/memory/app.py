"""Memory inside a running process: build it at start-up, run its background jobs, stop them.

- ingestion: every ATOM_MEMORY_INGEST_INTERVAL_S, each source's new finished records become episodes
  (off the request path: a chat turn never waits for an embedding);
- maintenance: every ATOM_MEMORY_MAINTENANCE_INTERVAL_HOURS, decay / archive / consolidate;
- jobs asked for through the API or CLI (maintain, reembed) run as tasks here, their progress in
  their `MemoryJob` row.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.errors import Unavailable
from atom.memory import ingest, lifecycle
from atom.memory.runtime import Memory, build
from atom.memory.tools import register_memory_tools, unregister_memory_tools
from atom.observability.logging import get_logger
from atom.runtime import tools as runtime_tools

log = get_logger("atom.memory")


class MemoryJobs:
    def __init__(self, db: Database, memory: Memory) -> None:
        self.db = db
        self.memory = memory
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = asyncio.Event()

    def spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("memory job failed", job=task.get_name(), exc_info=task.exception())

    async def ingest_once(self) -> int:
        taken = 0
        for source in ingest.SOURCES:
            async with self.db.session_scope() as session:
                taken += await ingest.ingest_source(session=session, memory=self.memory, source=source)
        return taken

    async def _every(self, seconds: float, work: Any, what: str) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
            if self._stopping.is_set():
                return
            try:
                await work()
            except Exception:
                log.error("memory background pass failed", job=what, exc_info=True)

    async def _maintain(self) -> None:
        async with self.db.session_scope() as session:
            job = await lifecycle.start_job(session=session, kind="maintain", dry_run=False, created_by=None)
        await lifecycle.maintain(db=self.db, memory=self.memory, job_id=job.id, dry_run=False)

    def start(self) -> None:
        settings = self.memory.settings
        self.spawn(self._every(settings.memory_ingest_interval_s, self.ingest_once, "ingest"), "memory-ingest")
        hours = settings.memory_maintenance_interval_hours
        self.spawn(self._every(hours * 3600, self._maintain, "maintain"), "memory-maintain")

    async def stop(self) -> None:
        self._stopping.set()
        self.memory.store.stop_warming()  # a thread cannot be cancelled: it stops at the next agent
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def start(app: FastAPI, db: Database, settings: Settings) -> None:
    """Load and check the model (a missing or altered one stops start-up here) and start the jobs."""
    app.state.memory = None
    app.state.memory_jobs = None
    if not settings.memory_enabled:
        return
    memory = await build(settings, db)
    jobs = MemoryJobs(db, memory)
    jobs.start()
    jobs.spawn(memory.store.warm(), "memory-warm")  # the search index, read in the background
    register_memory_tools(runtime_tools.current(), db, memory)  # the one place memory's agent tools join the registry
    app.state.memory = memory
    app.state.memory_jobs = jobs
    log.info("memory started", model_id=memory.embedder.model_id, vectors=str(memory.store.directory))


async def stop(app: FastAPI) -> None:
    jobs = getattr(app.state, "memory_jobs", None)
    if isinstance(jobs, MemoryJobs):
        unregister_memory_tools(runtime_tools.current())
        await jobs.stop()
    app.state.memory_jobs = None


def memory_of(state: Any) -> Memory:
    memory = getattr(state, "memory", None)
    if not isinstance(memory, Memory):
        raise Unavailable("Episodic memory is not running in this process.", code="MEMORY_UNAVAILABLE")
    return memory


def jobs_of(state: Any, db: Database) -> MemoryJobs:
    """The process's job runner; one is made on demand when the app runs without its lifespan (tests)."""
    jobs = getattr(state, "memory_jobs", None)
    if not isinstance(jobs, MemoryJobs):
        jobs = MemoryJobs(db, memory_of(state))
        state.memory_jobs = jobs
    return jobs
