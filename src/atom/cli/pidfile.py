"""The PID file in the data directory: written by `daemon` and by a foreground `serve`, read by `status`/`stop`."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from atom.cli.common import console
from atom.config import Settings


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


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


def write_pid_file(path: Path, pid: int) -> None:
    tmp = path.with_suffix(".pid.tmp")
    tmp.write_text(f"{pid}\n")
    tmp.replace(path)


def remove_if_ours(path: Path) -> None:
    """At exit: remove the PID file only if it still names this process."""
    if _read_pid(path) == os.getpid():
        path.unlink(missing_ok=True)
