"""What every `atom-os` command shares: settings with one-line errors, a database, async runner."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import NoReturn, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from atom.config import Settings, get_settings
from atom.db.session import Database
from atom.errors import AtomError, ConfigurationError
from atom.events.bus import build_bus, reset_bus, set_bus

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_error_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first.get("loc") else "?"
    env_name = f"ATOM_{field.upper()}"
    value = first.get("input")
    shown = f" (got {value!r})" if isinstance(value, str | int | float) and "key" not in field else ""
    return f"{env_name}: {first['msg']}{shown}. Fix: set {env_name} to a valid value or unset it (see README settings)."


def load_settings() -> Settings:
    try:
        get_settings.cache_clear()
        return get_settings()
    except ValidationError as exc:
        fail(settings_error_line(exc))


def run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    """Run an async command body, turning domain errors into one clear line and exit code 1.

    The process's registries (catalogue, tools, workflow actions, executors) are built first, the same
    ones `atom-os serve` builds, so the CLI's governance answers are the server's."""
    from atom.registries import ensure_registries

    ensure_registries()

    async def main() -> T:
        return await coro_factory()

    try:
        return asyncio.run(main())
    except ConfigurationError as exc:
        fail(exc.one_line())
    except AtomError as exc:
        fail(exc.message)


@asynccontextmanager
async def open_database(settings: Settings) -> AsyncIterator[Database]:
    """The database, and the configured event bus, so changes made here reach running servers."""
    db = Database(settings)
    bus = build_bus(settings)
    try:
        await bus.start()
        set_bus(bus)
        try:
            await db.ping()
        except Exception as exc:
            raise ConfigurationError(
                f"cannot reach the database ({type(exc).__name__}).",
                setting="ATOM_DATABASE_URL",
                fix="check the URL and that the server is running, or unset it to use SQLite in ATOM_DATA_DIR.",
            ) from exc
        yield db
    finally:
        await bus.drain()
        await bus.stop()
        reset_bus()
        await db.dispose()


@asynccontextmanager
async def session_scope(settings: Settings) -> AsyncIterator[AsyncSession]:
    async with open_database(settings) as db, db.session_scope() as session:
        yield session


def id_table(*headers: str, title: str | None = None) -> Table:
    """A table whose first column holds ids: never shortened, so they can be copied."""
    table = Table(*headers, title=title)
    table.columns[0].no_wrap = True
    table.columns[0].min_width = 36
    return table
