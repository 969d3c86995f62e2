"""The scenario runs this process is running: the API starts them, the app's shutdown cancels them.

A cancelled run gives its session back (scheduled, with the error); a process that dies instead leaves
it running until `scenario_runs.stale_after` has passed, when it may be claimed again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from atom.training.scenario_runs import CANCELLED, ScenarioRun


class TrainingRuns:
    def __init__(self) -> None:
        self._tasks: dict[asyncio.Task[None], ScenarioRun] = {}

    def spawn(self, run: ScenarioRun) -> asyncio.Task[None]:
        task = asyncio.create_task(run.execute(), name=f"training-run-{run.claim.training_id}")
        self._tasks[task] = run
        task.add_done_callback(lambda done: self._tasks.pop(done, None))
        return task

    def running(self) -> list[asyncio.Task[None]]:
        return list(self._tasks)

    async def stop(self) -> None:
        """Cancel every run; a run cancelled before it started gives its session back here."""
        runs = dict(self._tasks)
        for task in runs:
            task.cancel()
        await asyncio.gather(*runs, return_exceptions=True)
        for run in runs.values():
            await run.give_back(CANCELLED)


def runs_of(state: Any) -> TrainingRuns:
    runs = getattr(state, "training_runs", None)
    if not isinstance(runs, TrainingRuns):
        runs = TrainingRuns()
        state.training_runs = runs
    return runs


async def stop(state: Any) -> None:
    runs = getattr(state, "training_runs", None)
    if isinstance(runs, TrainingRuns):
        await runs.stop()
