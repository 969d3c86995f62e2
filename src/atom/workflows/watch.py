"""Waiting for runs to end, for callers that answer with a run's result (`respond: on_finish` webhooks).

A started engine feeds `on_completed` from the bus's "workflow.completed" events, which every process
that finishes runs publishes (in-process, or through Redis from `atom-os worker` processes). A waiter
registers before it looks at the run, so an end that happens in between is not missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class RunWatch:
    def __init__(self) -> None:
        self._waiters: dict[str, list[asyncio.Future[dict[str, Any]]]] = {}

    def on_completed(self, payload: dict[str, Any]) -> None:
        """A run ended (succeeded, failed or cancelled): wake whoever waits for it."""
        for waiter in self._waiters.pop(str(payload.get("run_id")), []):
            if not waiter.done():
                waiter.set_result(payload)

    @contextmanager
    def watching(self, run_id: str) -> Iterator[asyncio.Future[dict[str, Any]]]:
        """A future resolved with the run's completion event; forgotten when the block ends."""
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[run_id]

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())
