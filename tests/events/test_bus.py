"""The event bus: immediate local handlers, bounded subscriber queues, Redis fan-out between processes."""

from __future__ import annotations

import asyncio
from typing import Any

from atom.events.bus import SUBSCRIBER_BUFFER, EventBus, RedisBus


async def test_local_handlers_run_before_publish_returns() -> None:
    bus = EventBus()
    seen: list[dict[str, Any]] = []
    bus.on("t", seen.append)
    bus.on("t", seen.append)  # registering twice does not double-deliver
    await bus.publish("t", {"n": 1})
    assert seen == [{"n": 1}]


async def test_a_broken_handler_does_not_stop_others() -> None:
    bus = EventBus()
    seen: list[int] = []

    def broken(_: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    bus.on("t", broken)
    bus.on("t", lambda p: seen.append(p["n"]))
    await bus.publish("t", {"n": 2})
    assert seen == [2]


async def test_slow_subscribers_lose_the_oldest_not_memory() -> None:
    bus = EventBus()
    async with bus.subscribe("t") as events:
        for i in range(SUBSCRIBER_BUFFER + 10):
            await bus.publish("t", {"i": i})
        first = await anext(events)
    assert first == {"i": 10}


async def test_publish_soon_and_drain() -> None:
    bus = EventBus()
    seen: list[int] = []
    bus.on("t", lambda p: seen.append(p["i"]))
    for i in range(3):
        bus.publish_soon("t", {"i": i})
    await bus.drain()
    assert seen == [0, 1, 2]


async def test_redis_bus_reaches_another_bus_but_not_itself(redis_url: str) -> None:
    a, b = RedisBus(redis_url), RedisBus(redis_url)
    await a.start()
    await b.start()
    try:
        got_a: list[dict[str, Any]] = []
        got_b: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        a.on("x.topic", got_a.append)
        b.on("x.topic", got_b.put_nowait)
        await a.publish("x.topic", {"hello": "world"})
        assert await asyncio.wait_for(got_b.get(), timeout=10) == {"hello": "world"}
        await asyncio.sleep(0.1)
        assert got_a == [{"hello": "world"}]  # delivered locally once, not again via Redis
    finally:
        await a.stop()
        await b.stop()
