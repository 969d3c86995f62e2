"""The event bus: in-process by default, Redis pub/sub across processes when ATOM_REDIS_URL is set.

Two ways to listen:
- `on(topic, handler)`: a synchronous handler called at once when an event is published in this
  process (and when one arrives from another process). Used where "at once" matters: the
  governance cache drops a decision before the publishing call returns.
- `subscribe(topic)`: an async iterator of events, for streams (WebSocket, SSE). Bounded: a slow
  reader loses the oldest events rather than growing memory without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from atom.config import Settings
from atom.observability.logging import get_logger

Handler = Callable[[dict[str, Any]], None]
CHANNEL_PREFIX = "atom:"
SUBSCRIBER_BUFFER = 1000
_SERIALS = itertools.count(1)

log = get_logger("atom.events")


class EventBus:
    """In-process bus. Subclasses add transport to other processes."""

    spans_processes = False  # True: other processes' events arrive here (while `delivery_epoch` is not None)

    def __init__(self) -> None:
        self.serial = next(_SERIALS)  # unique for the process's life (unlike id(), never reused)
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._pending: set[asyncio.Task[None]] = set()

    def on(self, topic: str, handler: Handler) -> None:
        if handler not in self._handlers[topic]:
            self._handlers[topic].append(handler)

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self._deliver(topic, payload)

    def publish_local(self, topic: str, payload: dict[str, Any]) -> None:
        """Deliver in this process only, synchronously (usable from sync code)."""
        self._deliver(topic, payload)

    def publish_soon(self, topic: str, payload: dict[str, Any]) -> None:
        """Publish from sync code (e.g. an after-commit hook); `drain()` waits for it."""
        try:
            task = asyncio.get_running_loop().create_task(self._publish_logged(topic, payload))
        except RuntimeError:  # no loop: deliver here at least
            self._deliver(topic, payload)
            return
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait for every publish started with `publish_soon` (before a short-lived process exits)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _publish_logged(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            await self.publish(topic, payload)
        except Exception:
            log.exception("event publish failed", topic=topic)

    @asynccontextmanager
    async def subscribe(self, topic: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=SUBSCRIBER_BUFFER)
        self._queues[topic].add(queue)

        async def events() -> AsyncIterator[dict[str, Any]]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            self._queues[topic].discard(queue)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def delivery_epoch(self) -> int | None:
        """Changes whenever events from other processes may have been missed; None while they are.

        In-process: nothing can be missed (always 0). Caches that rely on invalidation events (the
        principal cache) trust an entry only under the epoch it was stored in.
        """
        return 0

    def _deliver(self, topic: str, payload: dict[str, Any]) -> None:
        for handler in list(self._handlers.get(topic, ())):
            try:
                handler(payload)
            except Exception:  # one broken listener must not stop the others
                log.exception("event handler failed", topic=topic)
        for queue in list(self._queues.get(topic, ())):
            if queue.full():
                queue.get_nowait()  # bounded: drop the oldest for a reader that does not keep up
            queue.put_nowait(payload)


InProcessBus = EventBus


class RedisBus(EventBus):
    """Publishes to Redis and delivers what other processes publish; its own messages are not re-delivered."""

    spans_processes = True

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.origin = uuid.uuid4().hex
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._epoch = 0
        self._listening = False

    async def start(self) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(self.url, decode_responses=True)
        await self._redis.ping()
        self._listener = asyncio.create_task(self._listen(), name="atom-redis-bus")
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()
        self._listening = False

    def delivery_epoch(self) -> int | None:
        """A new epoch each time the subscription is (re)made; None while it is down (events may be lost)."""
        return self._epoch if self._listening else None

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        self._deliver(topic, payload)
        message = json.dumps({"origin": self.origin, "payload": payload}, default=str)
        await self._redis.publish(CHANNEL_PREFIX + topic, message)

    async def _listen(self) -> None:
        """Deliver other processes' events; reconnect (with backoff) whenever Redis goes away."""
        backoff = 0.5
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                self._epoch += 1
                self._listening = True
                self._ready.set()
                backoff = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "pmessage":
                        self._receive(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                self._listening = False
                log.warning("event bus lost Redis; reconnecting", retry_in_s=backoff, exc_info=True)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            finally:
                self._listening = False
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _receive(self, message: dict[str, Any]) -> None:
        try:
            envelope = json.loads(message["data"])
        except (TypeError, ValueError):
            log.warning("ignored a malformed bus message")
            return
        if envelope.get("origin") != self.origin:
            self._deliver(str(message["channel"])[len(CHANNEL_PREFIX) :], envelope.get("payload") or {})


def build_bus(settings: Settings) -> EventBus:
    return RedisBus(settings.redis_url) if settings.redis_url else InProcessBus()


_current: EventBus | None = None


def get_bus() -> EventBus:
    """The process's bus (an in-process one until `set_bus` installs the configured bus)."""
    global _current
    if _current is None:
        _current = InProcessBus()
    return _current


def reset_bus() -> None:
    """Back to a fresh in-process bus (after the configured one stopped); listeners carry over."""
    set_bus(InProcessBus())


def set_bus(bus: EventBus) -> None:
    """Install the configured bus; listeners registered on the previous one carry over."""
    global _current
    if _current is not None and _current is not bus:
        for topic, handlers in _current._handlers.items():
            for handler in handlers:
                if handler not in bus._handlers[topic]:
                    bus.on(topic, handler)
    _current = bus
