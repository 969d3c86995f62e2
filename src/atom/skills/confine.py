"""Confining the sandboxed process before it runs anything, without a `preexec_fn`.

The launch is a chain of execs, no fork of Atom beyond the vfork that starts it: `setpriv` (a root Atom
drops to uid/gid 65534), `prlimit` (CPU, core, open files, file size; address space and processes when no
cgroup holds them), then bubblewrap with `--info-fd` and `--block-fd`. bubblewrap creates the namespaces
and mounts, drops its privileges, reports its sandboxed child's pid on the info pipe and waits on the block
pipe before it runs (or forks) anything of the skill's. Meanwhile we put that child into the run's cgroup
and check it is there; only then do we write the byte that lets it go on. Whatever it starts inherits both.
Without the `prlimit` program the limits are set on the waiting child with prlimit(2) instead (which needs
CAP_SYS_RESOURCE over it); without `setpriv`, with Popen's `user=`/`group=` (a fork of Atom).

Why not a preexec_fn: it forces a real fork() of the whole Atom process (no vfork) and runs Python in the
child, which costs tens of milliseconds, more the larger the server.

The block pipe's write end is also handed to bubblewrap, so the child never reads end-of-file: if Atom dies
while the child waits, nothing lets it go on — it stays blocked, running nothing, until killed (a leaked
sleeping process: seen with bubblewrap 0.8, whose waiting child has not armed --die-with-parent yet). If confining
fails, the child is killed before the pipe is closed and the run is refused. The program inherits that
write end (a pipe nobody reads once it runs); the warm launcher (warm.py) closes it before its exec.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

from atom.errors import Unavailable
from atom.skills import cgroups

MAX_INFO_BYTES = 65536
NOBODY = 65534
MAX_FILE_WRITE = 64 * 1024 * 1024
OPEN_FILES = 256


def setpriv_prefix(setpriv: str) -> list[str]:
    """Exec through setpriv as nobody: real, effective and saved ids, no supplementary groups."""
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"]


# The launchers run with an empty environment (bubblewrap clears it anyway): no locale to load.
LAUNCH_ENV: dict[str, str] = {}


@dataclass(frozen=True)
class Limits:
    """What the sandboxed child gets through prlimit: always CPU, core, files; memory and processes too
    when no cgroup holds them."""

    cpu_s: int
    memory_bytes: int | None = None
    processes: int | None = None

    @classmethod
    def for_run(cls, timeout_s: float, memory_bytes: int, pids: int, cgroup_held: bool) -> Limits:
        return cls(
            cpu_s=int(timeout_s) + 1,
            memory_bytes=None if cgroup_held else memory_bytes,
            processes=None if cgroup_held else pids,
        )

    def prlimit_prefix(self, prlimit: str) -> list[str]:
        """The same limits as the `prlimit` program's options, which sets them on itself and execs the rest."""
        names = {
            resource.RLIMIT_CPU: "cpu",
            resource.RLIMIT_CORE: "core",
            resource.RLIMIT_NOFILE: "nofile",
            resource.RLIMIT_FSIZE: "fsize",
            resource.RLIMIT_AS: "as",
            resource.RLIMIT_NPROC: "nproc",
        }
        return [prlimit, *(f"--{names[which]}={soft}:{hard}" for which, soft, hard in self.pairs()), "--"]

    def pairs(self) -> list[tuple[int, int, int]]:
        pairs = [
            (resource.RLIMIT_CPU, self.cpu_s, self.cpu_s + 1),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NOFILE, OPEN_FILES, OPEN_FILES),
            (resource.RLIMIT_FSIZE, MAX_FILE_WRITE, MAX_FILE_WRITE),
        ]
        if self.memory_bytes is not None:
            pairs.append((resource.RLIMIT_AS, self.memory_bytes, self.memory_bytes))
        if self.processes is not None:  # counts the processes of the child's real uid (nobody)
            pairs.append((resource.RLIMIT_NPROC, self.processes, self.processes))
        return pairs


