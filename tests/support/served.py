"""`atom-os serve` as a real process, for tests that kill it (SIGKILL) and start it again on the same data.

`serve_env` is the environment of such a server (its own data directory and port, a visibility
timeout far longer than a test may take: a restart that waited for a lease to expire could not
finish in time); `init_with_agent` runs `atom-os init` and adds an agent; `start_server` spawns
`atom-os serve` and waits until it answers; `Servers` kills what is left when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.conftest import TEST_SECRET_KEY
from tests.support.agents import make_agent

ATOM_OS = str(Path(sys.executable).parent / "atom-os")
VISIBILITY_S = 600
Servers = list[subprocess.Popen[bytes]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_env(tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
    values.update(
        ATOM_DATA_DIR=str(tmp_path / "data"),
        ATOM_SECRET_KEY=TEST_SECRET_KEY,
        ATOM_PORT=str(free_port()),
        ATOM_LOG_FORMAT="json",
        ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S=str(VISIBILITY_S),
        ATOM_WORKFLOW_JOB_TIMEOUT_S="60",
    )
    return values


def base_url(env: dict[str, str]) -> str:
    return f"http://127.0.0.1:{env['ATOM_PORT']}"


def stop_all(servers: Servers) -> None:
    for proc in servers:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def init_with_agent(env: dict[str, str], agent: str) -> str:
    """`atom-os init` on the server's data directory and an AUTONOMOUS agent named `agent`; the admin key."""
    init = await asyncio.to_thread(
        subprocess.run, [ATOM_OS, "init"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert init.returncode == 0, init.stderr
    key = next(line for line in init.stdout.splitlines() if line.startswith("atom_"))
    settings = Settings(_env_file=None, data_dir=Path(env["ATOM_DATA_DIR"]), secret_key=TEST_SECRET_KEY)  # type: ignore[call-arg]
    db = Database(settings)
    try:
        await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name=agent)
    finally:
        await db.dispose()
    return key


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([ATOM_OS, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


async def start_server(env: dict[str, str], log: Path, servers: Servers) -> subprocess.Popen[bytes]:
    """`atom-os serve`, once it answers its liveness probe."""
    proc = _spawn(env, log)
    servers.append(proc)
    base = base_url(env)

    deadline = asyncio.get_running_loop().time() + 120  # `atom-os` imports take seconds on a busy machine
    async with httpx.AsyncClient() as client:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"atom-os serve exited: {_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base}/health/live", timeout=2)).status_code == 200:
                    return proc
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError("timed out waiting for atom-os serve to answer")
            await asyncio.sleep(0.05)
