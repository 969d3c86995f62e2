"""A bounded, per-client event buffer between an agent run and one streaming client.

The run never waits for a client. `emit` appends; when the client lags (events are waiting),
a token is merged into a waiting token event instead of queueing another one, so no text is lost
and memory stays bounded by the run's token cap. If `capacity` events are still waiting, the client
is too slow: the channel closes with `overflowed` set and the run is cancelled by its owner.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

Event = dict[str, Any]


class ChannelOverflow(Exception):
    """The client fell `capacity` events behind."""


class EventChannel:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._events: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.closed = False
        self.overflowed = False

    def emit(self, event: Event) -> None:
        if self.closed:
            return
        if event.get("type") == "token" and self._events:
            last = self._events[-1]
            if last.get("type") == "token":
                self._events[-1] = {**last, "text": last["text"] + event["text"]}
                return
        if len(self._events) >= self.capacity:
            self.overflowed = True
            self.close()
            raise ChannelOverflow(f"the client is {self.capacity} events behind")
        self._events.append(event)
        self._ready.set()

    def close(self) -> None:
        self.closed = True
        self._ready.set()

    async def get(self) -> Event | None:
        """The next event, or None once the channel is closed and drained."""
        while not self._events:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._events.popleft()

    def pending(self) -> int:
        return len(self._events)
