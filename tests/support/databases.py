"""Test databases: a migrated SQLite template copied per test, and a per-run PostgreSQL database.

PostgreSQL tests use `ATOM_TEST_POSTGRES_URL`. Outside CI a missing server skips those tests
with a reason; under `CI=true` it fails them, so nothing is silently skipped in CI.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from atom.audit.models import GENESIS_HASH
from atom.db.registry import load_models
from atom.db.session import Database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
PG_HINT = (
    "PostgreSQL unavailable: set ATOM_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test "
    "to a server you may create databases on"
)
REDIS_HINT = "Redis unavailable: set ATOM_TEST_REDIS_URL=redis://127.0.0.1:6379/15"


def missing_service(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason)


def postgres_server_url() -> str | None:
    return os.environ.get("ATOM_TEST_POSTGRES_URL") or None


def redis_url() -> str | None:
    return os.environ.get("ATOM_TEST_REDIS_URL") or None


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_pg_database(server_url: str) -> str:
    """Create an empty database with a unique name; return its URL."""
    name = f"atom_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_asyncpg_dsn(server_url), timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(server_url, name)


async def drop_pg_database(server_url: str, database_url: str) -> None:
    name = urlsplit(database_url).path.lstrip("/")
    conn = await asyncpg.connect(_asyncpg_dsn(server_url), timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def pg_reachable(server_url: str) -> bool:
    try:
        conn = await asyncpg.connect(_asyncpg_dsn(server_url), timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def redis_reachable(url: str) -> bool:
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception:
        return False
    finally:
        await client.aclose()
    return True


async def reset_all_tables(db: Database) -> None:
    """Empty every table (fresh state for the next test) and re-seed the audit chain head.

    On PostgreSQL only the tables a test filled are emptied, with DELETE: a TRUNCATE of every table
    costs 0.5-1.5 s per test (new files for each table), and its exclusive locks could deadlock with a
    task the last test left winding down (a socket's session check, a background job)."""
    tables = [t.name for t in reversed(load_models().sorted_tables)]  # children before their parents
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            exists = "SELECT '{0}' WHERE EXISTS (SELECT 1 FROM \"{0}\")"  # names from our metadata
            probe = " UNION ALL ".join(exists.format(t) for t in tables)
            filled = {row[0] for row in await conn.execute(text(probe))}
            tables = [t for t in tables if t in filled]
        for table in tables:
            await conn.execute(text(f'DELETE FROM "{table}"'))  # noqa: S608 - names from our metadata
        await conn.execute(
            text("INSERT INTO audit_chain_head (id, seq, last_hash) VALUES (1, 0, :h)"), {"h": GENESIS_HASH}
        )
