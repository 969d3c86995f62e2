"""Run untrusted skill code confined, or not at all.

bubblewrap: new user, pid, net, ipc, uts and cgroup namespaces (no network: only an empty
loopback), the host's /usr read-only, a private tmpfs /tmp, one writable work dir (/work), no
/etc/shadow, no data dir, no home. Limits: memory and pids through a per-run cgroup (v2, else
v1); where no cgroup is writable, RLIMIT_AS and RLIMIT_NPROC instead — and since RLIMIT_NPROC
never binds uid 0, a root Atom drops the sandboxed process to uid/gid 65534 first (always, not
only then). CPU time is RLIMIT_CPU, wall clock is enforced here, stdout+stderr are capped.
If bubblewrap is missing or cannot create its namespaces, or the process cannot be put in its cgroup
or given its limits, `Sandbox.run` raises `Unavailable`: it never runs code unconfined. How the limits
are applied before the program starts, without a preexec_fn: `confine`; after a first run, the next
run's sandbox is made ready in the background: `warm`. Docker is detected (a reachable daemon) but not
driven yet.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from atom.db.base import new_id
from atom.errors import InvalidInput, Unavailable
from atom.skills import bwrap, cgroups, confine, streams
from atom.skills import warm as warm_mod

NOBODY = confine.NOBODY
DEFAULT_MEMORY = 256 * 1024 * 1024
DEFAULT_PIDS = 64
DEFAULT_TIMEOUT_S = 30.0
MAX_TIMEOUT_S = 300.0
DEFAULT_OUTPUT = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    memory_bytes: int = DEFAULT_MEMORY
    pids: int = DEFAULT_PIDS
    timeout_s: float = DEFAULT_TIMEOUT_S
    output_bytes: int = DEFAULT_OUTPUT

    def checked(self, max_timeout_s: float = MAX_TIMEOUT_S) -> SandboxLimits:
        if not 0 < self.timeout_s <= max_timeout_s:
            raise InvalidInput(f"timeout must be in (0, {max_timeout_s}] seconds.", code="SANDBOX_TIMEOUT_INVALID")
        if self.memory_bytes < 16 * 1024 * 1024 or self.pids < 4 or self.output_bytes < 1024:
            raise InvalidInput("sandbox limits are too small to start a program.", code="SANDBOX_LIMITS_INVALID")
        return self


@dataclass
class SandboxResult:
    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: float
    violation: str | None = None  # timeout | memory | pids | output | cpu | signal
    backend: str = "bubblewrap"
    confinement: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.violation is None


def _clean_up(workdir: Path, run_cgroup: cgroups.CgroupRun | None) -> None:
    if run_cgroup is not None:
        run_cgroup.remove()
    shutil.rmtree(workdir, ignore_errors=True)


def docker_reachable(socket_path: str = "/var/run/docker.sock") -> bool:
    if not os.path.exists(socket_path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(socket_path)
        except OSError:
            return False
    return True


class Sandbox:
    """One configured sandbox. `probe()` once (it runs a confined `true`), then `run()` many times."""

    def __init__(
        self,
        *,
        backend: str = "auto",
        max_timeout_s: float = MAX_TIMEOUT_S,
        use_cgroups: bool = True,
        bwrap_path: str | None = None,
        prlimit_path: str | None = "prlimit",
        warm: bool = True,
    ) -> None:
        self.backend = backend
        self.max_timeout_s = max_timeout_s
        self.use_cgroups = use_cgroups
        self.bwrap = shutil.which(bwrap_path or "bwrap")
        self.setpriv = shutil.which("setpriv")
        # Without the prlimit program, limits are set on the waiting child with prlimit(2) (see confine.py).
        self.prlimit = shutil.which(prlimit_path) if prlimit_path else None
        self.cgroup_version: int | None = None
        self.drop_to_nobody = os.geteuid() == 0
        self._probed: str | None = None  # None: not yet; "" ok; else the reason it cannot confine
        # After the first run, the next run's sandbox is prepared in the background (warm.py).
        self._warm_python = warm_mod.launcher_python() if warm else None
        self._preparer: warm_mod.Preparer | None = None
        self._cleaner: ThreadPoolExecutor | None = None
        self._cleaner_lock = threading.Lock()

    def confinement(self) -> dict[str, str]:
        memory = f"cgroup v{self.cgroup_version}" if self.cgroup_version else "RLIMIT_AS"
        pids = f"cgroup v{self.cgroup_version}" if self.cgroup_version else f"RLIMIT_NPROC (uid {self._uid()})"
        return {
            "backend": "bubblewrap",
            "memory": memory,
            "pids": pids,
            "cpu": "RLIMIT_CPU",
            "network": "none (empty network namespace)",
            "uid": str(self._uid()),
        }

    def _uid(self) -> int:
        return NOBODY if self.drop_to_nobody else os.geteuid()

    def probe(self) -> str:
        """'' when runs can be confined here, else why not (also cached)."""
        if self._probed is not None:
            return self._probed
        if self.backend == "docker":
            reachable = docker_reachable()
            self._probed = (
                "the Docker backend is not implemented yet"
                if reachable
                else "no Docker daemon is reachable (/var/run/docker.sock)"
            )
            return self._probed
        if self.bwrap is None:
            self._probed = "bubblewrap (bwrap) is not installed"
            return self._probed
        self.cgroup_version = cgroups.detect() if self.use_cgroups else None
        if self.cgroup_version is None and os.geteuid() == 0 and not self.drop_to_nobody:
            self._probed = "no writable cgroup and RLIMIT_NPROC does not bind root"
            return self._probed
        self._probed = ""
        try:
            result = self.run(["/bin/true"], limits=SandboxLimits(timeout_s=10))
        except (OSError, Unavailable) as exc:
            self._probed = f"bubblewrap cannot start: {exc}"
            return self._probed
        if result.exit_code != 0:
            self._probed = f"bubblewrap cannot create its namespaces here: {result.stderr.strip()[:300]}"
        return self._probed

    def _require(self) -> None:
        reason = self.probe()
        if reason:
            raise Unavailable(
                f"The skill sandbox cannot confine code here ({reason}); refusing to run.",
                code="SANDBOX_UNAVAILABLE",
                details={"reason": reason},
            )

    def _argv(self, command: list[str], workdir: Path, gate: confine.Gate | None) -> list[str]:
        assert self.bwrap is not None
        return bwrap.argv(self.bwrap, command, workdir, self._uid(), gate.bwrap_args() if gate is not None else [])

    def run(
        self,
        command: list[str],
        *,
        files: dict[str, str] | None = None,
        stdin: bytes = b"",
        limits: SandboxLimits | None = None,
    ) -> SandboxResult:
        """Run `command` inside the sandbox with `files` (relative path -> text) in its work dir."""
        self._require()
        limits = (limits or SandboxLimits()).checked(self.max_timeout_s)
        ready = self._preparer.take() if self._preparer is not None else None
        try:
            if ready is not None:
                return self._run_warm(ready, command, files or {}, stdin, limits)
            return self._run_cold(command, files or {}, stdin, limits)
        finally:
            self._want_warm(limits)

    def _want_warm(self, limits: SandboxLimits) -> None:
        if self._preparer is not None and self._preparer.pid != os.getpid():
            self._preparer = None  # inherited through a fork: that one's thread and sandbox are not ours
        if self._preparer is None and self._warm_python is not None and self._probed == "":
            with self._cleaner_lock:
                if self._preparer is None:
                    self._preparer = warm_mod.Preparer(self, self._warm_python, limits.memory_bytes, limits.pids)
                    atexit.register(self.close)
        if self._preparer is not None:
            self._preparer.want(limits.memory_bytes, limits.pids)

    def wait_warm(self, timeout_s: float) -> bool:
        """Whether the next run's sandbox is ready (waits up to `timeout_s`); benchmarks wait for it."""
        return self._preparer is not None and self._preparer.wait_ready(timeout_s)

    def _run_warm(
        self, ready: warm_mod.Warm, command: list[str], files: dict[str, str], stdin: bytes, limits: SandboxLimits
    ) -> SandboxResult:
        try:
            self._populate(ready.workdir, files)
            if ready.run_cgroup is not None and (ready.memory_bytes, ready.pids) != (limits.memory_bytes, limits.pids):
                ready.run_cgroup.set_limits(limits.memory_bytes, limits.pids)
            held = ready.run_cgroup is not None
            started = ready.go(
                command, confine.Limits.for_run(limits.timeout_s, limits.memory_bytes, limits.pids, held)
            )
        except BaseException:
            ready.discard()
            raise
        try:
            return self._finish(ready.process, stdin, limits, ready.run_cgroup, started, None)
        finally:
            self._clean_up_later(ready.workdir, ready.run_cgroup)

    def _run_cold(
        self, command: list[str], files: dict[str, str], stdin: bytes, limits: SandboxLimits
    ) -> SandboxResult:
        workdir = Path(tempfile.mkdtemp(prefix="atom-skill-"))
        run_cgroup = None
        try:
            self._populate(workdir, files)
            if self.cgroup_version is not None:
                run_cgroup = cgroups.create(
                    self.cgroup_version, new_id(), memory_bytes=limits.memory_bytes, pids=limits.pids
                )
            process, started, violation = self._launch(command, workdir, limits, run_cgroup)
            return self._finish(process, stdin, limits, run_cgroup, started, violation)
        finally:
            self._clean_up_later(workdir, run_cgroup)

    def _clean_up_later(self, workdir: Path, run_cgroup: cgroups.CgroupRun | None) -> None:
        """The work dir and the cgroup go after the result is returned (one worker thread, joined at exit).
        Every process of the run is already gone or killed; `remove` kills any straggler again."""
        with self._cleaner_lock:
            if self._cleaner is None:
                self._cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atom-sandbox-cleanup")
            self._cleaner.submit(_clean_up, workdir, run_cgroup)

    def close(self) -> None:
        """Drop the warm sandbox and wait for pending clean-ups (tests, shutdown)."""
        if self._preparer is not None:
            self._preparer.close()
        with self._cleaner_lock:
            cleaner, self._cleaner = self._cleaner, None
        if cleaner is not None:
            cleaner.shutdown(wait=True)

    def _populate(self, workdir: Path, files: dict[str, str]) -> None:
        for relative, text in files.items():
            path = PurePosixPath(relative)
            if path.is_absolute() or ".." in path.parts:
                raise InvalidInput(f"{relative!r:.100} escapes the work dir.", code="SKILL_PATH_TRAVERSAL")
            target = workdir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        if self.drop_to_nobody:
            for directory, _, names in os.walk(workdir):
                os.chown(directory, NOBODY, NOBODY)
                for name in names:
                    os.chown(os.path.join(directory, name), NOBODY, NOBODY)
        workdir.chmod(0o700)

    def _spawn(
        self,
        argv: list[str],
        gate: confine.Gate | None,
        limits: confine.Limits | None,
        extra_fds: tuple[int, ...] = (),
    ) -> subprocess.Popen[bytes]:
        """bubblewrap behind `setpriv` (nobody, for a root Atom) and `prlimit`: execs only, so Python starts
        the chain with vfork (no preexec_fn). Without setpriv, Popen's user/group: a fork of this process."""
        ids: dict[str, Any] = {}
        prefix: list[str] = []
        if self.drop_to_nobody and self.setpriv:
            prefix += confine.setpriv_prefix(self.setpriv)
        elif self.drop_to_nobody:
            ids = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
        if self.prlimit and limits is not None:
            prefix += limits.prlimit_prefix(self.prlimit)
        return subprocess.Popen(  # noqa: S603 — a fixed argv; the command runs confined
            prefix + argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(*(gate.pass_fds if gate is not None else ()), *extra_fds),
            close_fds=True,
            start_new_session=True,
            env=confine.LAUNCH_ENV,
            **ids,
        )

    def _launch(
        self, command: list[str], workdir: Path, limits: SandboxLimits, run_cgroup: cgroups.CgroupRun | None
    ) -> tuple[subprocess.Popen[bytes], float, str | None]:
        """Start bubblewrap for `command` and confine its child: (process, start time, "timeout" or None)."""
        started = time.perf_counter()
        rlimits = confine.Limits.for_run(limits.timeout_s, limits.memory_bytes, limits.pids, run_cgroup is not None)
        # The gate is needed to put the child in its cgroup, or to set its limits without the prlimit program.
        gate = confine.Gate.open() if run_cgroup is not None or not self.prlimit else None
        try:
            process = self._spawn(self._argv(command, workdir, gate), gate, rlimits if self.prlimit else None)
            violation = None
            if gate is not None:
                gate.spawned()
                on_child = None if self.prlimit else rlimits
                violation = confine.admit(gate, process, limits.timeout_s, run_cgroup, on_child, started)
        finally:
            if gate is not None:
                gate.close()
        return process, started, violation

    def _finish(
        self,
        process: subprocess.Popen[bytes],
        stdin: bytes,
        limits: SandboxLimits,
        run_cgroup: cgroups.CgroupRun | None,
        started: float,
        violation: str | None,
    ) -> SandboxResult:
        """Feed, read and wait within the limits; say which limit was hit."""
        if violation is None:
            out, err, violation = streams.collect(process, stdin, limits.timeout_s, limits.output_bytes, started)
        else:
            out, err = bytearray(), bytearray()
            streams.close_streams(process, stdin_too=True)
        if violation is not None:
            streams.kill(process, run_cgroup)
        exit_code = process.wait()
        streams.close_streams(process)
        duration = (time.perf_counter() - started) * 1000
        if violation is None and run_cgroup is not None:
            if run_cgroup.memory_hit():
                violation = "memory"
            elif run_cgroup.pids_hit():
                violation = "pids"
        if violation is None and exit_code == -9 and duration >= limits.timeout_s * 1000:
            violation = "cpu"
        if violation is None and exit_code is not None and exit_code < 0:
            violation = "signal"
        return SandboxResult(
            exit_code=exit_code,
            stdout=bytes(out).decode("utf-8", "replace"),
            stderr=bytes(err).decode("utf-8", "replace"),
            duration_ms=duration,
            violation=violation,
            confinement=self.confinement(),
        )
