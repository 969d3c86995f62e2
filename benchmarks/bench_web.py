"""The dashboard on loopback (issue 10, Performance), against a real `atom-os serve` on SQLite.

1. HTML server time: sequential GETs of Home and a workflow run's page with a signed-in session
   cookie, P50/P99 vs the bare ASGI app in the same run; bytes of each HTML document.
2. Full load in Chromium (Debian's, as the browser tests): navigation start to the load event, P50,
   and the bytes transferred (document + CSS + JS).
3. Live fan-out: 100 browser-like SSE subscribers on the run pages' live stream
   (`/live/workflow-runs/{id}`, two per run) while 50 workflow runs execute: every subscriber must see
   its run reach `succeeded`, each update whole; the delay of an update is its arrival time minus the
   newest timestamp in it (the step or run change it reports).

Targets: HTML P50 <= 20 ms server time, full page <= 300 ms, P99 event delay <= 100 ms. Note: the
live stream recomputes at most once per `atom.web.live.COALESCE_S` (0.2 s): a change after a quiet spell is
sent at once, changes in a burst wait for the next recomputation (up to that long).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from _common import ATOM_OS, bare_server, free_port, sequential_latencies, summary, verdict, wait_until_up

PASSWORD = "bench-password-long-enough"  # noqa: S105 - a throwaway user of a temporary data dir
CHROMIUM = "/usr/bin/chromium"
WORKFLOW = """name: bench-web
agent: bench-bot
steps:
  - id: hold
    type: wait
    duration: {hold}s
  - id: a
    action: noop
    needs: [hold]
    with: {{n: 1}}
  - id: b
    action: noop
    needs: [a]
    with: {{n: 2}}
