"""Who holds a step's lease, and whether that holder is known to be dead.

A step claimed by a process records the holder as `HOST:PID:START` (START: the process's start time,
in clock ticks since boot, from /proc). A process starting on the same host can then tell that a lease
belongs to a process that no longer exists, or to an earlier process whose PID was reused (its start
time differs), and take the step over at once instead of waiting for the lease to expire. A holder on
another host, or named by hand (`atom-os worker --worker-id`), is never judged dead here: its lease
runs out as before (ATOM_WORKFLOW_VISIBILITY_TIMEOUT_S).
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache

HOST_CHARS = 60  # the step's `worker` column holds 100 characters


def _start_ticks(pid: int) -> str | None:
    """The start time of process `pid` (field 22 of /proc/PID/stat), or None when it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return "?"  # exists but unreadable: treat as alive, start unknown
    fields = text[text.rfind(")") + 2 :].split()  # after "(comm)" come fields 3, 4, ...
    return fields[19] if len(fields) > 19 else "?"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@lru_cache(maxsize=1)
def host() -> str:
    return socket.gethostname()[:HOST_CHARS]


def this_process() -> str:
    """This process's holder name: HOST:PID:START (START empty where /proc is missing)."""
    pid = os.getpid()
    start = _start_ticks(pid) if os.path.isdir("/proc") else None
    return f"{host()}:{pid}:{start or ''}"


def is_dead(holder: str | None) -> bool:
    """True only when `holder` names a process of this host that is gone (or whose PID now belongs to a
    later process). False when it cannot tell: another host, a name given by hand, this very process."""
    if not holder or holder == this_process():
        return False
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != host() or not parts[1].isdigit():
        return False
    pid, start = int(parts[1]), parts[2]
    if pid == os.getpid():
        return True  # this PID, another start: an earlier incarnation
    if os.path.isdir("/proc"):
        current = _start_ticks(pid)
        if current is None:
            return True
        return bool(start) and current not in ("?", start)
    return not _alive(pid)
