"""Waiting for runs to end, for callers that answer with a run's result (`respond: on_finish` webhooks).

Two sources end a wait: the engine of this process, after the commit that ended the run, with the
run's steps as that transaction left them (`ended`: nothing to read back); and the bus's
"workflow.completed" events, which every process that finishes runs publishes (in-process, or through
Redis from `atom-os worker` processes; `on_completed`), without the steps. A waiter registers before
the run can end (the webhook intake registers before it hands the first step to a worker), or looks at
the run once after registering.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from atom.workflows.state import RunState, StepState


@dataclass(frozen=True)
class Ended:
    run_id: str
    status: str
    error: str | None
    steps: Sequence[StepState] | None = None  # as the ending transaction committed them, when known here


class RunWatch:
    def __init__(self) -> None:
        self._waiters: dict[str, list[asyncio.Future[Ended]]] = {}

    def ended(self, run: RunState, steps: Sequence[StepState]) -> None:
        """This process committed the end of `run`."""
        self._wake(run.id, Ended(run.id, run.status, run.error, list(steps)))

    def on_completed(self, payload: dict[str, Any]) -> None:
        """A run ended somewhere ("workflow.completed"): wake whoever still waits for it."""
        run_id = str(payload.get("run_id"))
        error = payload.get("error")
        self._wake(run_id, Ended(run_id, str(payload.get("status")), str(error) if error is not None else None))

    def _wake(self, run_id: str, ended: Ended) -> None:
        for waiter in self._waiters.pop(run_id, []):
            if not waiter.done():
                waiter.set_result(ended)

    def register(self, run_id: str) -> asyncio.Future[Ended]:
        waiter: asyncio.Future[Ended] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(waiter)
        return waiter

    def forget(self, run_id: str, waiter: asyncio.Future[Ended]) -> None:
        waiters = self._waiters.get(run_id)
        if waiters is not None and waiter in waiters:
            waiters.remove(waiter)
            if not waiters:
                del self._waiters[run_id]

    @contextmanager
    def watching(self, run_id: str) -> Iterator[asyncio.Future[Ended]]:
        """A future resolved when the run ends; forgotten when the block ends."""
        waiter = self.register(run_id)
        try:
            yield waiter
        finally:
            self.forget(run_id, waiter)

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())
