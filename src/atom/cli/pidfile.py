"""The PID file in the data directory: written by `daemon` and by a foreground `serve`, read by `status`/`stop`."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from atom.cli.common import console
from atom.config import Settings
from atom.process import open_private


def _read(pid_file: Path) -> list[str]:
    try:
        return pid_file.read_text().split()
    except FileNotFoundError:
        return []


def _read_pid(pid_file: Path) -> int | None:
    """The first line: the server's pid."""
    fields = _read(pid_file)
    try:
        return int(fields[0]) if fields else None
    except ValueError:
        return None


def recorded_url(settings: Settings) -> str:
    """The URL the running server was started on (the second line; `serve --port` may differ from settings)."""
    fields = _read(settings.pid_file)
    return fields[1] if len(fields) > 1 and fields[1].startswith("http") else settings.base_url


def _is_atom_process(pid: int) -> bool:
    """True when `pid` is alive and is an Atom server (not an unrelated process that reused the PID)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "atom" in cmdline and "serve" in cmdline


def running_pid(settings: Settings) -> int | None:
    """The daemon's PID, or None. A stale PID file (dead or foreign process) is removed."""
    pid = _read_pid(settings.pid_file)
    if pid is None:
        return None
    if _is_atom_process(pid):
        return pid
    settings.pid_file.unlink(missing_ok=True)
    console.print(f"[yellow]Removed a stale PID file ({settings.pid_file}, pid {pid} is not running Atom).[/]")
    return None


def write_pid_file(path: Path, pid: int, url: str | None = None) -> None:
    """Atomically, owner-only (0600): the pid, and the URL it serves when known."""
    tmp = path.with_suffix(".pid.tmp")
    with os.fdopen(open_private(tmp, append=False), "w") as handle:
        handle.write(f"{pid}\n" + (f"{url}\n" if url else ""))
    tmp.replace(path)


def remove_if_names(path: Path, pid: int) -> None:
    """Remove the PID file only if it still names `pid` (another server may have written its own since)."""
    if _read_pid(path) == pid:
        path.unlink(missing_ok=True)


def remove_if_ours(path: Path) -> None:
    """At exit: remove the PID file only if it still names this process."""
    remove_if_names(path, os.getpid())
