"""In-process cache of authenticated API keys (SHA-256 of the key -> its principal), fail-closed.

Authenticating a key is a join of `api_keys` and `users`; with the cache, a key seen recently is
a hash and a dict lookup. What makes it safe is that every change that can take access away — a
key revoked, a user disabled, a role changed — reaches every process before it can be missed:

- the security service announces each change ("security.principals_changed"): in this process at
  once and again after commit, to other processes over the event bus (Redis); every process then
  forgets every cached principal;
- an entry is trusted only while the bus that would have carried such a change is the one it was
  stored under and has not lost its connection since (`EventBus.delivery_epoch`): a Redis bus that
  disconnected may have missed a revocation, so entries from before are dropped, and while it is
  down nothing is cached;
- without Redis, processes on one machine share the SQLite file: each change also replaces a marker
  file next to it, which every lookup checks (one `stat`). PostgreSQL without Redis means other
  processes (the CLI, other hosts) cannot be heard: the cache is off;
- a principal read while a change was being announced is not stored (the token is read before the
  database and compared after), and every entry expires after `ATOM_AUTH_CACHE_TTL_S` as a backstop.

`ATOM_AUTH_CACHE_TTL_S=0` turns the cache off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from atom.events.bus import EventBus, get_bus
from atom.security.principal import Principal

PRINCIPALS_CHANGED = "security.principals_changed"
MAX_ENTRIES = 10_000
MARKER_SUFFIX = ".auth-changes"

Token = tuple[int, int, int, int, int]  # bus serial, bus epoch, marker inode, marker mtime, local generation


def marker_for(database_url: str | URL) -> Path | None:
    """The marker file of a file-backed SQLite database (next to it); None for any other database."""
    url = make_url(database_url)
    if not url.get_backend_name().startswith("sqlite") or not url.database or url.database == ":memory:":
        return None
    database = Path(url.database).resolve()
    return database.with_name(database.name + MARKER_SUFFIX)


def touch_marker(marker: Path | None) -> None:
    """Replace the marker (a new inode: seen by every process's next lookup)."""
    if marker is None:
        return
    temporary = marker.with_name(f"{marker.name}.{os.getpid()}.{time.monotonic_ns()}")
    temporary.write_text(str(time.time_ns()))
    os.replace(temporary, marker)


class PrincipalCache:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = 0.0  # off until `configure` (the app's start-up) turns it on
        self.clock = clock
        self._marker: Path | None = None
        self._entries: dict[str, tuple[float, Token, Principal]] = {}
        self._generation = 0
        self._bus: EventBus | None = None

    def configure(self, *, ttl_s: float, database_url: str | URL) -> None:
        """Use the cache for this database (`ttl_s` 0: off). Whether an entry may be trusted is decided
        per lookup by `token`: it needs a connected cross-process bus or a SQLite marker."""
        self._marker = marker_for(database_url)
        self.ttl_s = ttl_s
        self.invalidate()

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def token(self) -> Token | None:
        """What an entry must have been stored under to be trusted now; None: do not use the cache.

        Other processes' changes are heard through a bus that spans processes and is connected (its
        epoch), and for SQLite through the marker file; with neither, nothing is trusted.
        """
        if self.ttl_s <= 0:
            return None
        bus = get_bus()
        if self._bus is not bus:
            bus.on(PRINCIPALS_CHANGED, self._on_changed)
            self._bus = bus
        epoch = bus.delivery_epoch() if bus.spans_processes else None
        if self._marker is None:
            if epoch is None:
                return None
            return (bus.serial, epoch, 0, 0, self._generation)
        try:
            stat = os.stat(self._marker)
            inode, mtime = stat.st_ino, stat.st_mtime_ns
        except FileNotFoundError:
            inode = mtime = 0  # no change announced yet: a stable state (creating the marker changes it)
        except OSError:
            return None
        return (bus.serial, -1 if epoch is None else epoch, inode, mtime, self._generation)

    def lookup(self, key_hash: str, token: Token) -> Principal | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[1] != token or entry[0] <= self.clock():
            self._entries.pop(key_hash, None)
            return None
        return entry[2]

    def store(self, key_hash: str, principal: Principal, token: Token) -> None:
        """Keep `principal` unless anything changed since `token` was read (before the database)."""
        if self.token() != token:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key_hash] = (self.clock() + self.ttl_s, token, principal)

    def invalidate(self) -> None:
        self._generation += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _on_changed(self, payload: dict[str, Any]) -> None:
        self.invalidate()


principal_cache = PrincipalCache()
