"""Workflow engine speed on a 5-step workflow of `noop` steps (issue 5).

Per-step overhead: in a chain, the time from one step's completion to the next one's (the previous
step's record transaction and commit, handing the next step to a worker, its claim transaction with
the governance check, and the action itself), from the engine's own step timestamps. Floor: a plain
`await` of the same `noop` action with the same inputs, measured in the same run.

- embedded default (SQLite, in-process worker pool): runs one at a time for the per-step overhead
  (target P50 <= 2 ms), then runs started together for runs/s.
- scale-out (PostgreSQL job queue + Redis events, two `atom-os worker` processes; needs
  ATOM_TEST_POSTGRES_URL and ATOM_TEST_REDIS_URL): per-step overhead of runs one at a time; then a
  backlog of runs started together through the engine API (as `atom-os serve` defers them) while no
  worker runs, drained by two fresh workers: step executions/s from the first step's start to the last
  step's end (target >= 400/s), and the CPU the workers and their database backends spend per step
  while draining; then that CPU again on a second backlog started while the workers idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from _common import ATOM_OS, summary, verdict
from atom.agents import service as agents_service
from atom.agents.schemas import AgentCreate
from atom.audit import service as audit
from atom.config import Settings
from atom.db import migrate
from atom.db.session import Database
from atom.events.bus import build_bus, get_bus, reset_bus, set_bus
from atom.governance.policy import TriggerKind
from atom.registries import ensure_registries
from atom.workflows import app as workflows_app
from atom.workflows import flows, service
from atom.workflows.actions import ActionContext
from atom.workflows.machine import WORKFLOW_COMPLETED
from atom.workflows.models import StepRun
from atom.workflows.runner import StepRunner

STEPS = 5
WORKFLOW = "name: bench\nagent: bench\nsteps:\n" + "".join(
    f"  - id: s{n}\n" + (f"    needs: [s{n - 1}]\n" if n else "") + f"    action: noop\n    with: {{n: {n}}}\n"
    for n in range(STEPS)
)


# --- the floor: a plain await of the same no-op step --------------------------------------------


async def plain_await_floor(settings: Settings, db: Database, calls: int) -> dict[str, float]:
    import httpx

    action = ensure_registries().actions.get("noop")
    assert action is not None
    params = action.validate({"n": 1})
    async with httpx.AsyncClient() as http:
        ctx = ActionContext(
            settings=settings,
            db=db,
            http=http,
            cipher=Fernet(Fernet.generate_key()),
            idempotency_key="bench:s1:0",
            run_id="bench",
            step_id="s1",
            agent_id="bench",
        )
        for _ in range(1000):
            await action.handler(params, ctx)
        samples = []
        for _ in range(calls):
            started = time.perf_counter()
            await action.handler(params, ctx)
            samples.append((time.perf_counter() - started) * 1000)
    return summary(samples)


async def bare_transaction_floor(db: Database, calls: int) -> dict[str, float]:
    """A second floor: one session with `SELECT 1` and a commit on the same database (a step needs two)."""
    for _ in range(50):
        async with db.session_scope() as s:
            await s.execute(text("SELECT 1"))
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        async with db.session_scope() as s:
            await s.execute(text("SELECT 1"))
        samples.append((time.perf_counter() - started) * 1000)
    return summary(samples)


# --- shared set-up ----------------------------------------------------------------------------


async def prepare(db: Database, settings: Settings, engine: StepRunner) -> str:
    await migrate.upgrade(db)
    async with db.session_scope() as s:
        await agents_service.create_agent(
            session=s,
            agent_in=AgentCreate(name="bench", confidence=0.95),
            actor=audit.Actor.system(),
            settings=settings,
            may_promote=True,  # set up as an approver would
        )
        workflow, _ = await service.create_workflow(
            session=s, source=WORKFLOW, fmt=None, registry=engine.registry, actor=audit.Actor.system()
        )
    return workflow.id


async def start_run(engine: StepRunner, workflow_id: str) -> str:
    result = await flows.start_workflow(
        engine, workflow_ref=workflow_id, inputs={}, source="bench", kind=TriggerKind.MANUAL, payload={}
    )
    assert result.run_id is not None, result.reason
    return result.run_id


class Completions:
    """Runs finished, from the `workflow.completed` events on the bus (in-process, or Redis from workers)."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self._changed = asyncio.Event()
        get_bus().on(WORKFLOW_COMPLETED, self._on_completed)

    def _on_completed(self, payload: dict[str, Any]) -> None:
        self.status[str(payload["run_id"])] = str(payload["status"])
        self._changed.set()

    async def wait(self, run_ids: list[str], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while missing := [r for r in run_ids if r not in self.status]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(missing)} runs still running after {timeout}s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=1)
        failed = [r for r in run_ids if self.status[r] != "succeeded"]
        if failed:
            raise RuntimeError(f"{len(failed)} runs did not succeed")


