"""Governance check speed. Issue 3 targets: cached check P99 <= 5 us and >= 1M checks/s on one core
(floor: a plain dict lookup); POST /api/governance/check over HTTP, throughput and P99 (floor: bare
ASGI app on the same uvicorn, sent the same request, parsing its JSON, answering JSON of the same size).

Two paths are measured, because only one of them is free of database work: an allowed read
(complexity 1, cached: no audit record) and a decision that writes its audit record (every other
cached decision; measured with its commit, next to a bare INSERT + commit on the same database).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import text

from _common import atom_server, bare_server, summary, verdict
from atom.agents import service as agents_service
from atom.agents.schemas import AgentCreate
from atom.audit import service as audit
from atom.config import Settings
from atom.db import migrate
from atom.db.session import Database
from atom.governance import service as governance
from atom.governance.cache import decision_cache
from atom.governance.policy import GovernanceContext
from atom.registries import ensure_registries

ACTION = "get_current_time"  # an implemented complexity-1 action (a tool): allowed for every level, cached


def per_call_ns(fn: object, calls: int) -> list[float]:
    timer = time.perf_counter_ns
    samples = []
    for _ in range(calls):
        started = timer()
        fn()  # type: ignore[operator]
        samples.append((timer() - started) / 1000)
    return samples


def throughput(fn: object, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        fn()  # type: ignore[operator]
    return calls / (time.perf_counter() - started)


async def in_process(calls: int) -> None:
    ensure_registries()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp))  # type: ignore[call-arg]
        db = Database(settings)
        await migrate.upgrade(db)
        async with db.session_scope() as s:
            agent = await agents_service.create_agent(
                session=s,
                agent_in=AgentCreate(name="bench", confidence=0.95),
                actor=audit.Actor.system(),
                settings=settings,
                may_promote=True,  # set up as an approver would
            )
        context = GovernanceContext()
        key = context.cache_key(ACTION)
        async with db.sessionmaker() as session:
            first = await governance.check(
                session=session, agent_id=agent.id, action=ACTION, context=context, settings=settings
            )
            await session.commit()
            assert first.allowed
            floor = {key: first}
            lookup = decision_cache.lookup

            def plain() -> object:
                return floor.get(key)

            def cached() -> object:
                return lookup(agent.id, key)

            loop = asyncio.get_running_loop()

            async def full() -> None:
                await governance.check(
                    session=session, agent_id=agent.id, action=ACTION, context=context, settings=settings
                )

            # the full async path, awaited in a tight loop (every call is a cache hit: no database work)
            full_samples = []
            for _ in range(calls // 10):
                started = time.perf_counter_ns()
                await full()
                full_samples.append((time.perf_counter_ns() - started) / 1000)
            started = loop.time()
            for _ in range(calls // 10):
                await full()
            full_rate = (calls // 10) / (loop.time() - started)

            # the audited path: a cached decision that writes its audit record, committed like a request
            writes = max(200, calls // 1000)
            await session.execute(text("CREATE TABLE bench_floor (id INTEGER PRIMARY KEY, payload TEXT NOT NULL)"))
            await session.commit()
            insert_samples = []
            for n in range(writes):
                started_ns = time.perf_counter_ns()
                await session.execute(text("INSERT INTO bench_floor (id, payload) VALUES (:id, '{}')"), {"id": n})
                await session.commit()
                insert_samples.append((time.perf_counter_ns() - started_ns) / 1000)
            audited_action = "send_email"
            await governance.check(
                session=session, agent_id=agent.id, action=audited_action, context=context, settings=settings
            )
            await session.commit()
            audited_samples = []
            for _ in range(writes):
                started_ns = time.perf_counter_ns()
                await governance.check(
                    session=session, agent_id=agent.id, action=audited_action, context=context, settings=settings
                )
                await session.commit()
                audited_samples.append((time.perf_counter_ns() - started_ns) / 1000)
            audited_rate = writes / (sum(audited_samples) / 1e6)
            insert_rate = writes / (sum(insert_samples) / 1e6)
        await db.dispose()

    rows = [
        ("dict lookup (floor)", summary(per_call_ns(plain, calls)), throughput(plain, calls)),
        ("cache.lookup (sync hit)", summary(per_call_ns(cached, calls)), throughput(cached, calls)),
        ("await check() read (hit)", summary(full_samples), full_rate),
        ("INSERT + commit (db floor)", summary(insert_samples), insert_rate),
        ("check() audited + commit", summary(audited_samples), audited_rate),
    ]
    base = rows[0]
    db_floor = rows[3][1]
    print(f"cached governance check, one core, {calls} calls ({writes} for the audited path; us, timer included)")
    print(f"{'path':<28}{'P50':>10}{'P99':>10}{'checks/s':>14}{'P99 x floor':>13}{'P99 x db':>10}")
    for name, s, rate in rows:
        vs_db = (
            f"{s['p99'] / db_floor['p99']:>10.2f}" if name.startswith(("INSERT", "check() audited")) else f"{'':>10}"
        )
        print(f"{name:<28}{s['p50']:>10.3f}{s['p99']:>10.3f}{rate:>14,.0f}{s['p99'] / base[1]['p99']:>13.2f}{vs_db}")
    print(f"(the audited path is {audited_action!r}: a cached decision that writes one audit record per check)")
    sync, full_row = rows[1], rows[2]
    print(f"target P99 <= 5 us: sync {verdict(sync[1]['p99'] <= 5)}, full {verdict(full_row[1]['p99'] <= 5)}; "
          f">= 1M checks/s: sync {verdict(sync[2] >= 1e6)}, full {verdict(full_row[2] >= 1e6)}")  # fmt: skip


async def hammer(
    url: str, requests: int, concurrency: int, json_body: dict[str, str] | None, headers: dict[str, str]
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:
        for _ in range(50):
            await client.post(url, json=json_body, headers=headers)
        queue = iter(range(requests))

        async def worker() -> None:
            for _ in queue:
                started = time.perf_counter()
                response = await client.post(url, json=json_body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}: {response.text[:200]}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started), latencies


async def over_http(requests: int, concurrency: int) -> None:
    with atom_server() as (base, key):
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient() as client:
            agent = (
                await client.post(f"{base}/api/agents", json={"name": "bench", "confidence": 0.95}, headers=headers)
            ).json()
            body = {"agent_id": agent["id"], "action": ACTION}
            answer = await client.post(f"{base}/api/governance/check", json=body, headers=headers)
        rate, lat = await hammer(f"{base}/api/governance/check", requests, concurrency, body, headers)
    # The floor gets the same request (body and headers) and parses it, and answers JSON of the same size.
    floor_headers = {**headers, "x-floor-response-bytes": str(len(answer.content))}
    with bare_server() as bare:
        bare_rate, bare_lat = await hammer(f"{bare}/", requests, concurrency, body, floor_headers)
    print(f"\nPOST /api/governance/check over HTTP, {requests} requests, {concurrency} concurrent (server: 1 process)")
    print(f"{'server':<16}{'req/s':>10}{'P50 ms':>9}{'P99 ms':>9}")
    for name, r, latencies in (("bare ASGI app", bare_rate, bare_lat), ("atom", rate, lat)):
        print(f"{name:<16}{r:>10,.0f}{statistics.median(latencies):>9.2f}{summary(latencies)['p99']:>9.2f}")
    print(f"atom / bare: throughput {rate / bare_rate:.2f}x, P99 {summary(lat)['p99'] / summary(bare_lat)['p99']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    asyncio.run(in_process(args.calls))
    asyncio.run(over_http(args.requests, args.concurrency))


if __name__ == "__main__":
    main()
