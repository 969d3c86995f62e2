"""Cursor pagination shared by every list route.

Ids are UUIDv7 strings, so ordering by id is ordering by creation; the cursor is the last id
of the page. Newest first. A cursor is checked to be such an id (`CURSOR_PATTERN`) before it
reaches a query: anything else is a 422 naming `cursor`, on every database alike.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CURSOR_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(default=None, description="Pass as `cursor` to get the next page.")


async def paginate(
    session: AsyncSession,
    stmt: Select[Any],
    *,
    id_column: InstrumentedAttribute[Any],
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    if cursor:
        stmt = stmt.where(id_column < cursor)
    rows = list((await session.scalars(stmt.order_by(id_column.desc()).limit(limit + 1))).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = str(getattr(rows[-1], id_column.key))
    return rows, next_cursor