async def step_times(db: Database, run_ids: list[str]) -> list[list[tuple[datetime, datetime]]]:
    async with db.session_scope() as s:
        rows = (
            await s.execute(
                select(StepRun.run_id, StepRun.position, StepRun.started_at, StepRun.finished_at)
                .where(StepRun.run_id.in_(run_ids))
                .order_by(StepRun.run_id, StepRun.position)
            )
        ).all()
    by_run: dict[str, list[tuple[datetime, datetime]]] = {}
    for run_id, _position, started, finished in rows:
        by_run.setdefault(run_id, []).append((started, finished))
    return list(by_run.values())


def step_overheads(runs: list[list[tuple[datetime, datetime]]]) -> list[float]:
    """ms between consecutive step completions of each run (steps 2..5)."""
    samples = []
    for steps in runs:
        for (_, before), (_, after) in itertools.pairwise(steps):
            samples.append((after - before).total_seconds() * 1000)
    return samples


def executions_per_s(runs: list[list[tuple[datetime, datetime]]]) -> float:
    first = min(started for steps in runs for started, _ in steps)
    last = max(finished for steps in runs for _, finished in steps)
    return sum(len(steps) for steps in runs) / max((last - first).total_seconds(), 1e-9)


HEADER = f"{'figure':<44}{'P50 ms':>9}{'P99 ms':>9}{'P50 x await':>13}{'P50 x txn':>11}"


def overhead_row(name: str, s: dict[str, float], floor: dict[str, float], txn: dict[str, float]) -> str:
    return f"{name:<44}{s['p50']:>9.3f}{s['p99']:>9.3f}{s['p50'] / floor['p50']:>13.0f}{s['p50'] / txn['p50']:>11.1f}"


def print_overheads(floor: dict[str, float], txn: dict[str, float], name: str, overhead: dict[str, float]) -> None:
    print(HEADER)
    print(overhead_row("plain await noop (floor)", floor, floor, txn))
    print(overhead_row("bare session + SELECT 1 + commit (floor 2)", txn, floor, txn))
    print(overhead_row(name, overhead, floor, txn))


# --- embedded (SQLite) --------------------------------------------------------------------------


async def embedded(sequential: int, concurrent: int, floor_calls: int) -> bool:
    with tempfile.TemporaryDirectory(prefix="atom-bench-") as tmp:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, data_dir=Path(tmp), secret_key=Fernet.generate_key().decode(), log_level="WARNING"
        )
        db = Database(settings)
        engine = StepRunner(db=db, settings=settings)
        try:
            workflow_id = await prepare(db, settings, engine)
            engine_started = await workflows_app.start(engine, scheduler=False)
            done = Completions()
            floor = await plain_await_floor(settings, db, floor_calls)
            txn = await bare_transaction_floor(db, 500)
            warm = [await start_run(engine, workflow_id) for _ in range(20)]
            await done.wait(warm)
            run_ids = []
            for _ in range(sequential):  # one run at a time: the per-step overhead without queueing
                run_id = await start_run(engine, workflow_id)
                await done.wait([run_id])
                run_ids.append(run_id)
            overhead = summary(step_overheads(await step_times(db, run_ids)))
            started = time.perf_counter()
            batch = await asyncio.gather(*(start_run(engine, workflow_id) for _ in range(concurrent)))
            await done.wait(list(batch))
            elapsed = time.perf_counter() - started
        finally:
            await workflows_app.stop(engine_started)
            await db.dispose()
    runs_per_s = concurrent / elapsed
    print(
        f"\nembedded default (SQLite, in-process pool of {settings.workflow_concurrency}), {STEPS}-step noop workflow"
    )
    print_overheads(floor, txn, f"per-step overhead ({sequential} runs, one at a time)", overhead)
    print(
        f"runs/s, {concurrent} runs started together: {runs_per_s:.1f} "
        f"({runs_per_s * STEPS:.0f} step executions/s, incl. starting each run)"
    )
    ok = overhead["p50"] <= 2.0
    print(f"target per-step overhead P50 <= 2 ms: {overhead['p50']:.3f} ms {verdict(ok)}")
    return ok