@dataclass
class Gate:
    """The two pipes between us and bubblewrap (see the module doc)."""

    info_r: int
    info_w: int
    block_r: int
    block_w: int
    child: int | None = None
    _closed: set[int] = field(default_factory=set)

    @classmethod
    def open(cls) -> Gate:
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        return cls(info_r, info_w, block_r, block_w)

    def bwrap_args(self) -> list[str]:
        return ["--info-fd", str(self.info_w), "--block-fd", str(self.block_r)]

    @property
    def pass_fds(self) -> tuple[int, int, int]:
        return (self.info_w, self.block_r, self.block_w)

    def _close(self, fd: int) -> None:
        if fd not in self._closed:
            self._closed.add(fd)
            with contextlib.suppress(OSError):
                os.close(fd)

    def spawned(self) -> None:
        """After Popen: only bubblewrap keeps the info pipe's write end (EOF when it has written)."""
        self._close(self.info_w)
        self._close(self.block_r)

    def wait_child(self, deadline: float) -> int | None:
        """The sandboxed child's pid from bubblewrap's info JSON; None if bubblewrap ended without one.
        Raises TimeoutError at `deadline` (time.perf_counter())."""
        data = bytearray()
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.info_r], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.info_r, 4096)
            if not chunk:
                break
            data.extend(chunk)
            if len(data) > MAX_INFO_BYTES:
                break
        self._close(self.info_r)
        try:
            pid = json.loads(bytes(data))["child-pid"]
        except (ValueError, KeyError, TypeError):
            return None
        self.child = pid if isinstance(pid, int) and pid > 1 else None
        return self.child

    def confine(self, run_cgroup: cgroups.CgroupRun | None, limits: Limits | None) -> bool:
        """Into the cgroup (checked) and, with `limits`, rlimits set (those not set by the `prlimit` program).
        False: the child already ended (bubblewrap failed after creating it; its error is on stderr).
        Raises Unavailable, the child killed, when it cannot be confined."""
        assert self.child is not None
        try:
            if run_cgroup is not None:
                run_cgroup.join(self.child)
            for which, soft, hard in limits.pairs() if limits is not None else ():
                resource.prlimit(self.child, which, (soft, hard))
            if run_cgroup is not None and not run_cgroup.holds(self.child):
                raise OSError("the sandboxed process is not in the run's cgroup")
        except ProcessLookupError:
            return False
        except OSError as exc:
            self.kill_child()
            raise Unavailable(
                f"The skill sandbox could not confine the process ({exc}); refusing to run.",
                code="SANDBOX_UNAVAILABLE",
                details={"reason": str(exc)[:300]},
            ) from exc
        return True

    def release(self) -> None:
        with contextlib.suppress(OSError):  # bubblewrap already gone: nothing is waiting
            os.write(self.block_w, b"1")

    def kill_child(self) -> None:
        if self.child is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.child, signal.SIGKILL)

    def close(self) -> None:
        for fd in (self.info_r, self.info_w, self.block_r, self.block_w):
            self._close(fd)


def join_early(run_cgroup: cgroups.CgroupRun, pid: int) -> threading.Thread:
    """Move bubblewrap itself into the cgroup while it starts. A cgroup move waits for an RCU grace period
    (milliseconds); started now, the move of its sandboxed child later shares that wait instead of paying
    its own. Best effort: what confines is the child's move, which is checked."""

    def join() -> None:
        with contextlib.suppress(OSError):
            run_cgroup.join(pid)

    thread = threading.Thread(target=join, daemon=True)
    thread.start()
    return thread


def admit(
    gate: Gate,
    process: subprocess.Popen[bytes],
    timeout_s: float,
    run_cgroup: cgroups.CgroupRun | None,
    rlimits: Limits | None,
    started: float,
) -> str | None:
    """Wait for bubblewrap's child, confine it, let it go on; "timeout" if that took the whole wall clock.
    No child (bubblewrap failed before creating it, or it ended): nothing runs; its error is collected.
    When confining fails, bubblewrap is killed and reaped and Unavailable raised."""
    early = join_early(run_cgroup, process.pid) if run_cgroup is not None else None
    try:
        try:
            child = gate.wait_child(started + timeout_s)
        except TimeoutError:
            return "timeout"
        if child is not None and gate.confine(run_cgroup, rlimits):
            gate.release()
        return None
    except BaseException:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if run_cgroup is not None:
            run_cgroup.kill_all()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        raise
    finally:
        if early is not None:
            early.join()
