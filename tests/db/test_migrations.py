"""Alembic is the only source of the schema: migrations equal the models, and go down to base and back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

from atom.db import migrate
from atom.db.registry import load_models
from atom.db.session import Database
from tests.conftest import make_settings
from tests.support import databases


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database(make_settings(tmp_path, None))
        yield db
        await db.dispose()
        return
    server = databases.postgres_server_url()
    if server is None or not await databases.pg_reachable(server):
        databases.missing_service(databases.PG_HINT)
    assert server is not None
    url = await databases.create_pg_database(server)
    db = Database(make_settings(tmp_path, url))
    try:
        yield db
    finally:
        await db.dispose()
        await databases.drop_pg_database(server, url)


async def _tables(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def test_up_matches_models_then_down_to_base_and_up_again(empty_db: Database) -> None:
    assert await _tables(empty_db) == set()
    await migrate.upgrade(empty_db)
    assert await migrate.is_at_head(empty_db)
    assert await migrate.schema_drift(empty_db) == []
    assert {t.name for t in load_models().sorted_tables} <= await _tables(empty_db)
    # The workflow job queue (migration queue01) is PostgreSQL's alone; drift ignores its tables.
    queue_tables = {t for t in await _tables(empty_db) if t.startswith("procrastinate_")}
    if empty_db.settings.is_sqlite:
        assert queue_tables == set()
    else:
        assert {"procrastinate_jobs", "procrastinate_workers"} <= queue_tables

    await migrate.downgrade(empty_db, "base")
    assert await _tables(empty_db) == {"alembic_version"}
    assert await migrate.current_revisions(empty_db) == set()

    await migrate.upgrade(empty_db)
    assert await migrate.is_at_head(empty_db)
    assert await migrate.schema_drift(empty_db) == []


async def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(make_settings(tmp_path, None))
    try:
        async with db.engine.connect() as conn:
            journal = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            foreign_keys = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
    finally:
        await db.dispose()
    assert journal == "wal" and foreign_keys == 1
