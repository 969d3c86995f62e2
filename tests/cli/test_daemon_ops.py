"""`atom-os daemon` / `serve` as an operator meets them: a port someone else holds, --host/--port,
owner-only files, and no API key in any file the server writes after the CLI has used it."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import websockets

from tests.cli.test_daemon import ATOM_OS, _free_port
from tests.cli.test_daemon import _run as _run_briefly


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return _run_briefly(env, *args, timeout=240)  # `daemon` waits for its server, slow on a loaded machine


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
    env.update(ATOM_DATA_DIR=str(tmp_path / "data"), ATOM_PORT=str(_free_port()), ATOM_LOG_FORMAT="json")
    return env


@pytest.fixture
def stopper(base_env: dict[str, str]) -> Iterator[None]:
    yield
    _run(base_env, "stop", "--force", "--timeout", "5")


class _Impostor(BaseHTTPRequestHandler):
    """Another program on the port that also answers /health/live with 200."""

    def do_GET(self) -> None:
        body = b'{"status":"alive"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def impostor(base_env: dict[str, str]) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", int(base_env["ATOM_PORT"])), _Impostor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_daemon_on_a_port_held_by_another_server_fails_with_the_bind_error(
    base_env: dict[str, str], impostor: ThreadingHTTPServer, stopper: None
) -> None:
    assert _run(base_env, "init").returncode == 0
    started = _run(base_env, "daemon")
    assert started.returncode == 1, started.stdout + started.stderr
    assert "running" not in started.stdout
    assert f"could not listen on 127.0.0.1:{base_env['ATOM_PORT']}" in " ".join(started.stderr.split())
    assert "address already in use" in started.stderr.lower()
    assert not Path(base_env["ATOM_DATA_DIR"], "atom.pid").exists()
    assert _run(base_env, "status").returncode == 1


def test_host_and_port_flags_override_the_settings(base_env: dict[str, str], stopper: None) -> None:
    assert _run(base_env, "init").returncode == 0
    port = _free_port()
    started = _run(base_env, "daemon", "--host", "127.0.0.1", "--port", str(port))
    assert started.returncode == 0, started.stderr
    assert f"http://127.0.0.1:{port}" in started.stdout
    pid = int(Path(base_env["ATOM_DATA_DIR"], "atom.pid").read_text().split()[0])
    live = httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=5)
    assert live.json() == {"status": "alive", "pid": pid}
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{base_env['ATOM_PORT']}/health/live", timeout=2)
    status = _run(base_env, "status")
    assert status.returncode == 0 and f"127.0.0.1:{port}" in status.stdout, status.stdout
    assert _run(base_env, "serve", "--port", "0").returncode == 2  # typer refuses it (min 1)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _raw_ws_with_query_token(url: str, key: str) -> None:
    """A client that puts the key in the URL anyway: the server refuses it, and no log may keep the key."""
    with_query = f"{url.replace('http://', 'ws://')}/ws/supervision/no-such-session?token={key}"
    try:
        async with websockets.connect(with_query) as ws:
            await ws.recv()
    except websockets.exceptions.WebSocketException:
        pass


def test_no_api_key_in_any_file_after_cli_use(base_env: dict[str, str], stopper: None) -> None:
    """The CLI's WebSocket commands, a query-string token and a key-bearing URL, at DEBUG: no file holds the key."""
    env = {**base_env, "ATOM_LOG_LEVEL": "DEBUG"}
    data = Path(env["ATOM_DATA_DIR"])
    init = _run(env, "init")
    assert init.returncode == 0, init.stderr
    key = next(line for line in init.stdout.splitlines() if line.startswith("atom_"))
    assert _run(env, "daemon").returncode == 0
    url = f"http://127.0.0.1:{env['ATOM_PORT']}"
    created = httpx.post(
        f"{url}/api/agents", json={"name": "clerk"}, headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert created.status_code == 201, created.text

    chat = subprocess.run(
        [ATOM_OS, "chat", "clerk", "--key", key, "--url", url],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert chat.returncode == 0 and "session" in chat.stdout, chat.stdout + chat.stderr
    supervise = subprocess.run(
        [ATOM_OS, "supervise", "no-such-session", "--key", key, "--url", url],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert supervise.returncode == 1 and "refused the connection" in supervise.stderr, supervise.stderr
    asyncio.run(_raw_ws_with_query_token(url, key))
    assert httpx.get(f"{url}/api/me?api_key={key}&token={key}", headers={"X-API-Key": key}).status_code == 200
    assert _run(env, "stop").returncode == 0

    log = data / "atom.log"
    text = log.read_text()
    assert "/ws/chat/clerk" in text and "/ws/supervision/no-such-session" in text  # the lines were logged...
    assert "token=[redacted]" in text  # ...with the query value replaced
    for path in data.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), f"the API key is in {path}"
    assert _mode(data) == 0o700
    assert _mode(log) == 0o600
    json.loads(text.splitlines()[-1])  # still one JSON object a line


def test_log_and_pid_files_are_owner_only_even_if_they_existed(base_env: dict[str, str], stopper: None) -> None:
    data = Path(base_env["ATOM_DATA_DIR"])
    assert _run(base_env, "init").returncode == 0
    data.chmod(0o755)
    (data / "atom.log").write_text("")
    (data / "atom.log").chmod(0o644)
    assert _run(base_env, "daemon").returncode == 0
    assert _mode(data) == 0o700
    assert _mode(data / "atom.log") == 0o600
    assert _mode(data / "atom.pid") == 0o600