# --- scale-out (PostgreSQL + Redis, 2 atom-os worker processes) ----------------------------------


@contextmanager
def workers(env: dict[str, str], count: int, concurrency: int, logs: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = []
    try:
        for n in range(count):
            with (logs / f"worker-{n}.log").open("wb") as out:
                argv = [ATOM_OS, "worker", "--concurrency", str(concurrency), "--worker-id", f"bench-{n}"]
                procs.append(subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT))
        deadline = time.monotonic() + 180
        for n, proc in enumerate(procs):
            log = logs / f"worker-{n}.log"
            while "workflow worker ready" not in log.read_text(errors="replace"):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {n} did not start: {log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.1)
        yield procs
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


async def scale_out(pg_server: str, redis_url: str, runs: int, concurrency: int, floor_calls: int) -> bool:
    name = f"atom_bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server, timeout=5)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(pg_server)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    queue = f"atom:bench:{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory(prefix="atom-bench-") as tmp:
            values: dict[str, Any] = {
                "data_dir": Path(tmp),
                "database_url": url,
                "redis_url": redis_url,
                "secret_key": Fernet.generate_key().decode(),
                "workflow_executor": "queue",
                "workflow_queue_name": queue,
                "log_level": "WARNING",
            }
            settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
            env = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
            env.update({f"ATOM_{k.upper()}": str(v) for k, v in values.items()})
            env["ATOM_LOG_LEVEL"] = "INFO"
            db = Database(settings)
            bus = build_bus(settings)  # Redis: the workers' workflow.completed events reach this process
            await bus.start()
            set_bus(bus)
            engine = StepRunner(db=db, settings=settings)  # the API side: defers steps, runs none
            try:
                workflow_id = await prepare(db, settings, engine)
                engine_started = await workflows_app.start(engine, scheduler=False)
                done = Completions()
                floor = await plain_await_floor(settings, db, floor_calls)
                txn = await bare_transaction_floor(db, 500)
                with workers(env, 2, concurrency, Path(tmp)):
                    warm = [await start_run(engine, workflow_id) for _ in range(20)]
                    await done.wait(warm)
                    sequential = []
                    for _ in range(50):
                        sequential.append(await start_run(engine, workflow_id))
                        await done.wait(sequential[-1:])
                # The backlog: runs started together while no worker runs, then two fresh workers drain it,
                # so the figure is the workers' own rate, not shared with the API starting runs.
                started = time.perf_counter()
                batch = list(await asyncio.gather(*(start_run(engine, workflow_id) for _ in range(runs))))
                start_rate = runs / (time.perf_counter() - started)
                with workers(env, 2, concurrency, Path(tmp)) as procs:
                    ready = await cpu_seconds(db, procs)  # the drain starts as the workers get ready
                    await done.wait(batch)
                    drained = await cpu_seconds(db, procs)
                    # A second backlog, started while the same workers idle: the CPU they (and the database
                    # backends serving them) spend per step, which the machine's other load changes little.
                    before = await cpu_seconds(db, procs)
                    second = list(await asyncio.gather(*(start_run(engine, workflow_id) for _ in range(runs))))
                    await done.wait(second)
                    after = await cpu_seconds(db, procs)
                overhead = summary(step_overheads(await step_times(db, sequential)))
                rate = executions_per_s(await step_times(db, batch))
                steps = runs * STEPS
                worker_ms, pg_ms = cpu_ms_per_step(before, after, steps)
                drain_worker_ms, drain_pg_ms = cpu_ms_per_step(ready, drained, steps)
            finally:
                await workflows_app.stop(engine_started)
                await db.dispose()
                await bus.stop()
                reset_bus()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    print(
        f"\nscale-out (job queue in PostgreSQL, Redis events, 2 atom-os worker processes x {concurrency}), "
        f"{STEPS}-step noop workflow"
    )
    print_overheads(floor, txn, "per-step overhead (50 runs, one at a time)", overhead)
    print(f"API: {runs} runs started together: {start_rate:.1f} runs/s (each through the trigger interceptor)")
    print(f"2 workers drain those {runs} runs: {rate:.0f} step executions/s (first step start to last step end)")
    print(
        f"CPU per step while draining: workers {drain_worker_ms:.2f} ms + their PostgreSQL backends "
        f"{drain_pg_ms:.2f} ms -> {2000 / (drain_worker_ms + drain_pg_ms):.0f} steps/s if 2 cores did only this"
    )
    cpu_ms = worker_ms + pg_ms
    print(
        f"CPU per step: workers {worker_ms:.2f} ms + their PostgreSQL backends {pg_ms:.2f} ms = "
        f"{cpu_ms / txn['p50']:.1f} x the bare transaction's P50 -> {2000 / cpu_ms:.0f} steps/s "
        "if 2 cores did only this"
    )
    ok = rate >= 400
    print(f"target >= 400 step executions/s: {rate:.0f}/s {verdict(ok)}")
    return ok


CpuSeconds = tuple[dict[int, float], dict[int, float]]


def cpu_ms_per_step(before: CpuSeconds, after: CpuSeconds, steps: int) -> tuple[float, float]:
    """CPU ms per step of the workers and of their database backends between two `cpu_seconds`."""
    workers_s = sum(v - before[0].get(p, 0.0) for p, v in after[0].items())
    backends_s = sum(v - before[1].get(p, 0.0) for p, v in after[1].items())
    return workers_s / steps * 1000, backends_s / steps * 1000


async def cpu_seconds(db: Database, procs: list[subprocess.Popen[bytes]]) -> CpuSeconds:
    """CPU seconds used so far by each worker process and by each database backend serving one."""
    import psutil

    def used(pid: int) -> float:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    ports: set[int] = set()
    for proc in procs:
        for conn in psutil.Process(proc.pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == 5432:
                ports.add(conn.laddr.port)
    async with db.session_scope() as s:
        rows = (
            await s.execute(text("SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL"))
        ).all()
    backends = [pid for pid, port in rows if port in ports]
    return {p.pid: used(p.pid) for p in procs}, {pid: used(pid) for pid in backends}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sequential", type=int, default=100, help="embedded runs measured one at a time")
    parser.add_argument("--concurrent", type=int, default=100, help="runs started together")
    parser.add_argument("--worker-concurrency", type=int, default=16)
    parser.add_argument("--floor-calls", type=int, default=20000)
    parser.add_argument("--part", choices=("all", "embedded", "scale-out"), default="all")

    args = parser.parse_args()
    ensure_registries()
    ok = True
    if args.part in ("all", "embedded"):
        ok = asyncio.run(embedded(args.sequential, args.concurrent, args.floor_calls))
    pg, redis = os.environ.get("ATOM_TEST_POSTGRES_URL"), os.environ.get("ATOM_TEST_REDIS_URL")
    if args.part == "embedded":
        pass
    elif pg and redis:
        ok = asyncio.run(scale_out(pg, redis, args.concurrent, args.worker_concurrency, args.floor_calls)) and ok
    else:
        print(
            "\nscale-out: skipped (set ATOM_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test "
            "and ATOM_TEST_REDIS_URL=redis://127.0.0.1:6379/15)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
