"""Starting and stopping the workflow engine inside `atom-os serve` (the app lifespan)."""

from __future__ import annotations

from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.workflows.runner import WorkflowEngine


async def start(app: FastAPI, db: Database, settings: Settings) -> WorkflowEngine:
    """Embedded executor: the worker pool and the scheduler run here. arq executor: steps are enqueued for
    `atom-os worker` processes; the scheduler still runs here (each cron fire happens once across processes)."""
    engine = WorkflowEngine(db=db, settings=settings)
    await engine.start()
    app.state.workflow_engine = engine
    return engine


async def stop(app: FastAPI) -> None:
    engine = getattr(app.state, "workflow_engine", None)
    if isinstance(engine, WorkflowEngine):
        await engine.stop()
        app.state.workflow_engine = None
