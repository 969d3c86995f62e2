"""`atom-os db upgrade|downgrade|current`."""

from __future__ import annotations

import typer

from atom.cli.common import console, load_settings, open_database, run
from atom.db import migrate

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


@app.command()
def upgrade(revision: str = typer.Argument("heads", help="Target revision (default: every branch head).")) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    settings = load_settings()

    async def body() -> None:
        async with open_database(settings) as db:
            await migrate.upgrade(db, revision)
            console.print(f"Database at {sorted(await migrate.current_revisions(db))}.")

    run(body)


@app.command()
def downgrade(
    revision: str = typer.Argument("-1", help="Target revision, `-1` for one step, `base` for empty."),
) -> None:
    """Revert migrations down to REVISION."""
    settings = load_settings()

    async def body() -> None:
        async with open_database(settings) as db:
            await migrate.downgrade(db, revision)
            console.print(f"Database at {sorted(await migrate.current_revisions(db)) or 'base'}.")

    run(body)


@app.command()
def current() -> None:
    """Show the database's revision and whether it is the latest."""
    settings = load_settings()

    async def body() -> None:
        async with open_database(settings) as db:
            revs = sorted(await migrate.current_revisions(db))
            heads = sorted(migrate.head_revisions())
            state = "[green]at head[/]" if revs == heads else f"[yellow]behind (head is {heads})[/]"
            console.print(f"{revs or 'base'} {state}")

    run(body)


@app.command(hidden=True)
def revision(
    message: str = typer.Option(..., "-m", "--message", help="What the migration does."),
    rev_id: str = typer.Option(..., "--id", help="Revision id, the next free number: 0002, 0003, ..."),
    parent: str = typer.Option(..., "--parent", help="Revision this one builds on (whose tables it references)."),
) -> None:
    """(Developers) Autogenerate a migration from the models. Review it before committing."""
    settings = load_settings()

    async def body() -> None:
        async with open_database(settings) as db:
            await migrate.make_revision(db, message, rev_id, parent)

    run(body)
