"""The installed `atom-os` as a user runs it: real processes, a real port, real signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import databases

ATOM_OS = str(Path(sys.executable).parent / "atom-os")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ATOM_OS, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
    env.update(ATOM_DATA_DIR=str(tmp_path / "data"), ATOM_PORT=str(_free_port()), ATOM_LOG_FORMAT="json")
    return env


@pytest.fixture
def stopper(base_env: dict[str, str]) -> Iterator[None]:
    yield
    _run(base_env, "stop", "--force", "--timeout", "5")


def _daemon_lifecycle(env: dict[str, str]) -> None:
    init = _run(env, "init")
    assert init.returncode == 0, init.stderr
    key = next(line for line in init.stdout.splitlines() if line.startswith("atom_"))

    started = _run(env, "daemon")
    assert started.returncode == 0, started.stdout + started.stderr
    pid = int(Path(env["ATOM_DATA_DIR"], "atom.pid").read_text().split()[0])
    again = _run(env, "daemon")
    assert again.returncode == 1 and "already running" in again.stderr

    status = _run(env, "status")
    assert status.returncode == 0, status.stdout
    assert str(pid) in status.stdout and "ready" in status.stdout and f":{env['ATOM_PORT']}" in status.stdout

    url = f"http://127.0.0.1:{env['ATOM_PORT']}"
    me = httpx.get(f"{url}/api/me", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert me.status_code == 200 and me.json()["username"] == "admin"

    stopped = _run(env, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not Path(env["ATOM_DATA_DIR"], "atom.pid").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    log = Path(env["ATOM_DATA_DIR"], "atom.log").read_text()
    assert "Shutting down" in log and "Finished server process" in log

    after = _run(env, "status")
    assert after.returncode == 1 and "not running" in after.stdout


def test_daemon_status_stop_on_sqlite(base_env: dict[str, str], stopper: None) -> None:
    _daemon_lifecycle(base_env)


async def test_daemon_on_postgres(base_env: dict[str, str], stopper: None) -> None:
    server = databases.postgres_server_url()
    if server is None or not await databases.pg_reachable(server):
        databases.missing_service(databases.PG_HINT)
    assert server is not None
    url = await databases.create_pg_database(server)
    try:
        import asyncio

        await asyncio.to_thread(_daemon_lifecycle, {**base_env, "ATOM_DATABASE_URL": url})
    finally:
        await databases.drop_pg_database(server, url)


def test_stale_pid_file_is_cleaned(base_env: dict[str, str], stopper: None) -> None:
    assert _run(base_env, "init").returncode == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    Path(base_env["ATOM_DATA_DIR"], "atom.pid").write_text(f"{dead.pid}\n")
    status = _run(base_env, "status")
    assert status.returncode == 1 and "stale PID file" in status.stdout
    Path(base_env["ATOM_DATA_DIR"], "atom.pid").write_text(f"{dead.pid}\n")
    started = _run(base_env, "daemon")
    assert started.returncode == 0 and "stale PID file" in started.stdout


def _wait_live(proc: subprocess.Popen[str], url: str, timeout: float = 90) -> None:
    """Until the server answers its liveness probe; a server that exits or never answers fails the test
    with what it printed (a loaded CI machine can take many seconds to start one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"atom-os serve exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(f"{url}/health/live", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"atom-os serve did not answer in {timeout} s: {proc.communicate()[0]}")


def test_in_flight_request_finishes_on_sigterm(base_env: dict[str, str]) -> None:
    """`atom-os serve` in the foreground: SIGTERM lets the request already under way complete."""
    assert _run(base_env, "init").returncode == 0
    proc = subprocess.Popen(
        [ATOM_OS, "serve"], env=base_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    url = f"http://127.0.0.1:{base_env['ATOM_PORT']}"
    try:
        _wait_live(proc, url)
        # Open a request whose body we send slowly, so it is in flight when SIGTERM arrives.
        with socket.create_connection(("127.0.0.1", int(base_env["ATOM_PORT"]))) as conn:
            body = b'{"username": "late", "role": "viewer"}'
            conn.sendall(
                b"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            conn.sendall(body[10:])
            reply = conn.recv(65536).decode()
        assert reply.startswith("HTTP/1.1 401")  # answered (no key given), not dropped
        # uvicorn finishes gracefully, then re-raises the signal it caught: exit status -SIGTERM.
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        output = proc.stdout.read() if proc.stdout else ""
        assert "Shutting down" in output and "Finished server process" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ATOM_PORT", "notanumber"),
        ("ATOM_LOG_LEVEL", "LOUD"),
        ("ATOM_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/none"),
        ("ATOM_SECRET_KEY", "not-a-fernet-key"),
    ],
)
def test_bad_setting_is_one_clear_line(base_env: dict[str, str], variable: str, value: str) -> None:
    if variable == "ATOM_SECRET_KEY":
        assert _run(base_env, "init").returncode == 0
    result = _run({**base_env, variable: value}, "serve", timeout=30)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and "Fix" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_a_foreground_server_shows_in_status_and_stops_gracefully(base_env: dict[str, str], stopper: None) -> None:
    assert _run(base_env, "init").returncode == 0
    pid_file = Path(base_env["ATOM_DATA_DIR"], "atom.pid")
    server = subprocess.Popen(
        [ATOM_OS, "serve"], env=base_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_live(server, f"http://127.0.0.1:{base_env['ATOM_PORT']}")
        assert pid_file.read_text().split()[0] == str(server.pid)
        status = _run(base_env, "status")
        assert status.returncode == 0 and str(server.pid) in status.stdout, status.stdout
        second = _run(base_env, "serve")
        assert second.returncode == 1 and "already running" in second.stderr
        assert _run(base_env, "stop").returncode == 0
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
        assert not pid_file.exists()
    finally:
        if server.poll() is None:
            server.kill()
