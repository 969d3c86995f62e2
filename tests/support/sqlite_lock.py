"""Whether a transaction of the process holds SQLite's write lock, seen from a connection of its own."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

TRIES = 40
PAUSE_S = 0.05


async def write_lock_is_free(path: Path) -> bool:
    """Try to take the write lock without waiting, a few times over two seconds: another writer's short
    transaction (a key's last use, say) ends between the tries, one held by a transaction that waits
    for the caller never does. The pauses are on the event loop, so those writers can finish."""
    for _ in range(TRIES):
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            await asyncio.sleep(PAUSE_S)
        finally:
            conn.close()
    return False
