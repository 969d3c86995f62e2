"""Fixtures for workflow tests: local integration servers and an action context on the real stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.governance.policy import TriggerKind
from atom.security import secrets_store
from atom.workflows import app as workflows_app
from atom.workflows import flows, service
from atom.workflows.actions import ActionContext
from atom.workflows.machine import QueuedStep
from atom.workflows.models import StepRun, Workflow, WorkflowRun
from atom.workflows.runner import StepRunner
from tests.support import served
from tests.support.integration_servers import AsanaServer, HttpServer, SlackServer, SmtpServer, serve


@pytest.fixture
async def slack() -> AsyncIterator[tuple[SlackServer, str]]:
    server = SlackServer()
    async with serve(server.app) as url:
        yield server, url + "/api"


@pytest.fixture
async def asana() -> AsyncIterator[tuple[AsanaServer, str]]:
    server = AsanaServer()
    async with serve(server.app) as url:
        yield server, url + "/api/1.0"


@pytest.fixture
async def http_api() -> AsyncIterator[tuple[HttpServer, str]]:
    server = HttpServer()
    async with serve(server.app) as url:
        yield server, url


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SmtpServer]:
    server = SmtpServer(directory=tmp_path)
    server.start()
    yield server
    server.stop()


async def put_secret(db: Database, settings: Settings, name: str, value: str) -> None:
    async with db.session_scope() as s:
        await secrets_store.create(
            session=s, cipher=secrets_store.load_cipher(settings), name=name, value=value, actor=audit.Actor.system()
        )


MakeContext = Callable[..., Awaitable[ActionContext]]


@pytest.fixture
async def make_context(db: Database) -> AsyncIterator[MakeContext]:
    clients: list[httpx.AsyncClient] = []

    async def factory(settings: Settings, key: str = "run1:step1:0") -> ActionContext:
        http = httpx.AsyncClient()
        clients.append(http)
        return ActionContext(
            settings=settings,
            db=db,
            http=http,
            cipher=secrets_store.load_cipher(settings),
            idempotency_key=key,
            run_id="run1",
            step_id="step1",
            agent_id="agent1",
        )

    yield factory
    for client in clients:
        await client.aclose()


# --- the engine ---------------------------------------------------------------------------------


class Collected:
    """Keeps the steps handed to workers, so the test decides when each runs."""

    def __init__(self) -> None:
        self.jobs: list[QueuedStep] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def dispatch(self, jobs: Sequence[QueuedStep]) -> None:
        self.jobs.extend(jobs)


class FakeClock:
    """A clock the test moves by hand (cron, waits, leases)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 3, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def served_env(tmp_path: Path) -> dict[str, str]:
    """The environment of an `atom-os serve` process of the test's own (tests/support/served.py)."""
    return served.serve_env(tmp_path)


@pytest.fixture
def servers() -> Iterator[served.Servers]:
    """`atom-os serve` processes the test started; killed when it ends."""
    procs: served.Servers = []
    yield procs
    served.stop_all(procs)


@pytest.fixture
async def engine(settings: Settings, db: Database) -> AsyncIterator[StepRunner]:
    """An embedded engine (worker pool, no scheduler loop: tests call `tick`), real clock."""
    eng = StepRunner(db=db, settings=settings)
    eng_started = await workflows_app.start(eng, scheduler=False)
    yield eng
    await workflows_app.stop(eng_started)


async def make_workflow(db: Database, engine: StepRunner, source: str) -> Workflow:
    async with db.session_scope() as s:
        workflow, _ = await service.create_workflow(
            session=s, source=source, fmt=None, registry=engine.registry, actor=audit.Actor.system()
        )
    return workflow


async def start(
    engine: StepRunner,
    workflow: Workflow | str,
    inputs: dict[str, Any] | None = None,
    *,
    kind: TriggerKind = TriggerKind.MANUAL,
    source: str = "manual",
    payload: dict[str, Any] | None = None,
) -> flows.StartResult:
    ref = workflow if isinstance(workflow, str) else workflow.id
    return await flows.start_workflow(
        engine, workflow_ref=ref, inputs=inputs or {}, source=source, kind=kind, payload=payload or {}
    )


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@dataclass
class RunView:
    run: WorkflowRun
    steps: dict[str, StepRun]

    @property
    def status(self) -> str:
        return self.run.status


async def load_run(db: Database, run_id: str) -> RunView:
    async with db.session_scope() as s:
        run = await service.get_run(session=s, run_id=run_id)
        steps = await service.list_steps(session=s, run_id=run_id)
    return RunView(run, {step.step_key: step for step in steps})


async def wait_run(db: Database, run_id: str, *, status: str | None = None, timeout: float = 15.0) -> RunView:
    """Wait until the run finishes (or reaches `status`)."""
    view: RunView | None = None

    async def done() -> bool:
        nonlocal view
        view = await load_run(db, run_id)
        return view.status == status if status else view.status != "running"

    await wait_for(done, timeout, f"run {run_id} to finish")
    assert view is not None
    return view


async def wait_step(db: Database, run_id: str, step: str, status: str, timeout: float = 15.0) -> RunView:
    view: RunView | None = None

    async def reached() -> bool:
        nonlocal view
        view = await load_run(db, run_id)
        return view.steps[step].status == status

    await wait_for(reached, timeout, f"step {step} to be {status}")
    assert view is not None
    return view
