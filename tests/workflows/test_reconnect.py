"""A worker's database connections die (PostgreSQL restarted, a proxy dropped them): steps go on.

Workers skip the pool's pre-ping (a round trip per transaction) and rely on retrying a transaction
whose connection turns out dead; this kills every connection of the database between two steps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.workflows import app as workflows_app
from atom.workflows.runner import StepRunner
from tests.support.agents import make_agent
from tests.workflows.conftest import Collected, load_run, make_workflow, start

CHAIN = """
name: chain
agent: runner
steps:
  - {id: one, action: noop, with: {n: 1}}
  - {id: two, needs: [one], action: noop, with: {n: "{{ steps.one.output.n }}"}}
  - {id: three, needs: [two], action: noop, with: {n: 3}}
"""


@pytest.fixture
async def worker_db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings, pre_ping=False)  # as `atom-os worker` builds it
    yield database
    await database.dispose()


async def kill_connections(settings: Settings) -> int:
    url = make_url(settings.resolved_database_url)
    admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database="postgres")
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.database,
        )
    finally:
        await admin.close()
    return int(killed)


async def test_a_worker_whose_connections_were_killed_finishes_the_run(
    backend: str, settings: Settings, db: Database, worker_db: Database
) -> None:
    if backend != "postgres":
        pytest.skip("killing a server's connections: PostgreSQL only")
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="runner")
    queue = Collected()
    engine = StepRunner(db=worker_db, settings=settings, dispatcher=queue)
    engine_started = await workflows_app.start(engine, scheduler=False)
    try:
        workflow = await make_workflow(worker_db, engine, CHAIN)
        started = await start(engine, workflow)
        assert started.run_id is not None and len(queue.jobs) == 1

        assert await kill_connections(settings) >= 1  # the worker's pooled connection among them

        outcome = await engine.run_step(queue.jobs[0].step_run_id)
        assert outcome is not None and outcome.ok
        view = await load_run(db, started.run_id)
        assert view.status == "succeeded"
        assert [view.steps[k].status for k in ("one", "two", "three")] == ["succeeded"] * 3
        assert view.steps["two"].input == {"n": 1}
        assert [s.attempt for s in view.steps.values()] == [1, 1, 1]  # each ran once, none redelivered
    finally:
        await workflows_app.stop(engine_started)
