"""`atom-os init`."""

from __future__ import annotations

import typer

from atom.audit import service as audit
from atom.cli.common import console, load_settings, open_database, run
from atom.db import migrate
from atom.process import private_dir
from atom.security import service as security
from atom.security.models import Role
from atom.security.schemas import UserCreate
from atom.security.secrets_store import ensure_key_file


def init(
    admin: str = typer.Option("admin", help="Username of the first admin."),
    email: str | None = typer.Option(None, help="The admin's email."),
) -> None:
    """Create the data directory, migrate the database, create the first admin and print its API key."""
    settings = load_settings()
    private_dir(settings.data_dir)  # 0700: the database, key and logs are nobody else's
    if settings.secret_key is None:
        ensure_key_file(settings.key_file)

    async def body() -> str | None:
        async with open_database(settings) as db:
            await migrate.upgrade(db)
            async with db.session_scope() as session:
                if await security.count_users(session=session) > 0:
                    return None
                user = await security.create_user(
                    session=session,
                    user_in=UserCreate(username=admin, role=Role.ADMIN, email=email),
                )
                key, plaintext = await security.create_key(session=session, user_id=user.id, name="initial admin key")
                await audit.record(
                    session=session,
                    actor=audit.Actor.system(),
                    action="system.init",
                    resource_type="user",
                    resource_id=user.id,
                    decision="done",
                    details={"username": admin, "key_id": key.id},
                )
                return plaintext

    plaintext = run(body)
    console.print(f"Data directory: {settings.data_dir}")
    console.print(f"Database: {settings.resolved_database_url.split('://', 1)[0]} migrated to the latest schema.")
    if plaintext is None:
        console.print("Users already exist: no new admin created (use `atom-os keys create`).")
        return
    console.print(f"Admin user [bold]{admin}[/] created. Its API key, shown only this once:")
    console.print(plaintext, markup=False, highlight=False, soft_wrap=True)
