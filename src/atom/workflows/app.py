"""Starting and stopping the workflow engine: a step runner with its dispatcher, the scheduler and the
"workflow" executor. `atom-os serve` (the app lifespan) and `atom-os worker` both call `start`/`stop`.

- embedded executor: the runner's worker pool and the scheduler run in `atom-os serve`, its
  transactions go through one group committer (`commits.py`) and webhooks through the intake
  (`intake.py`);
- queue executor: `atom-os serve` defers steps to the job queue for `atom-os worker` processes, each
  of which starts an engine of its own with a group committer (`group_commit=True`: the steps a worker
  runs at once share commits); the scheduler runs in every process (each cron fire happens once across them).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from atom.config import Settings, WorkflowExecutorMode
from atom.db.session import Database
from atom.errors import Unavailable
from atom.events.bus import get_bus
from atom.training.executor import Executors
from atom.training.executor import current as current_executors
from atom.workflows import machine
from atom.workflows.commits import GroupCommitter
from atom.workflows.executor import register_executor, unregister_executor
from atom.workflows.intake import WebhookIntake
from atom.workflows.runner import StepRunner, is_transient
from atom.workflows.scheduler import Scheduler, reclaim_at_start


@dataclass
class Engine:
    """A started engine: what `stop` undoes."""

    runner: StepRunner
    executors: Executors
    scheduler: Scheduler | None = None


_current: StepRunner | None = None


async def start(
    runner: StepRunner,
    *,
    scheduler: bool | None = None,
    executors: Executors | None = None,
    group_commit: bool | None = None,
) -> Engine:
    """Start `runner`'s dispatcher, register its executor, listen for cancels, start the scheduler
    (default: ATOM_WORKFLOW_SCHEDULER_ENABLED), and make it the process's runner for the routes."""
    global _current
    runner.open()
    embedded = runner.settings.workflow_executor is WorkflowExecutorMode.EMBEDDED
    if group_commit if group_commit is not None else embedded:
        runner.commits = GroupCommitter(runner.db, is_transient)
        await runner.commits.start()
    if embedded:
        runner.intake = WebhookIntake(runner)
    await runner.dispatcher.start()
    engine = Engine(runner=runner, executors=executors or current_executors())
    register_executor(engine.executors, runner)
    await reclaim_at_start(runner)  # steps of this host's dead processes (a crash) go on now, not at lease expiry
    get_bus().on(machine.RUN_CANCELLED, runner.on_run_cancelled)
    get_bus().on(machine.WORKFLOW_COMPLETED, runner.watch.on_completed)
    if scheduler if scheduler is not None else runner.settings.workflow_scheduler_enabled:
        engine.scheduler = Scheduler(runner)
        await engine.scheduler.start()
        runner.subscribe_topic = engine.scheduler.subscribe
    _current = runner
    return engine


async def stop_scheduler(engine: Engine) -> None:
    if engine.scheduler is not None:
        engine.runner.subscribe_topic = None
        await engine.scheduler.stop()
        engine.scheduler = None


async def stop(engine: Engine) -> None:
    global _current
    await stop_scheduler(engine)
    engine.runner.intake = None
    await engine.runner.dispatcher.stop()
    if engine.runner.commits is not None:
        await engine.runner.commits.stop()
        engine.runner.commits = None
    await engine.runner.close()
    unregister_executor(engine.executors, engine.runner)
    if _current is engine.runner:
        _current = None


def current_runner() -> StepRunner:
    """The runner of the engine started in this process (the routes' fallback when the app has none)."""
    if _current is None:
        raise Unavailable("The workflow engine is not running in this process.", code="WORKFLOW_ENGINE_STOPPED")
    return _current


async def start_in_app(app: FastAPI, db: Database, settings: Settings) -> Engine:
    engine = await start(StepRunner(db=db, settings=settings))
    app.state.workflow_engine = engine.runner
    app.state.workflow_started = engine
    return engine


async def stop_in_app(app: FastAPI) -> None:
    engine = getattr(app.state, "workflow_started", None)
    if isinstance(engine, Engine):
        await stop(engine)
        app.state.workflow_started = None
        app.state.workflow_engine = None
