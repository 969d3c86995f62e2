"""`atom-os serve`: the foreground server."""

from __future__ import annotations

import os

import typer
import uvicorn

from atom.cli.common import fail, load_settings
from atom.cli.pidfile import remove_if_ours, running_pid, write_pid_file
from atom.config import Settings
from atom.db.session import Database
from atom.errors import ConfigurationError
from atom.observability.http_limits import bounded_protocol
from atom.process import private_dir

HOST_OPTION = typer.Option(None, "--host", help="Address to bind (overrides ATOM_HOST).")
PORT_OPTION = typer.Option(None, "--port", min=1, max=65535, help="Port to bind (overrides ATOM_PORT).")


def with_address(settings: Settings, host: str | None, port: int | None) -> Settings:
    """The settings with `--host` / `--port` applied (each overrides its ATOM_ setting)."""
    update: dict[str, object] = {}
    if host is not None:
        if not host.strip() or any(c.isspace() for c in host):
            fail(f"--host: {host!r} is not an address.")
        update["host"] = host
    if port is not None:
        update["port"] = port
    return settings.model_copy(update=update) if update else settings


def build_server(settings: Settings) -> uvicorn.Server:
    from atom.main import create_app  # the whole app: imported only by the commands that serve it

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our structlog set-up owns logging
        # Our middleware logs each request with its id; uvicorn's access line (dropped at WARNING by our
        # set-up) would otherwise still be formatted for every response.
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
        proxy_headers=False,
        # Request heads are bounded while they are read (431 past ATOM_MAX_HEADER_BYTES / ATOM_MAX_HEADERS).
        http=bounded_protocol(settings.max_header_bytes, settings.max_headers),
        # Chat streams one small WebSocket message per token: compressing each costs both ends more
        # CPU (and latency) than the few bytes it saves.
        ws_per_message_deflate=False,
    )
    return uvicorn.Server(config)


async def preflight(settings: Settings) -> None:
    from atom.process import check_startup

    db = Database(settings)
    try:
        await check_startup(db, settings)
    finally:
        await db.dispose()


def serve(host: str | None = HOST_OPTION, port: int | None = PORT_OPTION) -> None:
    """Run Atom in the foreground (Ctrl-C or SIGTERM stops it gracefully)."""
    import asyncio

    settings = with_address(load_settings(), host, port)
    private_dir(settings.data_dir)
    other = running_pid(settings)
    if other is not None and other != os.getpid():
        fail(f"Atom is already running (pid {other}, {settings.base_url}). Use `atom-os stop` first.")
    try:
        asyncio.run(preflight(settings))
    except ConfigurationError as exc:
        fail(exc.one_line())
    server = build_server(settings)
    # A foreground server is visible to `atom-os status` and `stop` too (a daemon's child finds its own pid here).
    write_pid_file(settings.pid_file, os.getpid(), settings.base_url)
    try:
        server.run()
    finally:
        remove_if_ours(settings.pid_file)
    if not server.started:
        fail(f"the server did not start on {settings.host}:{settings.port} (is the port in use?). See the log above.")
