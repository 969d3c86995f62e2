"""The next run's sandbox, made ready before it is asked for.

Starting a sandbox costs bubblewrap's namespaces and mounts and, with cgroups, the move into the run's cgroup,
which waits for an RCU grace period. All of that is done ahead, in a background thread, for one sandbox
at a time: a fresh work dir and cgroup, bubblewrap started as for any run (the child joined and checked
through the gate), and inside it a small launcher (`python3 -I -S`, our code, already confined) that
reports ready and waits on a pipe. A run then writes its files into the work dir (bound at /work) and sends
the launcher its command and CPU/file/memory/process limits; the launcher sets the limits on itself (it
can only lower them), closes every other descriptor and execs the command. Nothing of the skill's runs
before that, and everything it starts is in the cgroup, the namespaces and the limits.

One warm sandbox serves one run: it is never reused. When none is ready (the first run, concurrent runs,
no python3 under /usr for the launcher) a run starts its sandbox itself, as before. If Atom exits, the
launcher reads end-of-file and exits without running anything (and `--die-with-parent` kills it anyway).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from atom.db.base import new_id
from atom.observability.logging import get_logger
from atom.skills import cgroups, confine, streams

if TYPE_CHECKING:
    from atom.skills.sandbox import Sandbox

log = get_logger("atom.skills.warm")
READY_TIMEOUT_S = 15.0
MAX_FAILURES = 3  # preparing failed this often in a row: stop trying (runs start their own sandbox)

# Runs inside the sandbox. Its argv: the spec pipe's fd, the ready pipe's fd.
LAUNCHER = """\
import json, os, resource, sys
spec_fd, ready_fd = int(sys.argv[1]), int(sys.argv[2])
os.write(ready_fd, b"R")
os.close(ready_fd)
chunks = []
while True:
    chunk = os.read(spec_fd, 65536)
    if not chunk:
        break
    chunks.append(chunk)
if not chunks:
    os._exit(0)
spec = json.loads(b"".join(chunks))
os.closerange(3, 1 << 20)
try:
    for which, soft, hard in spec["rlimits"]:
        resource.setrlimit(which, (soft, hard))
except (OSError, ValueError):
    os.write(2, b"atom sandbox: the limits could not be set; nothing was run\\n")
    os._exit(126)
argv = spec["argv"]
try:
    os.execvp(argv[0], argv)
except OSError as exc:
    os.write(2, ("atom sandbox: cannot run %r: %s\\n" % (argv[0], exc.strerror)).encode())
    os._exit(127)