"""


@contextmanager
def server() -> Iterator[tuple[str, str]]:
    """`atom-os serve` on a fresh data dir with an admin who has a password; yields (base URL, API key)."""
    with tempfile.TemporaryDirectory(prefix="atom-bench-web-") as data_dir:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
        env.update(ATOM_DATA_DIR=data_dir, ATOM_PORT=str(port), ATOM_LOG_LEVEL="WARNING")
        subprocess.run([ATOM_OS, "init"], env=env, capture_output=True, text=True, check=True)
        made = subprocess.run(
            [ATOM_OS, "users", "create", "bench", "--role", "admin"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = next(line for line in made.stdout.splitlines() if line.startswith("atom_"))
        subprocess.run(
            [ATOM_OS, "users", "set-password", "bench", "--password-stdin"],
            env=env, input=PASSWORD + "\n", capture_output=True, text=True, check=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([ATOM_OS, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_up(f"{base}/health/live", proc, timeout=180)  # a busy machine starts slowly
            yield base, key
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def sign_in(client: httpx.Client, base: str) -> str:
    form = client.get(f"{base}/signin")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    done = client.post(
        f"{base}/signin",
        data={"csrf_token": token.group(1), "username": "bench", "password": PASSWORD, "next": "/"},
    )
    assert done.status_code == 303, done.text
    return str(client.cookies["atom_session"])


def setup_workflow(base: str, key: str, hold_s: float) -> str:
    headers = {"X-API-Key": key}
    httpx.post(f"{base}/api/agents", json={"name": "bench-bot"}, headers=headers).raise_for_status()
    made = httpx.post(f"{base}/api/workflows", json={"source": WORKFLOW.format(hold=hold_s)}, headers=headers)
    made.raise_for_status()
    return str(made.json()["id"])


def start_run(base: str, key: str, workflow_id: str) -> str:
    started = httpx.post(f"{base}/api/workflows/{workflow_id}/runs", json={}, headers={"X-API-Key": key})
    started.raise_for_status()
    return str(started.json()["run_id"])


def wait_runs(base: str, key: str, run_ids: list[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    pending = set(run_ids)
    with httpx.Client(headers={"X-API-Key": key}) as client:
        while pending and time.monotonic() < deadline:
            pending = {r for r in pending if client.get(f"{base}/api/workflow-runs/{r}").json()["status"] == "running"}
            time.sleep(0.2)
    if pending:
        raise RuntimeError(f"{len(pending)} runs did not finish")


def html_times(base: str, cookie: str, path: str, requests: int, warmup: int) -> tuple[dict[str, float], int]:
    with httpx.Client(cookies={"atom_session": cookie}) as client:
        size = len(client.get(f"{base}{path}").content)
        return summary(sequential_latencies(client, f"{base}{path}", requests, warmup)), size


async def browser_loads(base: str, cookie: str, paths: list[str], loads: int) -> dict[str, tuple[float, int]]:
    from playwright.async_api import async_playwright

    out = {}
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        context = await browser.new_context()
        await context.add_cookies([{"name": "atom_session", "value": cookie, "url": base}])
        page = await context.new_page()
        for path in paths:
            times, size = [], 0
            for _ in range(loads):
                await page.goto(f"{base}{path}", wait_until="load")
                timing = await page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " const r = performance.getEntriesByType('resource');"
                    " return [n.loadEventEnd - n.startTime,"
                    " n.transferSize + r.reduce((s, e) => s + (e.transferSize || e.encodedBodySize || 0), 0)]; }"
                )
                times.append(float(timing[0]))
                size = max(size, int(timing[1]))
            out[path] = (summary(times)["p50"], size)
        await browser.close()
    return out


def _newest(state: dict[str, Any]) -> float:
    stamps = [state.get("finished_at")] + [
        s.get(k) for s in state["steps"] for k in ("queued_at", "started_at", "finished_at")
    ]
    return max(datetime.fromisoformat(t).timestamp() for t in stamps if t)


async def subscriber(base: str, cookie: str, run_id: str, delays: list[float], done: list[str]) -> None:
    url = f"{base}/live/workflow-runs/{run_id}"
    async with (
        httpx.AsyncClient(cookies={"atom_session": cookie}, timeout=httpx.Timeout(10, read=120)) as client,
        client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response,
    ):
        first = True
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "update":
                state = json.loads(line[6:])
                if not first:  # the first message is the state at connection, not a change
                    delays.append((time.time() - _newest(state)) * 1000)
                first = False
                if state["status"] != "running":
                    done.append(state["status"])
                    return


async def fan_out(base: str, key: str, cookie: str, workflow_id: str, runs: int, subscribers: int) -> None:
    delays: list[float] = []
    done: list[str] = []
    tasks = []
    per_run = max(1, subscribers // runs)
    for _ in range(runs):  # each run's subscribers connect as soon as it exists (its first step waits)
        run_id = await asyncio.to_thread(start_run, base, key, workflow_id)
        tasks += [asyncio.create_task(subscriber(base, cookie, run_id, delays, done)) for _ in range(per_run)]
    subscribers = len(tasks)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=180)
    every = len(done) == subscribers and all(status == "succeeded" for status in done)
    stats = summary(delays) if delays else {"p50": float("nan"), "p99": float("nan")}
    print(f"\nlive fan-out: {subscribers} SSE subscribers, {runs} workflow runs (3 steps each)")
    print(f"  subscribers that saw their run succeed: {len(done)}/{subscribers} -> {verdict(every)}")
    print(f"  updates received: {len(delays)}; delay P50 {stats['p50']:.1f} ms, P99 {stats['p99']:.1f} ms"
          f" -> P99 <= 100 ms: {verdict(stats['p99'] <= 100)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--loads", type=int, default=15)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--hold", type=float, default=10, help="seconds each run waits before its steps")
    args = parser.parse_args()

    with bare_server() as bare, httpx.Client() as client:
        floor = summary(sequential_latencies(client, f"{bare}/", args.requests, args.warmup))
    with server() as (base, key), httpx.Client() as client:
        cookie = sign_in(client, base)
        workflow_id = setup_workflow(base, key, hold_s=args.hold)
        run_id = start_run(base, key, workflow_id)
        wait_runs(base, key, [run_id])
        pages = {"/": "home", f"/workflow-runs/{run_id}": "run page"}
        print(f"HTML server time, {args.requests} sequential GETs each (ms; ratio = page / bare ASGI app)")
        print(f"{'page':<12}{'P50':>8}{'P99':>8}{'P50 x':>8}{'bytes':>8}  target")
        print(f"{'bare ASGI':<12}{floor['p50']:>8.2f}{floor['p99']:>8.2f}{1:>8.1f}{'':>8}  (floor)")
        for path, label in pages.items():
            s, size = html_times(base, cookie, path, args.requests, args.warmup)
            print(f"{label:<12}{s['p50']:>8.2f}{s['p99']:>8.2f}{s['p50'] / floor['p50']:>8.1f}{size:>8}"
                  f"  P50 <= 20 ms: {verdict(s['p50'] <= 20)}")  # fmt: skip
        if Path(CHROMIUM).exists():
            loads = asyncio.run(browser_loads(base, cookie, list(pages), args.loads))
            print(f"\nfull load in Chromium, {args.loads} loads each (navigation start to load event)")
            for path, (p50, size) in loads.items():
                print(f"  {pages[path]:<10} P50 {p50:>7.1f} ms, {size} bytes transferred"
                      f"  -> <= 300 ms: {verdict(p50 <= 300)}")  # fmt: skip
        else:
            print(f"\nfull load: skipped, no Chromium at {CHROMIUM}")
        asyncio.run(fan_out(base, key, cookie, workflow_id, args.runs, args.subscribers))


if __name__ == "__main__":
    main()
