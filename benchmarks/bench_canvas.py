"""Canvases on loopback (issue 12, Performance): the app under a real uvicorn on 127.0.0.1 (SQLite), real
Chromium, the agent's tools called as the agent runtime calls them (their tool context set).

1. Update latency: an agent's update_canvas call (append) to the browser showing the new version on
   /canvases/{id} (a MutationObserver in the page stamps Date.now() when `data-version` changes), P50/P99;
   the floor is a fetch() round trip from Chromium to the bare ASGI app in the same run. Updates are spaced
   past `atom.web.live.COALESCE_S`, so each is a change after a quiet spell (sent at once).
2. 10,000-point chart: navigation start to the chart's SVG polyline in the DOM, P50 over loads, vs the same
   for a 10-point chart (the floor: the page, its live stream and a trivial chart).
3. 50 concurrent canvases: 50 agents each append N lines to their own canvas at once, while 50 SSE
   subscribers (one per canvas) read the live view; every canvas must end at version 1 + N with every
   line in order, and every subscriber's last state must be that version (no loss). Updates/s vs bare
   single-row UPDATE + commit transactions/s on the same SQLite file (the floor).

Targets: update P50 <= 50 ms; 10k-point chart <= 500 ms; 50 canvases without loss.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from _common import bare_server, summary, verdict

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-password-long-enough"  # noqa: S105 - a throwaway user of a temporary data dir
OBSERVER = """() => {
  window.__seen = {};
  const stamp = () => document.querySelectorAll('[data-canvas]').forEach((n) => {
    const v = n.getAttribute('data-version');
    if (!(v in window.__seen)) { window.__seen[v] = Date.now(); }
  });
  new MutationObserver(stamp).observe(document.body, { subtree: true, childList: true, attributes: true });
  stamp();
}"""


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """The app under uvicorn on a loopback port in this event loop (the socket bound first)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(3000):  # server.started has no event to wait on
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, timeout=15)
        sock.close()


async def build(data_dir: Path) -> tuple[Any, Any, Any, str]:
    from atom.config import Settings
    from atom.db import migrate
    from atom.db.session import Database
    from atom.main import create_app
    from atom.security import service as security
    from atom.security.models import Role
    from atom.security.schemas import UserCreate

    settings = Settings(_env_file=None, data_dir=data_dir, log_level="WARNING", memory_enabled=False)  # type: ignore[call-arg]
    db = Database(settings)
    await migrate.upgrade(db)
    async with db.session_scope() as s:
        user = await security.create_user(
            session=s, user_in=UserCreate(username="bench", role=Role.OPERATOR, password=PASSWORD)
        )
    app = create_app(settings, db=db)  # logs at WARNING
    return app, db, settings, user.id


async def agent(db: Any, settings: Any, name: str) -> str:
    from atom.agents import service as agents_service
    from atom.agents.schemas import AgentCreate
    from atom.audit import service as audit

    async with db.session_scope() as s:
        made = await agents_service.create_agent(
            session=s, agent_in=AgentCreate(name=name, confidence=0.8), actor=audit.Actor.system(),
            settings=settings, may_promote=True,
        )  # fmt: skip
        return str(made.id)


async def tool(settings: Any, db: Any, agent_id: str, name: str, **params: Any) -> dict[str, Any]:
    from atom.runtime import tools as runtime_tools
    from atom.runtime.context import ToolContext, current_tool_context

    found = runtime_tools.current().get(name)
    assert found is not None
    token = current_tool_context.set(
        ToolContext(settings=settings, agent_id=agent_id, execution_id="bench", depth=0, db=db)
    )
    try:
        return await found.handler(found.validate(params))
    finally:
        current_tool_context.reset(token)


async def signed_in_page(browser: Any, base: str) -> Any:
    context = await browser.new_context(base_url=base)
    page = await context.new_page()
    await page.goto("/signin")
    await page.get_by_label("Username").fill("bench")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}/")
    return page


async def fetch_floor(browser: Any, bare: str, samples: int) -> dict[str, float]:
    page = await browser.new_page()
    await page.goto(bare)
    times = await page.evaluate(
        """async (n) => { const out = []; for (let i = 0; i < n + 10; i++) {
             const t = performance.now(); await (await fetch('/')).text(); out.push(performance.now() - t); }
           return out.slice(10); }""",
        samples,
    )
    await page.close()
    return summary([float(t) for t in times])


