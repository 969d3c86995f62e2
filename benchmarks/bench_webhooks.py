"""Signed webhook to finished run, on the embedded default (`atom-os serve`, SQLite) (issue 13).

A workflow of one `noop` step whose agent is AUTONOMOUS, started by its webhook trigger. Clients
(1, 10 and 50 at once, each on its own keep-alive connection) send signed deliveries, each with its
own body and so its own signature (a real sender never repeats one), for a fixed time. Printed per
level: accepted/s, completed runs/s (from the first run's creation to the last one's finish, read
from the server's database), accept P50/P99 (the client's time to the answer), created->finished
P50/P99, the server's CPU time per completed run (user + system, all threads, from the load's start
to the last run's end: the figure a busy shared machine disturbs least), the server's peak RSS during
the level, and whether every accepted delivery became a succeeded run (nothing lost).

The server runs with episodic memory off (ATOM_MEMORY_ENABLED=false) unless `--memory` is given:
memory loads a local embedding model at start (about 290 MiB) and embeds every finished run in the
background, work that is not the webhook path's and would share its CPU.

`respond: on_finish` is measured the same way: there the answer carries the run's output, so the
answer time is the whole webhook-to-result time.

The floor, measured in the same run on the same uvicorn: a bare ASGI app (`_webhook_floor_app.py`)
that checks the same timestamp window and HMAC and records the delivery with one INSERT + commit
(WAL, synchronous=NORMAL) before answering 202.

Goals (2-core machine): >= 300 completed runs/s at 10 clients with nothing lost; at one client accept
P50 <= 3 ms and created->finished P50 <= 5 ms; RSS <= 250 MiB under load; completed runs/s >= 0.5x
the floor's deliveries/s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from _common import HERE, atom_server_process, cpu_seconds, free_port, percentile, rss_mib, running, verdict

SECRET = secrets.token_hex(16)  # the webhook secret, new each run
LEVELS = (1, 10, 50)
WORKFLOW = """
name: bench-{mode}
agent: bench
steps:
  - id: take
    action: noop
    with: {{n: "{{{{ trigger.body.n }}}}", client: "{{{{ trigger.body.client }}}}"}}
triggers:
  - id: hook
    type: webhook
    secret: bench_hook
{respond}"""
RESPOND = {"on_accept": "", "on_finish": "    respond: on_finish\n"}


# --- a lean HTTP/1.1 client: the load generator must cost far less than what it measures ----------


class Connection:
    """One keep-alive connection; requests one after another, as one sending client does."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        self.writer.write(head.encode() + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        length = None
        for line in answer.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"an answer without Content-Length: {answer[:200]!r}")
        return status, await self.reader.readexactly(length)


def signed(secret: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Atom-Timestamp": timestamp,
        "X-Atom-Signature": f"sha256={digest}",
    }


@dataclass
class Load:
    clients: int
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    answers: list[dict[str, Any]] = field(default_factory=list)
    rss_peak: float = 0.0
    cpu_start: float = 0.0  # the server's CPU seconds when the load began
    cpu_end: float = 0.0  # ... and when it ended (for Atom: when the last run finished)

    @property
    def accepted(self) -> int:
        return self.statuses[200] + self.statuses[202]


async def _sample_rss(pid: int, load: Load, stop: asyncio.Event) -> None:
    while not stop.is_set():
        load.rss_peak = max(load.rss_peak, rss_mib(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.05)


async def hammer(base: str, path: str, clients: int, duration: float, pid: int, tag: str) -> Load:
    """`clients` senders, each posting one signed delivery after another for `duration` seconds."""
    url = httpx.URL(base)
    load = Load(clients)
    connections = [Connection(url.host, url.port or 80) for _ in range(clients)]
    for connection in connections:
        await connection.open()
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(pid, load, stop))
    deadline = time.perf_counter() + duration

    async def sender(number: int, connection: Connection) -> None:
        sent = 0
        while time.perf_counter() < deadline:
            body = json.dumps({"client": f"{tag}-{clients}-{number}", "n": sent}).encode()
            started = time.perf_counter()
            status, answer = await connection.post(path, body, signed(SECRET, body))
            load.latencies.append((time.perf_counter() - started) * 1000)
            load.statuses[status] += 1
            if status in (200, 202):
                load.answers.append(json.loads(answer))
            sent += 1

    load.cpu_start = cpu_seconds(pid)
    started = time.perf_counter()
    try:
        await asyncio.gather(*(sender(n, c) for n, c in enumerate(connections)))
    finally:
        load.elapsed = time.perf_counter() - started
        load.cpu_end = cpu_seconds(pid)
        stop.set()
        await sampler
        for connection in connections:
            await connection.close()
    return load


