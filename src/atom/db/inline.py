"""An SQLite engine for one writer task, whose statements run on the event loop without a thread hop.

aiosqlite runs each call of a statement (make a cursor, execute, fetch, close) and each commit on its
connection's own thread, and SQLAlchemy's adapter makes four such calls per statement: every hop
wakes a thread and the event loop, which costs far more than SQLite itself (a few microseconds). The
connection built here answers the same calls at once on the calling thread instead.

That is safe only because nothing on it ever waits for a lock while holding the loop: each
transaction starts with `BEGIN IMMEDIATE` under `busy_timeout=0`, retried with `asyncio.sleep`
while another connection writes, so once it has begun no statement of it can block (WAL readers
never block, and this connection holds the write lock). Its automatic WAL checkpoints are off (a
checkpoint copies pages and syncs the file, on the loop); `checkpoint()` runs one on a thread, and
the other connections of the process keep checkpointing as they commit.

Use it from one task at a time (pool of one), for short transactions of database work only.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

LOCK_WAIT_S = 10.0  # like the other connections' busy timeout
_FIRST_BACKOFF_S = 0.0005
_MAX_BACKOFF_S = 0.005


def busy(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock (worth trying again later)."""
    return "locked" in str(exc) or "busy" in str(exc)


class _Cursor:
    """An `aiosqlite.Cursor` look-alike whose coroutines finish without suspending."""

    def __init__(self, owner: InlineConnection) -> None:
        self._owner = owner
        self._cursor = owner.raw.cursor()

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        await self._owner.begin()
        self._cursor.execute(sql, parameters or ())
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> _Cursor:
        await self._owner.begin()
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    """An `aiosqlite.Connection` look-alike (what SQLAlchemy's aiosqlite dialect calls) over sqlite3."""

    def __init__(self, raw: sqlite3.Connection) -> None:
        self.raw = raw
        self.commits = 0

    @property
    def _connection(self) -> sqlite3.Connection:  # the dialect checks it before commit and rollback
        return self.raw

    @property
    def in_transaction(self) -> bool:
        return self.raw.in_transaction

    @property
    def isolation_level(self) -> str | None:
        return self.raw.isolation_level

    async def begin(self) -> None:
        """Take the write lock for the transaction this statement opens, waiting off the loop."""
        if self.raw.in_transaction:
            return
        deadline = time.monotonic() + LOCK_WAIT_S
        pause = _FIRST_BACKOFF_S
        while True:
            try:
                self.raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not busy(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_BACKOFF_S)

    def cursor(self) -> _Cursor:
        return _Cursor(self)

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> _Cursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        if self.raw.in_transaction:
            self.raw.commit()
            self.commits += 1

    async def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.rollback()

    async def close(self) -> None:
        self.raw.close()

    def stop(self) -> None:
        self.raw.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.raw.create_function(*args, **kwargs)


def _connect(path: Path) -> sqlite3.Connection:
    raw = sqlite3.connect(path, isolation_level=None, timeout=0)  # transactions are begun explicitly
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute("PRAGMA busy_timeout=0")
    raw.execute("PRAGMA wal_autocheckpoint=0")
    return raw


def build_inline_engine(path: Path) -> AsyncEngine:
    """An engine of one on-loop connection to the SQLite database at `path`."""

    async def creator() -> InlineConnection:
        return InlineConnection(_connect(path))

    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}",
        async_creator=creator,
        pool_size=1,
        max_overflow=0,
        pool_reset_on_return=None,  # every transaction ends with a commit or a rollback
    )
    return engine


def checkpoint(path: Path) -> None:
    """A passive WAL checkpoint on a connection of its own (call it on a thread: it copies and syncs)."""
    with sqlite3.connect(path, timeout=0) as conn:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    conn.close()
