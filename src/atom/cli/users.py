"""`atom-os users create|list|set-role|deactivate|set-password`."""

from __future__ import annotations

import sys

import typer
from rich.table import Table

from atom.audit import service as audit
from atom.cli.common import console, id_table, load_settings, run, session_scope
from atom.security import passwords, service
from atom.security import sessions as web_sessions
from atom.security.models import Role
from atom.security.schemas import UserCreate, UserUpdate

app = typer.Typer(help="People and their roles (viewer < operator < approver < admin).", no_args_is_help=True)
CLI = {"via": "cli"}


@app.command()
def create(
    username: str = typer.Argument(..., help="Login name."),
    role: Role = typer.Option(Role.VIEWER, help="viewer, operator, approver or admin."),
    email: str | None = typer.Option(None, help="Email address."),
    with_key: bool = typer.Option(True, "--with-key/--no-key", help="Also create an API key and print it once."),
) -> None:
    """Create a user (and, by default, an API key shown once)."""
    settings = load_settings()

    async def body() -> tuple[str, str | None]:
        async with session_scope(settings) as session:
            user = await service.create_user(
                session=session, user_in=UserCreate(username=username, role=role, email=email)
            )
            plaintext = None
            if with_key:
                _, plaintext = await service.create_key(session=session, user_id=user.id, name=f"{username} key")
            await audit.record(
                session=session,
                actor=audit.Actor.system(),
                action="user.create",
                resource_type="user",
                resource_id=user.id,
                decision="done",
                details={**CLI, "username": username, "role": role.value},
            )
            return user.id, plaintext

    user_id, plaintext = run(body)
    console.print(f"User [bold]{username}[/] ({role.value}) created: {user_id}")
    if plaintext:
        console.print("API key, shown only this once:")
        console.print(plaintext, markup=False, highlight=False, soft_wrap=True)


@app.command("list")
def list_users(limit: int = typer.Option(100, min=1, max=500)) -> None:
    """List users."""
    settings = load_settings()

    async def body() -> Table:
        async with session_scope(settings) as session:
            users, _ = await service.list_users(session=session, limit=limit, cursor=None)
        table = id_table("id", "username", "role", "email", "active", "created")
        for u in users:
            table.add_row(
                u.id, u.username, u.role, u.email or "", "yes" if u.is_active else "no", u.created_at.isoformat()
            )
        return table

    console.print(run(body))


def _update(username: str, user_in: UserUpdate, action: str) -> None:
    settings = load_settings()

    async def body() -> None:
        async with session_scope(settings) as session:
            user = await service.get_user_by_name(session=session, username=username)
            await service.update_user(session=session, user_id=user.id, user_in=user_in)
            await audit.record(
                session=session,
                actor=audit.Actor.system(),
                action=action,
                resource_type="user",
                resource_id=user.id,
                decision="done",
                details={**CLI, **user_in.model_dump(exclude_none=True, mode="json")},
            )

    run(body)


@app.command("set-role")
def set_role(username: str, role: Role) -> None:
    """Change a user's role."""
    _update(username, UserUpdate(role=role), "user.update")
    console.print(f"{username} is now {role.value}.")


@app.command()
def deactivate(username: str) -> None:
    """Deactivate a user: their API keys stop working at once."""
    _update(username, UserUpdate(is_active=False), "user.deactivate")
    console.print(f"{username} deactivated.")


@app.command("set-password")
def set_password(
    username: str,
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input."),
) -> None:
    """Set the password a person signs in to the dashboard with (asked twice, never echoed).

    Every dashboard session the user had open is ended.
    """
    settings = load_settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)

    async def body() -> None:
        async with session_scope(settings) as session:
            user = await service.get_user_by_name(session=session, username=username)
            await passwords.set_password(session=session, user_id=user.id, password=password)
            ended = await web_sessions.revoke_user_sessions(session=session, user_id=user.id)
            await audit.record(
                session=session,
                actor=audit.Actor.system(),
                action="user.set_password",
                resource_type="user",
                resource_id=user.id,
                decision="done",
                details={**CLI, "sessions_ended": ended},
            )

    run(body)
    console.print(f"Password of {username} set; they can sign in at {settings.base_url}/signin.")