# --- the floor ------------------------------------------------------------------------------------


@contextmanager
def floor_server() -> Iterator[tuple[str, int, Path]]:
    with tempfile.TemporaryDirectory(prefix="atom-bench-floor-") as tmp:
        port = free_port()
        database = Path(tmp) / "floor.db"
        env = {**os.environ, "WEBHOOK_FLOOR_DB": str(database), "WEBHOOK_FLOOR_SECRET": SECRET}
        argv = [
            sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "_webhook_floor_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        with running(argv, env, f"{base}/") as proc:
            yield base, proc.pid, database


def floor_missing(database: Path, loads: list[Load]) -> int:
    """Deliveries the floor answered 202 for but did not store."""
    with contextlib.closing(sqlite3.connect(database)) as conn:
        stored = int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])
    return sum(load.accepted for load in loads) - stored


# --- Atom -----------------------------------------------------------------------------------------


@dataclass
class RunFigures:
    finished: int
    lost: int
    runs_per_s: float
    created_to_finished: list[float]


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def run_figures(database: Path, run_ids: list[str], timeout: float = 180) -> RunFigures:
    """Wait until every accepted run has finished, then read their times from the server's database."""
    uri = f"file:{database}?mode=ro"
    deadline = time.monotonic() + timeout
    rows: list[tuple[str, str, str, str | None]] = []
    while True:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as conn:
            rows = conn.execute(
                "SELECT id, status, created_at, finished_at FROM workflow_runs"
                " WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(run_ids),),
            ).fetchall()
        if all(status != "running" for _, status, _, _ in rows) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    succeeded = [r for r in rows if r[1] == "succeeded" and r[3] is not None]
    if not succeeded:
        return RunFigures(0, len(run_ids), 0.0, [0.0])
    first = min(_ts(r[2]) for r in succeeded)
    last = max(_ts(str(r[3])) for r in succeeded)
    spans = [(_ts(str(r[3])) - _ts(r[2])).total_seconds() * 1000 for r in succeeded]
    rate = len(succeeded) / max((last - first).total_seconds(), 1e-9)
    return RunFigures(len(succeeded), len(run_ids) - len(succeeded), rate, spans)


async def set_up(base: str, key: str) -> dict[str, str]:
    """The agent (AUTONOMOUS), the webhook secret and one workflow per respond mode, over the API."""
    headers = {"Authorization": f"Bearer {key}"}
    paths = {}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        agent = await client.post("/api/agents", json={"name": "bench", "confidence": 0.95})
        assert agent.status_code == 201, agent.text
        secret = await client.post("/api/secrets", json={"name": "bench_hook", "value": SECRET})
        assert secret.status_code == 201, secret.text
        for mode, respond in RESPOND.items():
            created = await client.post("/api/workflows", json={"source": WORKFLOW.format(mode=mode, respond=respond)})
            if created.status_code != 201:
                print(f"respond: {mode} not measured: the definition is refused ({created.status_code})")
                continue
            paths[mode] = next(t["webhook_path"] for t in created.json()["triggers"])
    return paths


@dataclass
class Level:
    load: Load
    runs: RunFigures


def _run_ids(load: Load) -> list[str]:
    return [str(a["run_id"]) for a in load.answers if a.get("run_id")]


HEADER = (
    f"{'clients':>7}{'accepted/s':>12}{'runs/s':>9}{'x floor':>9}{'accept P50':>12}{'P99':>9}"
    f"{'created->fin P50':>18}{'P99':>9}{'CPU ms/run':>12}{'RSS MiB':>9}{'lost':>6}{'refused':>9}"
)


def cpu_ms(load: Load, count: int) -> float:
    return (load.cpu_end - load.cpu_start) * 1000 / max(count, 1)


def level_row(level: Level, floor: Load | None) -> str:
    load, runs = level.load, level.runs
    ratio = f"{runs.runs_per_s / (floor.accepted / floor.elapsed):>9.2f}" if floor else f"{'':>9}"
    refused = sum(n for status, n in load.statuses.items() if status not in (200, 202))
    return (
        f"{load.clients:>7}{load.accepted / load.elapsed:>12.1f}{runs.runs_per_s:>9.1f}{ratio}"
        f"{percentile(load.latencies, 50):>12.2f}{percentile(load.latencies, 99):>9.2f}"
        f"{percentile(runs.created_to_finished, 50):>18.2f}{percentile(runs.created_to_finished, 99):>9.2f}"
        f"{cpu_ms(load, runs.finished):>12.2f}{load.rss_peak:>9.0f}{runs.lost:>6}{refused:>9}"
    )


