"""The agent runtime's hook: each event of a run updates its progress, written as the run goes.

`RunTracker.emit` wraps the run's `emit`: the client gets every event first and unchanged (except
`step`, which the runtime sends only to the tracker, at each model call); a token is forwarded and
nothing more. Other events are folded into the run's `AgentRunProgress`; a changed progress is
written by one writer task per run, latest snapshot first (a burst of events is one write), in its
own short transaction, never holding up the run; `OPERATION_CHANGED` goes on the bus after each
commit, for the live views. A write that fails is logged and retried with the next change; the run
never fails because of it. `close()` waits (bounded) for the final snapshot at the end of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from atom.db.session import Database
from atom.guidance import operations
from atom.guidance.progress import AgentRunProgress
from atom.observability.logging import get_logger

log = get_logger("atom.guidance.tracker")

Emit = Callable[[dict[str, Any]], None]
CLOSE_TIMEOUT_S = 10.0


class RunTracker:
    def __init__(self, db: Database, progress: AgentRunProgress, forward: Emit) -> None:
        self.db = db
        self.progress = progress
        self.forward = forward
        self._dirty = False
        self._writer: asyncio.Task[None] | None = None
        observe = self._observe

        def emit(event: dict[str, Any]) -> None:  # a closure: tokens, the many events, pay one call
            kind = event.get("type")
            if kind == "token":
                forward(event)
                return
            if kind != "step":
                forward(event)
            observe(event)

        self.emit: Emit = emit

    def _observe(self, event: dict[str, Any]) -> None:
        if self.progress.apply(event):
            self._dirty = True
            if self._writer is None or self._writer.done():
                try:
                    self._writer = asyncio.get_running_loop().create_task(self._write(), name="atom-guidance-tracker")
                except RuntimeError:  # no loop (a synchronous caller): the next change writes it
                    self._writer = None

    async def _write(self) -> None:
        while self._dirty:
            self._dirty = False
            snapshot = self.progress.snapshot()
            try:
                async with self.db.session_scope() as session:
                    await operations.save_snapshot(session=session, snapshot=snapshot)
            except Exception:
                log.warning("could not record run progress", execution_id=self.progress.execution_id, exc_info=True)
                return

    async def close(self) -> None:
        """Wait for the last snapshot to be written (at most CLOSE_TIMEOUT_S)."""
        if self._dirty and (self._writer is None or self._writer.done()):
            self._writer = asyncio.get_running_loop().create_task(self._write(), name="atom-guidance-tracker")
        writer = self._writer
        if writer is None:
            return
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(writer), timeout=CLOSE_TIMEOUT_S)


def track(
    db: Database,
    forward: Emit,
    *,
    execution_id: str,
    agent_id: str,
    agent_name: str,
    task: str,
    max_steps: int,
    user_id: str | None,
    private: bool = False,
) -> RunTracker:
    progress = AgentRunProgress(
        execution_id=execution_id,
        agent_id=agent_id,
        agent_name=agent_name,
        task=task,
        max_steps=max_steps,
        user_id=user_id,
        private=private,
    )
    return RunTracker(db, progress, forward)
