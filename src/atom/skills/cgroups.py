"""Per-run cgroups for memory and pids limits: cgroup v2 when the unified hierarchy has the controllers,
else cgroup v1's memory and pids hierarchies. `detect()` returns None when neither is writable."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "atom-sandbox"


@dataclass(frozen=True)
class CgroupRun:
    version: int
    memory_dir: Path
    pids_dir: Path

    @property
    def procs_files(self) -> tuple[str, ...]:
        if self.version == 2:
            return (str(self.memory_dir / "cgroup.procs"),)
        return (str(self.memory_dir / "cgroup.procs"), str(self.pids_dir / "cgroup.procs"))

    def _events(self, path: Path, key: str) -> int:
        try:
            for line in path.read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except (OSError, ValueError):
            return 0
        return 0

    def set_limits(self, memory_bytes: int, pids: int) -> None:
        if self.version == 2:
            (self.memory_dir / "memory.max").write_text(str(memory_bytes))
        else:
            (self.memory_dir / "memory.limit_in_bytes").write_text(str(memory_bytes))
            with contextlib.suppress(OSError):
                (self.memory_dir / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
        (self.pids_dir / "pids.max").write_text(str(pids))

    def join(self, pid: int) -> None:
        for procs in self.procs_files:
            with open(procs, "w") as handle:
                handle.write(str(pid))

    def holds(self, pid: int) -> bool:
        """Whether `pid` is in this run's cgroup (each of memory and pids, on v1)."""
        wanted = {"": self.memory_dir} if self.version == 2 else {"memory": self.memory_dir, "pids": self.pids_dir}
        found = set()
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name, directory in wanted.items():
                if name in controllers.split(",") and path.endswith(f"/{PARENT}/{directory.name}"):
                    found.add(name)
        return found == set(wanted)

    def memory_hit(self) -> bool:
        if self.version == 2:
            return self._events(self.memory_dir / "memory.events", "oom_kill") > 0
        try:
            failed = int((self.memory_dir / "memory.failcnt").read_text().strip() or 0)
        except (OSError, ValueError):
            failed = 0
        return failed > 0 or self._events(self.memory_dir / "memory.oom_control", "oom_kill") > 0

    def pids_hit(self) -> bool:
        return self._events(self.pids_dir / "pids.events", "max") > 0

    def kill_all(self) -> None:
        for procs in self.procs_files:
            with contextlib.suppress(OSError, ValueError):
                for pid in Path(procs).read_text().split():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(pid), signal.SIGKILL)

    def remove(self) -> None:
        """Kill what is left and remove the directories (off the run's path: it may wait up to ~0.5 s)."""
        self.kill_all()
        for directory in {self.memory_dir, self.pids_dir}:
            for attempt in range(200):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy until the last killed process is reaped
                    self.kill_all()
                    time.sleep(0 if attempt < 20 else 0.0025)


def _writable(directory: Path) -> bool:
    probe = directory / PARENT / f"probe-{os.getpid()}"
    try:
        probe.mkdir(parents=True, exist_ok=True)
        probe.rmdir()
        return True
    except OSError:
        return False


def detect() -> int | None:
    """2 or 1 when this process may create memory+pids cgroups, else None."""
    controllers = ROOT / "cgroup.controllers"
    if controllers.is_file():
        available = set(controllers.read_text().split())
        if {"memory", "pids"} <= available and _writable(ROOT):
            parent = ROOT / PARENT
            with contextlib.suppress(OSError):
                (parent / "cgroup.subtree_control").write_text("+memory +pids")
            if {"memory", "pids"} <= set((parent / "cgroup.subtree_control").read_text().split()):
                return 2
    v1 = (ROOT / "memory" / "memory.limit_in_bytes").is_file() and (ROOT / "pids" / "cgroup.procs").is_file()
    if v1 and _writable(ROOT / "memory") and _writable(ROOT / "pids"):
        return 1
    return None


def create(version: int, run_id: str, *, memory_bytes: int, pids: int) -> CgroupRun:
    if version == 2:
        directory = ROOT / PARENT / run_id
        directory.mkdir(parents=True)
        run = CgroupRun(2, directory, directory)
        (directory / "memory.max").write_text(str(memory_bytes))
        with contextlib.suppress(OSError):
            (directory / "memory.swap.max").write_text("0")
        (directory / "pids.max").write_text(str(pids))
        return run
    memory_dir = ROOT / "memory" / PARENT / run_id
    pids_dir = ROOT / "pids" / PARENT / run_id
    memory_dir.mkdir(parents=True)
    pids_dir.mkdir(parents=True)
    run = CgroupRun(1, memory_dir, pids_dir)
    (memory_dir / "memory.limit_in_bytes").write_text(str(memory_bytes))
    with contextlib.suppress(OSError):  # present only with swap accounting
        (memory_dir / "memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
    (pids_dir / "pids.max").write_text(str(pids))
    return run
