"""Alembic environment: runs on the connection handed over by `atom.db.migrate`."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext

from atom.db.base import UTCDateTime
from atom.db.migrate import not_the_queue
from atom.db.registry import load_models

target_metadata = load_models()
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run migrations through `atom-os db upgrade` (atom.db.migrate), not bare alembic.")


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Migrations spell plain SQLAlchemy types, so they never import application code."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=render_item,
    include_name=not_the_queue,
)
with context.begin_transaction():
    context.run_migrations()