"""


def launcher_python() -> str | None:
    """A python3 the sandbox can see (only /usr is bound), or None."""
    found = shutil.which("python3", path="/usr/local/bin:/usr/bin")
    if found is None or not os.path.realpath(found).startswith("/usr/"):
        return None
    return found


@dataclass
class Warm:
    process: subprocess.Popen[bytes]
    workdir: Path
    run_cgroup: cgroups.CgroupRun | None
    memory_bytes: int
    pids: int
    spec_w: int

    def go(self, command: list[str], rlimits: confine.Limits) -> float:
        """Hand the launcher its command; returns the start time (the wall clock runs from here)."""
        started = time.perf_counter()
        data = json.dumps({"argv": command, "rlimits": rlimits.pairs()}).encode()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self.spec_w, view) :]
        finally:
            os.close(self.spec_w)
        return started

    def discard(self) -> None:
        """Kill it unused and clean up."""
        with contextlib.suppress(OSError):
            os.close(self.spec_w)
        streams.kill(self.process, self.run_cgroup)
        self.process.wait()
        streams.close_streams(self.process, stdin_too=True)
        if self.run_cgroup is not None:
            self.run_cgroup.remove()
        shutil.rmtree(self.workdir, ignore_errors=True)


def prepare(box: Sandbox, python: str, memory_bytes: int, pids: int) -> Warm:
    """A confined launcher waiting in a fresh work dir and cgroup. Raises RuntimeError (or Unavailable)."""
    workdir = Path(tempfile.mkdtemp(prefix="atom-skill-"))
    run_cgroup = None
    spec_r, spec_w = os.pipe()
    ready_r, ready_w = os.pipe()
    process = None
    try:
        box._populate(workdir, {})
        if box.cgroup_version is not None:
            run_cgroup = cgroups.create(box.cgroup_version, new_id(), memory_bytes=memory_bytes, pids=pids)
        gate = confine.Gate.open() if run_cgroup is not None else None
        try:
            argv = box._argv([python, "-I", "-S", "-c", LAUNCHER, str(spec_r), str(ready_w)], workdir, gate)
            process = box._spawn(argv, gate, None, extra_fds=(spec_r, ready_w))
            started = time.perf_counter()
            if gate is not None:
                gate.spawned()
                if confine.admit(gate, process, READY_TIMEOUT_S, run_cgroup, None, started) is not None:
                    raise RuntimeError("bubblewrap did not start in time")
        finally:
            if gate is not None:
                gate.close()
        os.close(spec_r)
        os.close(ready_w)
        spec_r = ready_w = -1
        ready, _, _ = select.select([ready_r], [], [], READY_TIMEOUT_S)
        if not ready or os.read(ready_r, 1) != b"R":
            raise RuntimeError("the sandbox launcher did not start")
        return Warm(process, workdir, run_cgroup, memory_bytes, pids, spec_w)
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(spec_w)
        if process is not None:
            streams.kill(process, run_cgroup)
            process.wait()
            streams.close_streams(process, stdin_too=True)
        if run_cgroup is not None:
            run_cgroup.remove()
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        for fd in (spec_r, ready_w, ready_r):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)


class Preparer:
    """One long-lived thread per Sandbox that keeps one Warm ready. Long-lived on purpose: bubblewrap's
    --die-with-parent follows the thread that started it, so that thread must outlive the run."""

    def __init__(self, box: Sandbox, python: str, memory_bytes: int, pids: int) -> None:
        self.box = box
        self.python = python
        self.limits = (memory_bytes, pids)
        self._ready: Warm | None = None
        self._lock = threading.Condition()
        self._wanted = threading.Event()
        self._closed = False
        self._failures = 0
        self.pid = os.getpid()  # a forked copy of Atom has no preparing thread and no children of this one
        self._thread = threading.Thread(target=self._loop, name="atom-sandbox-warm", daemon=True)
        self._thread.start()

    def want(self, memory_bytes: int, pids: int) -> None:
        self.limits = (memory_bytes, pids)
        if self._failures < MAX_FAILURES:
            self._wanted.set()

    def take(self) -> Warm | None:
        if os.getpid() != self.pid:
            return None
        with self._lock:
            warm, self._ready = self._ready, None
            return warm

    def wait_ready(self, timeout_s: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: self._ready is not None or self._closed, timeout_s) and not self._closed

    def close(self) -> None:
        with self._lock:
            self._closed = True
            warm, self._ready = self._ready, None
            self._lock.notify_all()
        self._wanted.set()
        if warm is not None:
            warm.discard()
        # A preparation under way finishes and is discarded: nothing is left behind (work dir, cgroup).
        if self._thread is not threading.current_thread():
            self._thread.join(READY_TIMEOUT_S * 2)

    def _loop(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            with self._lock:
                if self._closed:
                    return
                if self._ready is not None:
                    continue
            try:
                warm = prepare(self.box, self.python, *self.limits)
            except Exception:  # runs start a sandbox of their own meanwhile (`MAX_FAILURES` in a row: stop)
                self._failures += 1
                log.warning("warm sandbox could not be prepared", failures=self._failures, exc_info=True)
                continue
            self._failures = 0
            with self._lock:
                if self._closed or self._ready is not None:
                    stale, warm = warm, None
                else:
                    self._ready, stale = warm, None
                self._lock.notify_all()
            if stale is not None:
                stale.discard()
