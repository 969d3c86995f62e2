"""A second Atom process for the cross-process cache test.

Connects to the same database and Redis, warms a cached decision, prints READY, then prints the
decision's outcome each time it changes, until told to stop (stdin closes).
"""

from __future__ import annotations

import asyncio
import sys

from atom.config import Settings
from atom.db.session import Database
from atom.events.bus import RedisBus, set_bus
from atom.governance import service as governance
from atom.governance.cache import decision_cache
from atom.governance.policy import GovernanceContext
from atom.registries import ensure_registries


async def main(database_url: str, redis_url: str, agent_id: str) -> None:
    settings = Settings(_env_file=None, database_url=database_url or None, redis_url=redis_url)  # type: ignore[call-arg]
    ensure_registries().catalogue.implement("create", "test")  # as in tests/governance/conftest.py
    db = Database(settings)
    bus = RedisBus(redis_url)
    await bus.start()
    set_bus(bus)
    decision_cache.ttl_s = 3600  # only invalidation may change the answer
    last = None
    stop = asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    while not stop.done():
        async with db.session_scope() as s:
            decision = await governance.check(
                session=s, agent_id=agent_id, action="create", context=GovernanceContext(), settings=settings
            )
        if decision.outcome != last:
            last = decision.outcome
            print("READY" if decision.cached is False and last == "allow" else f"OUTCOME {last.value}", flush=True)
        await asyncio.sleep(0.02)
    await bus.stop()
    await db.dispose()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
