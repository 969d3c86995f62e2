"""`atom-os daemon` / `status` / `stop`: Atom as a background service with a PID file and a log file."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time

import httpx
import psutil
import typer
from rich.table import Table

from atom.cli.common import console, fail, load_settings
from atom.cli.pidfile import recorded_url, remove_if_names, running_pid, write_pid_file
from atom.cli.server import HOST_OPTION, PORT_OPTION, preflight, with_address
from atom.config import Settings
from atom.errors import ConfigurationError
from atom.process import open_private, private_dir

START_TIMEOUT_S = 60.0  # generous: a loaded machine can take many seconds to import and migrate-check
ZOMBIE_REAP_WAIT_S = 2.0


def _redacted_database(settings: Settings) -> str:
    url = settings.resolved_database_url
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        rest = f"{user}:***@{host}" if ":" in credentials else f"{user}@{host}"
    return f"{scheme.split('+', 1)[0]}://{rest}"


def _answering_pid(settings: Settings) -> int | None:
    """The pid the server on the configured address reports in `/health/live`, or None (no answer, not Atom)."""
    try:
        response = httpx.get(f"{settings.base_url}/health/live", timeout=1.0)
        body = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None
    pid = body.get("pid") if isinstance(body, dict) else None
    return pid if isinstance(pid, int) else None


def _wait_until_live(settings: Settings, proc: subprocess.Popen[bytes]) -> bool:
    """True once the server that answers is the one we started (its pid): another process on the port is not it."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if _answering_pid(settings) == proc.pid:
            return True
        time.sleep(0.2)
    return False


_BIND_ERRORS = ("error while attempting to bind", "address already in use", "cannot assign requested address")


def _start_failure(settings: Settings, log_offset: int) -> str:
    """Why the child did not come up: its bind error when there is one, else the end of its log."""
    try:
        with settings.log_file.open("rb") as log:
            log.seek(log_offset)
            ours = log.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        ours = []
    for line in ours:
        if any(marker in line.lower() for marker in _BIND_ERRORS):
            return (
                f"Atom could not listen on {settings.host}:{settings.port}: the address is in use or not available "
                f"(another process holds the port?). Choose another with --port or ATOM_PORT.\n{line.strip()}"
            )
    tail = "\n".join(ours[-15:]) if ours else "(nothing logged)"
    return f"Atom did not start. Last lines of {settings.log_file}:\n{tail}"


def daemon(host: str | None = HOST_OPTION, port: int | None = PORT_OPTION) -> None:
    """Start Atom in the background (PID and log file in the data directory, both owner-only)."""
    settings = with_address(load_settings(), host, port)
    private_dir(settings.data_dir)
    pid = running_pid(settings)
    if pid is not None:
        fail(f"Atom is already running (pid {pid}, {settings.base_url}). Use `atom-os stop` first.")
    try:
        asyncio.run(preflight(settings))
    except ConfigurationError as exc:
        fail(exc.one_line())
    with os.fdopen(open_private(settings.log_file), "ab") as log:
        log_offset = log.seek(0, os.SEEK_END)
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module, an argument vector (no shell)
            [sys.executable, "-m", "atom", "serve", "--host", settings.host, "--port", str(settings.port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env={**os.environ, "ATOM_LOG_FORMAT": os.environ.get("ATOM_LOG_FORMAT", "json")},
        )
    write_pid_file(settings.pid_file, proc.pid, settings.base_url)
    if not _wait_until_live(settings, proc):
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        remove_if_names(settings.pid_file, proc.pid)
        fail(_start_failure(settings, log_offset))
    console.print(f"Atom running in the background: pid {proc.pid}, {settings.base_url}")
    console.print(f"Log: {settings.log_file}")


def status() -> None:
    """Show whether the background service runs, and its health. Exit 0 ready, 1 not running, 2 not ready."""
    settings = load_settings()
    pid = running_pid(settings)
    if pid is None:
        console.print("Atom is [bold red]not running[/].")
        raise typer.Exit(1)
    uptime_s = int(time.time() - psutil.Process(pid).create_time())
    url = recorded_url(settings)
    table = Table(show_header=False, box=None)
    table.add_row("pid", str(pid))
    table.add_row("uptime", f"{uptime_s // 3600}h {uptime_s // 60 % 60}m {uptime_s % 60}s")
    table.add_row("url", url)
    table.add_row("database", _redacted_database(settings))
    ready = False
    try:
        response = httpx.get(f"{url}/health/ready", timeout=5.0)
        checks = response.json().get("checks", {})
        ready = response.status_code == 200
        for name, check in checks.items():
            mark = "[green]ok[/]" if check.get("ok") else "[red]failing[/]"
            table.add_row(f"check {name}", f"{mark} {check.get('detail', '')}")
    except (httpx.HTTPError, ValueError) as exc:
        table.add_row("health", f"[red]no answer ({type(exc).__name__})[/]")
    table.add_row("health", "[green]ready[/]" if ready else "[red]not ready[/]")
    console.print(table)
    raise typer.Exit(0 if ready else 2)


def _exited(proc: psutil.Process, timeout: float) -> bool:
    """Wait for `proc` to end. A zombie has ended: a foreground server's parent (a shell) reaps it, not us."""
    deadline = time.monotonic() + timeout
    zombie_since: float | None = None
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                zombie_since = zombie_since or time.monotonic()
                if time.monotonic() - zombie_since > ZOMBIE_REAP_WAIT_S:  # its parent is not reaping it
                    return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def stop(
    timeout: float = typer.Option(30.0, help="Seconds to wait for in-flight requests to finish."),
    force: bool = typer.Option(False, "--force", help="Kill the process if it has not exited after the timeout."),
) -> None:
    """Stop the background service gracefully (SIGTERM; in-flight requests finish first)."""
    settings = load_settings()
    pid = running_pid(settings)
    if pid is None:
        console.print("Atom is not running.")
        return
    proc = psutil.Process(pid)
    proc.send_signal(signal.SIGTERM)
    if not _exited(proc, timeout):
        if not force:
            fail(f"Atom (pid {pid}) is still finishing after {timeout:.0f}s; wait, or use `atom-os stop --force`.")
        proc.kill()
        _exited(proc, 10)
        console.print(f"[yellow]Killed pid {pid} after {timeout:.0f}s.[/]")
    settings.pid_file.unlink(missing_ok=True)
    console.print(f"Atom stopped (pid {pid}).")
