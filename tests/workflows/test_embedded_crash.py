"""The embedded default (`atom-os serve`, SQLite) killed with SIGKILL mid-step: the restarted server sees
that the step's lease holder was its own earlier incarnation on this host, now dead, reclaims the step
at start and finishes the run, with the visibility timeout far longer than the test may take."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.conftest import TEST_SECRET_KEY
from tests.support.agents import make_agent
from tests.support.integration_servers import HttpServer, serve
from tests.workflows.conftest import wait_for

ATOM_OS = str(Path(sys.executable).parent / "atom-os")
VISIBILITY_S = 600  # a restart that waited for the lease to expire could not finish within the test


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
    values.update(
        ATOM_DATA_DIR=str(tmp_path / "data"),
        ATOM_SECRET_KEY=TEST_SECRET_KEY,
        ATOM_PORT=str(_free_port()),
        ATOM_LOG_FORMAT="json",
        ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S=str(VISIBILITY_S),
        ATOM_WORKFLOW_JOB_TIMEOUT_S="60",
    )
    return values


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([ATOM_OS, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def _serve(env: dict[str, str], log: Path, procs: list[subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    proc = _spawn(env, log)
    procs.append(proc)
    base = f"http://127.0.0.1:{env['ATOM_PORT']}"

    async def live() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"atom-os serve exited: {_tail(log)}")
        try:
            async with httpx.AsyncClient() as client:
                return (await client.get(f"{base}/health/live", timeout=2)).status_code == 200
        except httpx.HTTPError:
            return False

    await wait_for(live, 120, "atom-os serve to answer")  # `atom-os` imports take seconds on a busy machine
    return proc


async def test_a_restart_after_sigkill_reclaims_the_interrupted_step_at_once(
    env: dict[str, str], servers: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    init = await asyncio.to_thread(
        subprocess.run, [ATOM_OS, "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert init.returncode == 0, init.stderr
    key = next(line for line in init.stdout.splitlines() if line.startswith("atom_"))
    settings = Settings(_env_file=None, data_dir=Path(env["ATOM_DATA_DIR"]), secret_key=TEST_SECRET_KEY)  # type: ignore[call-arg]
    db = Database(settings)
    try:
        await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="durable")
    finally:
        await db.dispose()

    api = HttpServer()
    async with serve(api.app) as url:
        first = await _serve(env, tmp_path / "first.log", servers)
        base = f"http://127.0.0.1:{env['ATOM_PORT']}"
        headers = {"Authorization": f"Bearer {key}"}
        source = f"""
name: durable
agent: durable
steps:
  - id: charge
    action: http_request
    with: {{method: POST, url: "{url}/charge", query: {{delay_after: 120}}, json: {{amount: 5}}}}
  - id: receipt
    needs: [charge]
    action: noop
    with: {{charge: "{{{{ steps.charge.output.json.id }}}}"}}
"""
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
            created = await client.post("/api/workflows", json={"source": source})
            assert created.status_code == 201, created.text
            started = await client.post("/api/workflows/durable/runs", json={})
            assert started.status_code == 202, started.text
            run_id = started.json()["run_id"]
            assert run_id is not None

            async def charged() -> bool:
                return bool(api.applied)

            await wait_for(charged, 60, "the charge to be applied")
            first.kill()  # SIGKILL mid-step: the step stays `running`, its lease 600 s away
            first.wait(timeout=10)

            await _serve(env, tmp_path / "second.log", servers)

            async def finished() -> bool:
                run = await client.get(f"/api/workflow-runs/{run_id}")
                return bool(run.status_code == 200 and run.json()["status"] not in ("running", "pending"))

            await wait_for(finished, 90, "the run to finish after the restart")
            run = (await client.get(f"/api/workflow-runs/{run_id}")).json()
    assert run["status"] == "succeeded", run
    steps = {s["step_key"]: s for s in run["steps"]}
    assert steps["charge"]["attempt"] == 2  # claimed again by the restarted server
    assert steps["receipt"]["output"] == {"charge": "ch_1"}  # the replayed answer: charged once
    assert len(api.applied) == 1
