"""workflow step queue: Procrastinate's tables and functions (PostgreSQL only)

The queue that `atom-os worker` processes read lives in the same PostgreSQL database as the steps
(docs/scale-out.md). Its schema is Procrastinate's own `schema.sql`, from the installed package, whose
version pyproject.toml pins to one minor release: a later release's schema changes come as a new
revision here applying that release's files from `procrastinate/sql/migrations/`. SQLite has no
queue (it keeps the embedded executor), so this revision does nothing there.

Revision ID: queue01
Revises: 0001
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

from alembic import op

try:
    from sqlalchemy.util import await_
except ImportError:  # SQLAlchemy 2.0 names it await_only
    from sqlalchemy.util import await_only as await_

revision: str = "queue01"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DROP = """
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
    procrastinate_workers CASCADE;
DO $$
DECLARE
    fn regprocedure;
BEGIN
    FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
              WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
    LOOP
        EXECUTE 'DROP FUNCTION ' || fn || ' CASCADE';
    END LOOP;
END;
$$;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type, procrastinate_job_status CASCADE;
"""


def _run_script(sql: str) -> None:
    """Run a multi-statement script (PL/pgSQL bodies included) in the migration's transaction: asyncpg
    runs an argument-less `execute` as one simple query, which statement-by-statement SQLAlchemy cannot."""
    raw = op.get_bind().connection.driver_connection
    assert raw is not None
    await_(raw.execute(sql))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    _run_script(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _run_script(_DROP)
