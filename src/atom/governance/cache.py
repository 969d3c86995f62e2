"""In-process decision cache: a hit is two dict lookups and a clock read.

Decisions are dropped for an agent the moment it changes ("agent.changed" on the event bus: at
once in this process, from other processes through Redis), and expire after a TTL as a backstop.
A decision computed while the agent changed is not stored: `generation(agent)` is read before
the database and `store` refuses if an invalidation came in between. Each agent keeps at most
MAX_ENTRIES_PER_AGENT decisions and the cache at most MAX_AGENTS agents.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from atom.events.bus import EventBus, get_bus
from atom.governance.policy import Decision
from atom.observability.metrics import GOVERNANCE_CACHE

AGENT_CHANGED = "agent.changed"
Key = tuple[str, str, bool, bool]
MAX_ENTRIES_PER_AGENT = 512
MAX_AGENTS = 10_000


class GovernanceCache:
    def __init__(self, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[str, dict[Key, tuple[float, Decision]]] = {}
        self._generations: dict[str, int] = {}
        self._bus: EventBus | None = None
        self._hits = GOVERNANCE_CACHE.labels(result="hit")
        self._misses = GOVERNANCE_CACHE.labels(result="miss")

    def lookup(self, agent_id: str, key: Key) -> Decision | None:
        per_agent = self._entries.get(agent_id)
        if per_agent is not None:
            entry = per_agent.get(key)
            if entry is not None and entry[0] > self.clock():
                self._hits.inc()
                return entry[1]
        self._misses.inc()
        return None

    def generation(self, agent_id: str) -> int:
        return self._generations.get(agent_id, 0)

    def store(self, agent_id: str, key: Key, decision: Decision, generation: int) -> None:
        """Keep `decision` unless the agent changed since `generation` was read."""
        self._ensure_listening()
        if self._generations.get(agent_id, 0) != generation:
            return
        per_agent = self._entries.get(agent_id)
        if per_agent is None:
            if len(self._entries) >= MAX_AGENTS:
                self._entries.pop(next(iter(self._entries)))
            per_agent = self._entries[agent_id] = {}
        elif len(per_agent) >= MAX_ENTRIES_PER_AGENT and key not in per_agent:
            per_agent.pop(next(iter(per_agent)))
        per_agent[key] = (self.clock() + self.ttl_s, replace(decision, cached=True))

    def invalidate(self, agent_id: str) -> None:
        self._generations[agent_id] = self._generations.get(agent_id, 0) + 1
        self._entries.pop(agent_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def _on_agent_changed(self, payload: dict[str, Any]) -> None:
        agent_id = payload.get("agent_id")
        if isinstance(agent_id, str):
            self.invalidate(agent_id)

    def _ensure_listening(self) -> None:
        bus = get_bus()
        if self._bus is not bus:
            bus.on(AGENT_CHANGED, self._on_agent_changed)
            self._bus = bus


decision_cache = GovernanceCache()