async def main_async(duration: float, levels: tuple[int, ...], memory: bool) -> bool:
    floors: dict[int, Load] = {}
    with floor_server() as (base, pid, database):
        warm = await hammer(base, "/hook", 4, 1.0, pid, "warm")
        for clients in levels:
            floors[clients] = await hammer(base, "/hook", clients, duration, pid, "floor")
        missing = floor_missing(database, [warm, *floors.values()])
    print(f"\nfloor: bare ASGI app, same HMAC checks, one INSERT + commit per delivery ({duration:g} s per level)")
    print(f"{'clients':>7}{'deliveries/s':>14}{'P50 ms':>9}{'P99 ms':>9}{'CPU ms/delivery':>17}{'RSS MiB':>9}")
    for clients, load in floors.items():
        print(
            f"{clients:>7}{load.accepted / load.elapsed:>14.1f}{percentile(load.latencies, 50):>9.2f}"
            f"{percentile(load.latencies, 99):>9.2f}{cpu_ms(load, load.accepted):>17.3f}{load.rss_peak:>9.0f}"
        )
    print(f"deliveries answered 202 but not stored: {missing}")

    results: dict[str, dict[int, Level]] = {}
    env = {} if memory else {"ATOM_MEMORY_ENABLED": "false"}
    with atom_server_process(env) as server:
        paths = await set_up(server.base, server.key)
        idle_rss = rss_mib(server.pid)
        database = server.data_dir / "atom.db"
        for mode, path in paths.items():
            warm = await hammer(server.base, path, 4, 1.0, server.pid, f"warm-{mode}")
            await run_figures(database, _run_ids(warm))
            results[mode] = {}
            for clients in levels:
                load = await hammer(server.base, path, clients, duration, server.pid, mode)
                runs = await run_figures(database, _run_ids(load))
                load.cpu_end = cpu_seconds(server.pid)  # the runs' own work included
                results[mode][clients] = Level(load, runs)

    ok = True
    for mode, by_level in results.items():
        print(
            f"\natom-os serve (SQLite, embedded pool, memory {'on' if memory else 'off'}; idle RSS {idle_rss:.0f} MiB),"
            f" webhook -> 1 noop step, respond: {mode}"
        )
        print(HEADER)
        for clients, level in by_level.items():
            print(level_row(level, floors.get(clients)))
    accept = results.get("on_accept", {})
    if 10 in accept and 1 in accept:
        ten, one = accept[10], accept[1]
        floor_rate = floors[10].accepted / floors[10].elapsed
        rss = max(level.load.rss_peak for by_level in results.values() for level in by_level.values())
        checks = [
            (f"10 clients: >= 300 completed runs/s, none lost: {ten.runs.runs_per_s:.0f}/s, "
             f"{ten.runs.lost} lost", ten.runs.runs_per_s >= 300 and ten.runs.lost == 0),
            (f"1 client: accept P50 <= 3 ms: {percentile(one.load.latencies, 50):.2f} ms",
             percentile(one.load.latencies, 50) <= 3),
            (f"1 client: created->finished P50 <= 5 ms: {percentile(one.runs.created_to_finished, 50):.2f} ms",
             percentile(one.runs.created_to_finished, 50) <= 5),
            (f"RSS <= 250 MiB under load: {rss:.0f} MiB", rss <= 250),
            (f"10 clients: completed runs/s >= 0.5x floor deliveries/s: {ten.runs.runs_per_s / floor_rate:.2f}x",
             ten.runs.runs_per_s >= 0.5 * floor_rate),
        ]  # fmt: skip
        print()
        for text, passed in checks:
            print(f"target {text} {verdict(passed)}")
            ok = ok and passed
    lost = sum(level.runs.lost for by_level in results.values() for level in by_level.values())
    return ok and lost == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per client level")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="client counts, comma-separated")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="leave episodic memory on (its model and its ingestion of every finished run share the server)",
    )
    args = parser.parse_args()
    levels = tuple(int(n) for n in args.levels.split(","))
    with contextlib.suppress(ImportError):
        import uvloop  # the client's own overhead, kept small

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return 0 if asyncio.run(main_async(args.duration, levels, args.memory)) else 1


if __name__ == "__main__":
    sys.exit(main())
