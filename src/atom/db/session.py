"""Engine and session factory.

One `Database` per process (built from settings in the app lifespan or a CLI command).
Routes get one session per request (`atom.api_deps.db_session`); jobs and the CLI use
`Database.session_scope()`. Services flush; the caller commits.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, CursorResult, Engine, Result
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from atom.config import Settings
from atom.observability import metrics


def _configure_sqlite(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _time_queries(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Connection, _c: Any, _s: str, _p: Any, context: Any, _m: bool) -> None:
        conn.info.setdefault("query_start", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Connection, _c: Any, statement: str, _p: Any, context: Any, _m: bool) -> None:
        started = conn.info["query_start"].pop()
        operation = statement.lstrip().split(" ", 1)[0].upper()[:10]
        metrics.DB_QUERY_SECONDS.labels(operation=operation).observe(time.perf_counter() - started)


def build_engine(settings: Settings, *, pre_ping: bool = True) -> AsyncEngine:
    """`pre_ping=False` saves a round trip per transaction for processes whose every transaction is retried
    when its connection turns out dead (workflow workers); request handlers keep the ping."""
    url = settings.resolved_database_url
    kwargs: dict[str, Any] = {"echo": settings.db_echo}
    if url.startswith("sqlite"):
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # owner-only, like serve makes it
        kwargs["connect_args"] = {"timeout": 10}
        # Every transaction ends with a commit or a rollback (a Connection closed inside one rolls it back),
        # so the pool's own rollback on return is redundant: with aiosqlite it costs a thread round trip.
        kwargs["pool_reset_on_return"] = None
    else:
        kwargs.update(pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size, pool_pre_ping=pre_ping)
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
    _time_queries(engine.sync_engine)
    return engine


_AFTER_COMMIT = "atom_after_commit"


def rows_affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched: what every conditional update (a claim) checks."""
    return int(cast("CursorResult[Any]", result).rowcount or 0)


def on_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run `callback` once the session's transaction has committed (dropped on rollback)."""
    session.sync_session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _run_after_commit(sync_session: Session) -> None:
    for callback in sync_session.info.pop(_AFTER_COMMIT, []):
        callback()


def _drop_after_commit(sync_session: Session) -> None:
    sync_session.info.pop(_AFTER_COMMIT, None)


def _install_commit_hooks() -> None:
    if not event.contains(Session, "after_commit", _run_after_commit):
        event.listen(Session, "after_commit", _run_after_commit)
        event.listen(Session, "after_rollback", _drop_after_commit)


class Database:
    def __init__(self, settings: Settings, engine: AsyncEngine | None = None, *, pre_ping: bool = True):
        _install_commit_hooks()
        self.settings = settings
        self.engine = engine or build_engine(settings, pre_ping=pre_ping)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session_scope(self) -> AsyncIterator[AsyncSession]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
