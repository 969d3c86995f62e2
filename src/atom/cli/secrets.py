"""`atom-os secrets set|list|rotate|delete|generate-key`. Values are read from a prompt or stdin, never argv."""

from __future__ import annotations

import sys

import typer
from cryptography.fernet import Fernet
from rich.table import Table

from atom.audit import service as audit
from atom.cli.common import console, fail, load_settings, run, session_scope
from atom.security import secrets_store

app = typer.Typer(help="The encrypted secrets store (values are never printed).", no_args_is_help=True)


def _read_value() -> str:
    if sys.stdin.isatty():
        value = typer.prompt("Value", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().rstrip("\n")
    if not value:
        fail("The value is empty.")
    return str(value)


@app.command("set")
def set_secret(name: str) -> None:
    """Store a new secret NAME (value from a hidden prompt, or stdin when piped)."""
    settings = load_settings()
    value = _read_value()

    async def body() -> None:
        async with session_scope(settings) as session:
            await secrets_store.create(
                session=session,
                cipher=secrets_store.load_cipher(settings),
                name=name,
                value=value,
                actor=audit.Actor.system(),
            )

    run(body)
    console.print(f"Secret {name} stored.")


@app.command()
def rotate(name: str) -> None:
    """Replace the value of secret NAME."""
    settings = load_settings()
    value = _read_value()

    async def body() -> int:
        async with session_scope(settings) as session:
            secret = await secrets_store.rotate(
                session=session,
                cipher=secrets_store.load_cipher(settings),
                name=name,
                value=value,
                actor=audit.Actor.system(),
            )
            return secret.version

    console.print(f"Secret {name} rotated (version {run(body)}).")


@app.command("list")
def list_secrets(limit: int = typer.Option(100, min=1, max=500)) -> None:
    """List secret names and versions."""
    settings = load_settings()

    async def body() -> Table:
        async with session_scope(settings) as session:
            rows, _ = await secrets_store.list_secrets(session=session, limit=limit, cursor=None)
        table = Table("name", "version", "updated")
        for row in rows:
            table.add_row(row.name, str(row.version), row.updated_at.isoformat(timespec="seconds"))
        return table

    console.print(run(body))


@app.command()
def delete(name: str) -> None:
    """Delete secret NAME."""
    settings = load_settings()

    async def body() -> None:
        async with session_scope(settings) as session:
            await secrets_store.delete(session=session, name=name, actor=audit.Actor.system())

    run(body)
    console.print(f"Secret {name} deleted.")


@app.command("generate-key")
def generate_key() -> None:
    """Print a fresh key for ATOM_SECRET_KEY."""
    console.print(Fernet.generate_key().decode(), markup=False, highlight=False)
