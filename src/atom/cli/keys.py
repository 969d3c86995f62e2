"""`atom-os keys create|list|revoke`."""

from __future__ import annotations

import typer
from rich.table import Table

from atom.audit import service as audit
from atom.cli.common import console, id_table, load_settings, run, session_scope
from atom.security import service

app = typer.Typer(help="API keys: shown once, stored hashed, revocable.", no_args_is_help=True)


@app.command()
def create(
    user: str = typer.Option(..., "--user", help="Username that will own the key."),
    name: str = typer.Option("cli key", help="A label to recognise the key by."),
) -> None:
    """Create an API key and print it once."""
    settings = load_settings()

    async def body() -> tuple[str, str]:
        async with session_scope(settings) as session:
            owner = await service.get_user_by_name(session=session, username=user)
            key, plaintext = await service.create_key(session=session, user_id=owner.id, name=name)
            await audit.record(
                session=session,
                actor=audit.Actor.system(),
                action="api_key.create",
                resource_type="api_key",
                resource_id=key.id,
                decision="done",
                details={"via": "cli", "owner": owner.id, "name": name},
            )
            return key.id, plaintext

    key_id, plaintext = run(body)
    console.print(f"Key {key_id} for {user}, shown only this once:")
    console.print(plaintext, markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def list_keys(
    user: str | None = typer.Option(None, "--user", help="Only this user's keys."),
    limit: int = typer.Option(100, min=1, max=500),
) -> None:
    """List keys (never the keys themselves: id, prefix, owner, last use)."""
    settings = load_settings()

    async def body() -> Table:
        async with session_scope(settings) as session:
            user_id = (await service.get_user_by_name(session=session, username=user)).id if user else None
            keys, _ = await service.list_keys(session=session, user_id=user_id, limit=limit, cursor=None)
        table = id_table("id", "prefix", "name", "owner", "created", "last used", "revoked")
        for k in keys:
            table.add_row(
                k.id,
                k.prefix,
                k.name,
                k.user_id,
                k.created_at.isoformat(timespec="seconds"),
                k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "never",
                k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
            )
        return table

    console.print(run(body))


@app.command()
def revoke(key_id: str) -> None:
    """Revoke a key: it stops working at once."""
    settings = load_settings()

    async def body() -> None:
        async with session_scope(settings) as session:
            await service.revoke_key(session=session, key_id=key_id)
            await audit.record(
                session=session,
                actor=audit.Actor.system(),
                action="api_key.revoke",
                resource_type="api_key",
                resource_id=key_id,
                decision="done",
                details={"via": "cli"},
            )

    run(body)
    console.print(f"Key {key_id} revoked.")
