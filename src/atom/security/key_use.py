"""Recording an API key's last use without ever holding up the request that used it.

A request that authenticates with a key whose `last_used_at` is stale hands the key id to the
process's `KeyUseRecorder`. The recorder writes at most once per key per interval, in a task and
a transaction of its own: the request neither waits for the write nor takes a second pooled
connection while it holds one (which, under a burst with a fresh key, used to exhaust the pool
and fail every request). A write that loses a race with another process, or fails, is dropped:
the next use after the interval tries again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from atom.db.session import Database
from atom.observability.logging import get_logger
from atom.security import service

log = get_logger("atom.security")

# Past this many remembered keys, entries older than the interval are forgotten (they would be rewritten anyway).
_PRUNE_AT = 10_000


class KeyUseRecorder:
    def __init__(self, resolution: timedelta = service.LAST_USED_RESOLUTION) -> None:
        self._interval_s = resolution.total_seconds()
        self._recorded: dict[str, float] = {}  # key id -> monotonic time of the last write started
        self._tasks: set[asyncio.Task[None]] = set()

    def record(self, db: Database, key_id: str) -> None:
        """Schedule the write (returns at once); a no-op when this key was recorded within the interval."""
        now = time.monotonic()
        last = self._recorded.get(key_id)
        if last is not None and now - last < self._interval_s:
            return
        if len(self._recorded) >= _PRUNE_AT:
            self._recorded = {k: t for k, t in self._recorded.items() if now - t < self._interval_s}
        self._recorded[key_id] = now
        task = asyncio.create_task(self._write(db, key_id), name=f"touch-key-{key_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write(self, db: Database, key_id: str) -> None:
        try:
            async with db.session_scope() as session:
                await service.touch_key(session=session, key_id=key_id)
        except Exception as exc:  # recording a use must never fail anything; the next use retries
            self._recorded.pop(key_id, None)
            log.warning("could not record an API key's last use", key_id=key_id, error=type(exc).__name__)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait for the writes under way (at shutdown, and in tests that read `last_used_at`)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
