"""Schema migrations, driven programmatically (no alembic.ini needed).

Alembic is the only way the schema is created. Every function takes the `Database` so the
same code serves the CLI, the app start-up check and the tests.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from atom.db.session import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@cache
def _heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def head_revisions() -> set[str]:
    """The revisions the code expects (read once: migration scripts do not change at run time)."""
    return set(_heads())


async def upgrade(db: Database, revision: str = "heads") -> None:
    def run(conn: Connection) -> None:
        command.upgrade(alembic_config(conn), revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def downgrade(db: Database, revision: str = "-1") -> None:
    def run(conn: Connection) -> None:
        command.downgrade(alembic_config(conn), revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def current_revisions(db: Database) -> set[str]:
    """The revisions the database is at (empty before the first migration)."""
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        if "alembic_version" not in tables:
            return set()
        return set((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())


async def is_at_head(db: Database) -> bool:
    return await current_revisions(db) == head_revisions()


def not_the_queue(name: str | None, type_: str, parent_names: Any) -> bool:
    """Procrastinate's tables (the workflow step queue, migration queue01) are not ORM models."""
    return not (type_ == "table" and (name or "").startswith("procrastinate_"))


async def schema_drift(db: Database) -> list[Any]:
    """Differences between the migrated database and the ORM models (empty when they agree)."""
    from atom.db.registry import load_models

    metadata = load_models()

    def run(conn: Connection) -> list[Any]:
        opts = {"compare_type": True, "compare_server_default": False, "include_name": not_the_queue}
        ctx = MigrationContext.configure(conn, opts=opts)
        return list(compare_metadata(ctx, metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(run)


async def make_revision(db: Database, message: str, rev_id: str, parent: str) -> None:
    """Developer tool: autogenerate a migration from the models against a database at every head.

    `parent` is the revision the new one builds on (the migration of the tables it refers to),
    so domains grow as branches and never fight over one linear order.
    """

    def run(conn: Connection) -> None:
        command.revision(
            alembic_config(conn), message=message, autogenerate=True, rev_id=rev_id, head=parent, splice=True
        )

    await upgrade(db)
    async with db.engine.begin() as conn:
        await conn.run_sync(run)
