"""Shared by the benchmark scripts: servers in subprocesses, free ports, percentiles, result tables."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ATOM_OS = str(Path(sys.executable).parent / "atom-os")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(samples: Sequence[float], pct: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "p50": percentile(samples, 50),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples),
    }


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (any address), from the kernel's tables."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    return inodes


def _process_tree(root: int) -> set[int]:
    """`root` and every process descended from it."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            after_name = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(after_name[1])
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return tree


def listens(proc: subprocess.Popen[bytes], port: int) -> bool:
    """Whether the socket listening on `port` belongs to `proc` (or a process it started)."""
    inodes = {f"socket:[{inode}]" for inode in _listening_inodes(port)}
    for pid in _process_tree(proc.pid):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in inodes:
                    return True
            except OSError:
                continue
    return False


def wait_until_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    """Wait for a 200 from `url`, answered by the server `proc` started: another process already
    listening on the port (a stale server, another benchmark) must not be measured in its place."""
    port = httpx.URL(url).port or 80
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            response = httpx.get(url, timeout=1)
        except httpx.HTTPError as exc:
            last = type(exc).__name__
            time.sleep(0.1)
            continue
        if response.status_code == 200 and listens(proc, port):
            return
        last = f"{response.status_code}" if response.status_code != 200 else "a 200 from a process we did not start"
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 from the server we started within {timeout}s (last: {last})")


@contextmanager
def running(argv: list[str], env: dict[str, str], probe_url: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(probe_url, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class AtomServer:
    base: str
    key: str
    pid: int
    data_dir: Path


@contextmanager
def atom_server_process(extra_env: dict[str, str] | None = None) -> Iterator[AtomServer]:
    """A real `atom-os serve` on a fresh SQLite data dir, with its process id and data directory."""
    with tempfile.TemporaryDirectory(prefix="atom-bench-") as data_dir:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
        env.update(ATOM_DATA_DIR=data_dir, ATOM_PORT=str(port), ATOM_LOG_LEVEL="WARNING", **(extra_env or {}))
        init = subprocess.run([ATOM_OS, "init"], env=env, capture_output=True, text=True, check=True)
        key = next(line for line in init.stdout.splitlines() if line.startswith("atom_"))
        base = f"http://127.0.0.1:{port}"
        with running([ATOM_OS, "serve"], env, f"{base}/health/live") as proc:
            yield AtomServer(base, key, proc.pid, Path(data_dir))


@contextmanager
def atom_server(extra_env: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """A real `atom-os serve` on a fresh SQLite data dir; yields (base URL, admin API key)."""
    with atom_server_process(extra_env) as server:
        yield server.base, server.key


def cpu_seconds(pid: int) -> float:
    """CPU time process `pid` has used so far, user and system, all its threads (from the kernel's stat file)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """The resident memory of process `pid` now, in MiB (from the kernel's status file)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@contextmanager
def bare_server() -> Iterator[str]:
    """The floor: a bare ASGI app answering 200, served by the same uvicorn."""
    port = free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "_bare_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with running(argv, dict(os.environ), f"{base}/"):
        yield base


def sequential_latencies(client: httpx.Client, url: str, requests: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        client.get(url)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code >= 500:
            raise RuntimeError(f"{url} answered {response.status_code}")
    return samples


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"