async def update_latency(page: Any, settings: Any, db: Any, agent_id: str, samples: int) -> dict[str, float]:
    from atom.web.live import COALESCE_S

    made = await tool(settings, db, agent_id, "present_canvas", kind="terminal", title="latency", content={"lines": []})
    await page.goto(f"/canvases/{made['canvas_id']}")
    await page.locator('[data-canvas][data-version="1"]').wait_for()
    await page.evaluate(OBSERVER)
    delays = []
    for n in range(samples):
        await asyncio.sleep(COALESCE_S + 0.05)
        started = time.time() * 1000
        done = await tool(settings, db, agent_id, "update_canvas", canvas_id=made["canvas_id"], op="append",
                          content={"lines": [f"line {n}"]})  # fmt: skip
        version = str(done["version"])
        await page.wait_for_function("(v) => v in window.__seen", arg=version)
        delays.append(await page.evaluate("(v) => window.__seen[v]", version) - started)
    return summary(delays)


# In every page: stamp when a live `update` event arrives and when a chart's polyline is first drawn (the
# animation frame after it entered the DOM), so the browser's own share is measured apart from the page load.
STAMPS = """(() => {
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, opts) {
    if (type !== 'update') { return add.call(this, type, fn, opts); }
    return add.call(this, type, function (e) { window.__updateAt = performance.now(); return fn.call(this, e); }, opts);
  };
  new MutationObserver(() => {
    if (window.__drawnAt === undefined && document.querySelector('polyline.series')) {
      window.__drawnAt = -1;
      requestAnimationFrame(() => { window.__drawnAt = performance.now(); });
    }
  }).observe(document, { subtree: true, childList: true });
})();"""


async def chart_load(page: Any, settings: Any, db: Any, agent_id: str, points: int, loads: int) -> tuple[float, float]:
    """(P50 navigation start -> drawn, P50 live update arrival -> drawn), in ms."""
    values = [((i * 7919) % 1000) / 10 for i in range(points)]
    made = await tool(settings, db, agent_id, "present_chart", chart_type="line", title=f"{points} points",
                      series=[{"name": "s", "values": values}])  # fmt: skip
    totals, renders = [], []
    for _ in range(loads):
        await page.goto(f"/canvases/{made['canvas_id']}", wait_until="commit")
        await page.wait_for_function("() => window.__drawnAt > 0")
        drawn, arrived = await page.evaluate("() => [window.__drawnAt, window.__updateAt]")
        totals.append(drawn)
        renders.append(drawn - arrived)
        count = await page.evaluate("() => document.querySelector('polyline.series').points.numberOfItems")
        assert count == points, count
    return summary(totals)["p50"], summary(renders)["p50"]


async def subscriber(
    base: str, cookie: str, canvas_id: str, last: dict[str, int], stop: asyncio.Event, changed: asyncio.Event
) -> None:
    async with (
        httpx.AsyncClient(cookies={"atom_session": cookie}, timeout=httpx.Timeout(10, read=120)) as client,
        client.stream("GET", f"{base}/live/canvases/{canvas_id}") as response,
    ):
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "update":
                last[canvas_id] = json.loads(line[6:])["canvases"][0]["version"]
                changed.set()
            if stop.is_set():
                return


