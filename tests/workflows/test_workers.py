"""`atom-os worker` processes on PostgreSQL (the job queue) + Redis (events): the crash test (a worker
killed with SIGKILL mid-step loses nothing and repeats no side effect), graceful SIGTERM, the hand-over
of a step that outlives the shutdown grace, a retry deferred through the queue, the jobs of a dead
worker going back to the queue, and the configurations a worker refuses."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.workflows import app as workflows_app
from atom.workflows.models import StepRun, WorkflowRun
from atom.workflows.runner import StepRunner
from tests.conftest import TEST_SECRET_KEY
from tests.support.agents import make_agent
from tests.support.integration_servers import HttpServer, serve
from tests.workflows.conftest import load_run, make_workflow, start, wait_for, wait_run, wait_step

ATOM_OS = str(Path(sys.executable).parent / "atom-os")
RUNS = 50
STEPS = ("reserve", "charge", "ship")
VISIBILITY_S = 3.0


def clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
    env.update(values)
    return env


# --- refusing to start (no services needed) -----------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_refuses_to_start_without_redis_a_shared_database_or_the_queue_executor(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from atom.cli.main import app as cli

    pg = "postgresql://atom@127.0.0.1:5432/atom"
    unreachable_redis = f"redis://127.0.0.1:{closed_port()}/0"
    cases = {
        "no redis": ({"ATOM_WORKFLOW_EXECUTOR": "queue", "ATOM_DATABASE_URL": pg}, "ATOM_REDIS_URL: atom-os worker"),
        "embedded executor": (
            {"ATOM_REDIS_URL": unreachable_redis, "ATOM_DATABASE_URL": pg},
            "ATOM_WORKFLOW_EXECUTOR: atom-os worker",
        ),
        "sqlite": ({"ATOM_REDIS_URL": unreachable_redis, "ATOM_WORKFLOW_EXECUTOR": "queue"}, "ATOM_DATABASE_URL:"),
        "lease shorter than a step": (
            {
                "ATOM_REDIS_URL": unreachable_redis,
                "ATOM_WORKFLOW_EXECUTOR": "queue",
                "ATOM_DATABASE_URL": pg,
                "ATOM_WORKFLOW_JOB_TIMEOUT_S": "60",
                "ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S": "30",
            },
            "ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S:",
        ),
        "the removed arq executor": (
            {"ATOM_REDIS_URL": unreachable_redis, "ATOM_WORKFLOW_EXECUTOR": "arq", "ATOM_DATABASE_URL": pg},
            "ATOM_WORKFLOW_EXECUTOR: Value error, `arq` is no longer an executor",
        ),
        "redis unreachable": (
            {"ATOM_REDIS_URL": unreachable_redis, "ATOM_WORKFLOW_EXECUTOR": "queue", "ATOM_DATABASE_URL": pg},
            "ATOM_REDIS_URL: cannot reach Redis",
        ),
    }
    inherited: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ATOM_")}
    for name, (values, expected) in cases.items():
        data = tmp_path / name.replace(" ", "-")
        data.mkdir()
        env = {**inherited, "ATOM_DATA_DIR": str(data), "ATOM_SECRET_KEY": TEST_SECRET_KEY, **values}
        result = CliRunner().invoke(cli, ["worker"], env=env)
        output = " ".join(result.output.split())
        assert result.exit_code == 1, f"{name}: exit {result.exit_code}, {output}"
        assert output.startswith("error: ") and expected in output, f"{name}: {output}"
        assert "Fix:" in output and "Traceback" not in output, f"{name}: {output}"


def test_the_api_refuses_the_queue_executor_on_sqlite_or_without_redis(tmp_path: Path) -> None:
    from atom.errors import ConfigurationError
    from atom.workflows.dispatch import build_dispatcher
    from tests.conftest import make_settings

    async def handler(step_run_id: str) -> None:
        raise AssertionError("no step runs here")

    cases = {
        "ATOM_WORKFLOW_EXECUTOR": make_settings(tmp_path, None, workflow_executor="queue", redis_url="redis://x/0"),
        "ATOM_REDIS_URL": make_settings(tmp_path, "postgresql://atom@127.0.0.1:5432/atom", workflow_executor="queue"),
    }
    for setting, settings in cases.items():
        with pytest.raises(ConfigurationError) as refused:
            build_dispatcher(settings, handler)
        assert refused.value.one_line().startswith(f"{setting}: ") and "Fix:" in refused.value.one_line()


# --- the crash test (PostgreSQL + Redis) --------------------------------------------------------


@pytest.fixture
def backend() -> str:
    return "postgres"  # workers refuse SQLite; the settings/db fixtures give this test a PostgreSQL database


@pytest.fixture
def queue_name() -> str:
    return f"atom:test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings_overrides(redis_url: str, queue_name: str) -> dict[str, object]:
    return {
        "redis_url": redis_url,
        "workflow_executor": "queue",
        "workflow_queue_name": queue_name,
        "workflow_job_timeout_s": 2.0,
        "workflow_visibility_timeout_s": VISIBILITY_S,
        "workflow_scheduler_interval_s": 0.2,
    }


class Worker:
    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name, self.proc, self.log = name, proc, log

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def spawn_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []
    env = clean_env(
        ATOM_DATA_DIR=str(settings.data_dir),
        ATOM_DATABASE_URL=str(settings.database_url),
        ATOM_REDIS_URL=str(settings.redis_url),
        ATOM_SECRET_KEY=TEST_SECRET_KEY,
        ATOM_WORKFLOW_EXECUTOR="queue",
        ATOM_WORKFLOW_QUEUE_NAME=settings.workflow_queue_name,
        ATOM_WORKFLOW_JOB_TIMEOUT_S=str(settings.workflow_job_timeout_s),
        ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S=str(settings.workflow_visibility_timeout_s),
        ATOM_WORKFLOW_SCHEDULER_INTERVAL_S=str(settings.workflow_scheduler_interval_s),
        ATOM_LOG_FORMAT="json",
        ATOM_DB_POOL_SIZE="5",
    )

    def factory(name: str, grace_s: float = 5.0, **overrides: str) -> Worker:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as out:
            argv = [ATOM_OS, "worker", "--worker-id", name, "--concurrency", "4", "--shutdown-grace", str(grace_s)]
            proc = subprocess.Popen(argv, env={**env, **overrides}, stdout=out, stderr=subprocess.STDOUT)
        worker = Worker(name, proc, log)
        workers.append(worker)
        return worker

    yield factory
    for worker in workers:
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.proc.wait(timeout=10)


async def wait_ready(worker: Worker) -> None:
    async def ready() -> bool:
        if worker.proc.poll() is not None:
            raise AssertionError(f"{worker.name} exited with {worker.proc.returncode}: {worker.text()[-2000:]}")
        return "workflow worker ready" in worker.text()

    await wait_for(ready, 120, f"{worker.name} to be ready")  # `atom-os` imports take seconds


@pytest.fixture
async def driver(settings: Settings, db: Database) -> AsyncIterator[StepRunner]:
    """The API side: an engine that defers steps to the job queue (ATOM_WORKFLOW_EXECUTOR=queue) and runs none."""
    engine = StepRunner(db=db, settings=settings)
    engine_started = await workflows_app.start(engine, scheduler=False)
    yield engine
    await workflows_app.stop(engine_started)
    async with db.session_scope() as s:  # the jobs a killed worker left behind
        await s.execute(
            text("DELETE FROM procrastinate_jobs WHERE queue_name = :q"), {"q": settings.workflow_queue_name}
        )


async def test_a_worker_killed_mid_step_loses_no_run_and_repeats_no_side_effect(
    settings: Settings, db: Database, driver: StepRunner, spawn_worker: Callable[..., Worker]
) -> None:
    server = HttpServer()
    async with serve(server.app) as url:
        await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="shipper")
        steps = "\n".join(
            f"""  - id: {step}
    {"needs: [" + STEPS[n - 1] + "]" if n else ""}
    action: http_request
    with: {{method: POST, url: "{url}/charge", query: {{delay_after: 0.5}}, json: {{step: {step}}}}}"""
            for n, step in enumerate(STEPS)
        )
        workflow = await make_workflow(db, driver, f"name: orders\nagent: shipper\nsteps:\n{steps}\n")
        victim, survivor = spawn_worker("worker-a"), spawn_worker("worker-b")
        await asyncio.gather(wait_ready(victim), wait_ready(survivor))

        run_ids = []
        for _ in range(RUNS):
            started = await start(driver, workflow)
            assert started.route == "run" and started.run_id is not None
            run_ids.append(started.run_id)

        # Kill worker A while it holds a step whose side effect has happened but is not yet recorded.
        caught: list[StepRun] = []

        async def victim_mid_step() -> bool:
            async with db.session_scope() as s:
                held = (
                    await s.scalars(select(StepRun).where(StepRun.worker == "worker-a", StepRun.status == "running"))
                ).all()
            caught[:] = [step for step in held if step.idempotency_key in server.applied]
            return bool(caught)

        await wait_for(victim_mid_step, 30, "worker-a to be in the middle of a step")
        victim.proc.send_signal(signal.SIGKILL)
        assert victim.proc.wait(timeout=10) == -signal.SIGKILL
        # A caught step may still have been recorded between the look and the kill; the others died mid-step.
        async with db.session_scope() as s:
            still_held = set(
                await s.scalars(
                    select(StepRun.id).where(
                        StepRun.id.in_([step.id for step in caught]),
                        StepRun.worker == "worker-a",
                        StepRun.status == "running",
                    )
                )
            )
        interrupted = still_held
        assert interrupted, "the kill landed after every caught step was recorded"

        async def all_finished() -> bool:
            async with db.session_scope() as s:
                running = await s.scalar(
                    select(func.count()).select_from(WorkflowRun).where(WorkflowRun.status == "running")
                )
            return running == 0

        await wait_for(all_finished, 30, "every run to finish after the crash")

        # Graceful stop of the survivor in the middle of a step: the step finishes first, then it exits 0.
        slow = await make_workflow(
            db,
            driver,
            f"name: slow\nagent: shipper\nsteps:\n  - id: wait\n    action: http_request\n"
            f'    with: {{url: "{url}/slow", query: {{delay: 1}}}}\n',
        )
        last = await start(driver, slow)
        assert last.run_id is not None
        await wait_step(db, last.run_id, "wait", "running", timeout=30)
        survivor.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(survivor.proc.wait, 20) == 0, survivor.text()[-2000:]
        assert "workflow worker stopped" in survivor.text()
        finished = await load_run(db, last.run_id)
        assert finished.status == "succeeded" and finished.steps["wait"].attempt == 1

    async with db.session_scope() as s:
        runs = (await s.scalars(select(WorkflowRun))).all()
        step_rows = (await s.scalars(select(StepRun))).all()
    # No run lost, every run completed.
    runs = [r for r in runs if r.id != last.run_id]
    step_rows = [s for s in step_rows if s.run_id != last.run_id]
    assert sorted(r.id for r in runs) == sorted(run_ids)
    assert Counter(r.status for r in runs) == Counter({"succeeded": RUNS}), [r.error for r in runs if r.error]
    assert len(step_rows) == RUNS * len(STEPS) and all(s.status == "succeeded" for s in step_rows)
    # Each step's side effect happened exactly once, under the step's own key.
    expected = sorted(f"{run_id}:{step}:0" for run_id in run_ids for step in STEPS)
    assert sorted(server.applied) == expected
    # Both workers ran steps, and the steps caught mid-flight were redelivered to the survivor, which
    # sent them again with the same idempotency key (the server answered with the first result).
    by_id = {s.id: s for s in step_rows}
    assert {s.worker for s in step_rows} == {"worker-a", "worker-b"}
    sent = Counter(r["headers"]["idempotency-key"] for r in server.requests if r["path"] == "/charge")
    for step_id in interrupted:
        step = by_id[step_id]
        assert step.attempt >= 2 and step.worker == "worker-b"
        assert sent[step.idempotency_key] >= 2
    redelivered = {s.idempotency_key for s in step_rows if s.attempt >= 2}
    assert {key for key, count in sent.items() if count > 1} <= redelivered


async def test_a_step_outliving_the_shutdown_grace_is_released_and_taken_over_at_once(
    settings: Settings, db: Database, driver: StepRunner, spawn_worker: Callable[..., Worker]
) -> None:
    """SIGTERM past the grace: the worker cancels the step it holds and releases its lease, so another
    worker takes it over at once instead of after the visibility timeout (here far longer than the test)."""
    visibility_s = 60.0
    long_steps = {"ATOM_WORKFLOW_JOB_TIMEOUT_S": "30", "ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S": str(visibility_s)}
    server = HttpServer()
    async with serve(server.app) as url:
        await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="mover")
        workflow = await make_workflow(
            db,
            driver,
            f"name: long\nagent: mover\nsteps:\n  - id: long\n    action: http_request\n"
            f'    with: {{url: "{url}/slow", query: {{delay: 4}}}}\n',
        )
        leaving = spawn_worker("worker-leaving", 0.5, **long_steps)
        await wait_ready(leaving)
        started = await start(driver, workflow)
        assert started.run_id is not None
        await wait_step(db, started.run_id, "long", "running", timeout=30)

        leaving.proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(leaving.proc.wait, 30) == 0, leaving.text()[-2000:]
        assert "released an unfinished workflow step for another worker" in leaving.text()
        released_at = time.monotonic()

        taking_over = spawn_worker("worker-taking-over", **long_steps)
        await wait_ready(taking_over)
        view = await wait_run(db, started.run_id, timeout=30)

    assert time.monotonic() - released_at < visibility_s
    assert view.status == "succeeded"
    assert view.steps["long"].worker == "worker-taking-over" and view.steps["long"].attempt == 2
    assert [r["path"] for r in server.requests] == ["/slow", "/slow"]  # cut once, then run to the end


async def test_a_retry_waits_in_the_queue_for_its_backoff_and_runs_once_due(
    settings: Settings, db: Database, driver: StepRunner, spawn_worker: Callable[..., Worker]
) -> None:
    """A failed attempt's retry is a job deferred by its backoff: it runs once due, from that one job (the
    scheduler's recovery, which would bump the step's dispatch count, is not what ran it)."""
    long_lease = {"ATOM_WORKFLOW_JOB_TIMEOUT_S": "30", "ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S": "60"}
    backoff_s = 1.5
    server = HttpServer()
    arrived: list[float] = []
    server.on_request = lambda entry: arrived.append(time.monotonic())
    async with serve(server.app) as url:
        await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="retrier")
        workflow = await make_workflow(
            db,
            driver,
            f"name: retried\nagent: retrier\nsteps:\n  - id: call\n    action: http_request\n"
            f'    with: {{url: "{url}/flaky/call", query: {{fail: 1}}}}\n'
            f"    retries: {{max: 2, backoff: {backoff_s}}}\n",
        )
        worker = spawn_worker("worker-retry", **long_lease)
        await wait_ready(worker)
        started = await start(driver, workflow)
        assert started.run_id is not None
        view = await wait_run(db, started.run_id, timeout=60)
        async with db.session_scope() as s:
            dispatches = await s.scalar(select(StepRun.dispatches).where(StepRun.run_id == started.run_id))

    assert view.status == "succeeded" and view.steps["call"].attempt == 2
    assert dispatches == 2  # the first dispatch and the deferred retry, nothing redispatched by recovery
    assert [r["path"] for r in server.requests] == ["/flaky/call", "/flaky/call"]
    assert arrived[1] - arrived[0] >= backoff_s  # deferred by its backoff, not run at once


async def test_the_jobs_of_a_worker_whose_heartbeat_stopped_go_back_to_the_queue(
    settings: Settings, db: Database, driver: StepRunner
) -> None:
    """A worker killed mid-job leaves it `doing`; a live worker puts it back once the heartbeat is stale."""
    from atom.workflows.jobqueue import STALLED_AFTER_S, QueueConsumer, build_app

    app = build_app(settings, pool_size=1)
    async with app.open_async():
        dead = await app.job_manager.register_worker()
        await app.configure_task("atom.run_workflow_step", queue=settings.workflow_queue_name).defer_async(
            step_run_id="held-by-the-dead"
        )
        job = await app.job_manager.fetch_job(queues=[settings.workflow_queue_name], worker_id=dead)
        assert job is not None and job.status == "doing"

    consumer = QueueConsumer(settings, concurrency=1, poll_interval_s=0.5, grace_s=1.0)
    handled: list[str] = []

    async def handle(step_run_id: str) -> None:
        handled.append(step_run_id)

    main = await consumer.start(handle)
    try:
        assert await consumer.sweep_stalled() == 0  # the holder's heartbeat is fresh: it may be alive
        async with db.session_scope() as s:
            await s.execute(
                text(
                    "UPDATE procrastinate_workers SET last_heartbeat = now() - make_interval(secs => :s) WHERE id = :w"
                ),
                {"s": STALLED_AFTER_S + 5, "w": dead},
            )
        assert await consumer.sweep_stalled() == 1
        await wait_for(lambda: _is(handled, ["held-by-the-dead"]), 30, "the requeued job to be run")
    finally:
        consumer.stop_taking()
        await asyncio.wait_for(main, 30)
        await consumer.close()
    async with db.session_scope() as s:
        left = await s.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE queue_name = :q"), {"q": settings.workflow_queue_name}
        )
    assert left == 0  # handled jobs are deleted: the outcome lives in the step's row


async def _is(value: object, expected: object) -> bool:
    return value == expected