async def concurrent(base: str, cookie: str, settings: Any, db: Any, canvases: int, updates: int) -> tuple[bool, float]:
    agents = [await agent(db, settings, f"bench-writer-{i}") for i in range(canvases)]
    ids = [
        (await tool(settings, db, a, "present_canvas", kind="terminal", content={"lines": []}))["canvas_id"]
        for a in agents
    ]
    last: dict[str, int] = {}
    stop, changed = asyncio.Event(), asyncio.Event()

    async def until(done: Any, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                changed.clear()
                await changed.wait()

    readers = [asyncio.create_task(subscriber(base, cookie, c, last, stop, changed)) for c in ids]
    await until(lambda: len(last) == canvases, 60)

    async def write(agent_id: str, canvas_id: str) -> None:
        for n in range(updates):
            await tool(
                settings, db, agent_id, "update_canvas", canvas_id=canvas_id, op="append", content={"lines": [str(n)]}
            )

    started = time.perf_counter()
    await asyncio.gather(*(write(a, c) for a, c in zip(agents, ids, strict=True)))
    elapsed = time.perf_counter() - started
    with contextlib.suppress(TimeoutError):  # a subscriber that never sees the end is reported below
        await until(lambda: all(last.get(c) == updates + 1 for c in ids), 30)
    stop.set()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    from atom.canvas import service as canvas_service

    stored_ok = True
    async with db.session_scope() as s:
        for canvas_id in ids:
            canvas = await canvas_service.get(session=s, canvas_id=canvas_id)
            stored_ok &= canvas.version == updates + 1 and canvas.content["lines"] == [str(n) for n in range(updates)]
    seen_ok = all(last.get(c) == updates + 1 for c in ids)
    print(f"  stored: every canvas at version {updates + 1} with its {updates} lines in order -> {verdict(stored_ok)}")
    print(f"  live: every subscriber's last state is the final version -> {verdict(seen_ok)}")
    return stored_ok and seen_ok, canvases * updates / elapsed


async def bare_updates(db: Any, count: int) -> float:
    from sqlalchemy import text

    async with db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS bench_floor (id INTEGER PRIMARY KEY, n INTEGER)"))
        await conn.execute(text("INSERT OR REPLACE INTO bench_floor (id, n) VALUES (1, 0)"))
    started = time.perf_counter()
    for _ in range(count):
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE bench_floor SET n = n + 1 WHERE id = 1"))
    return count / (time.perf_counter() - started)


async def main_async(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory(prefix="atom-bench-canvas-") as tmp, bare_server() as bare:
        app, db, settings, _user = await build(Path(tmp))
        writer = await agent(db, settings, "bench-agent")
        async with serving(app) as address, async_playwright() as pw:
            base = f"http://{address}"
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            floor = await fetch_floor(browser, bare, args.samples)
            page = await signed_in_page(browser, base)
            latency = await update_latency(page, settings, db, writer, args.samples)
            print(f"update latency, {args.samples} updates (ms; floor = fetch() round trip to the bare ASGI app)")
            print(f"  floor P50 {floor['p50']:.2f}, P99 {floor['p99']:.2f}")
            ratio = latency["p50"] / max(floor["p50"], 0.01)
            print(f"  update P50 {latency['p50']:.2f}, P99 {latency['p99']:.2f}; P50 x floor {ratio:.1f}"
                  f" -> P50 <= 50 ms: {verdict(latency['p50'] <= 50)}")  # fmt: skip
            await page.context.add_init_script(STAMPS)
            small, small_render = await chart_load(page, settings, db, writer, 10, args.loads)
            large, large_render = await chart_load(page, settings, db, writer, 10_000, args.loads)
            print(f"\nchart pages, P50 of {args.loads} loads (ms; floor = the same page with a 10-point chart)")
            print(f"  whole page, navigation start to drawn: 10 points {small:.1f}, 10,000 points {large:.1f}"
                  f" (ratio {large / small:.2f}; page load, live stream and drawing)")  # fmt: skip
            print(f"  render, the live update's arrival to drawn: 10 points {small_render:.1f}, 10,000 points "
                  f"{large_render:.1f} -> 10k render <= 500 ms: {verdict(large_render <= 500)}; "
                  f"10k whole page <= 500 ms: {verdict(large <= 500)}")  # fmt: skip
            cookie = next(c["value"] for c in await page.context.cookies() if c["name"] == "atom_session")
            await browser.close()
            print(f"\n{args.canvases} canvases updated at once, {args.updates} appends each, one SSE subscriber each")
            ok, rate = await concurrent(base, cookie, settings, db, args.canvases, args.updates)
            floor_rate = await bare_updates(db, 300)
            print(f"  {rate:.0f} updates/s vs {floor_rate:.0f} bare UPDATE+commit/s (ratio {rate / floor_rate:.2f})"
                  f" -> without loss: {verdict(ok)}")  # fmt: skip
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--canvases", type=int, default=50)
    parser.add_argument("--updates", type=int, default=10)
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no Chromium at {CHROMIUM}")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
