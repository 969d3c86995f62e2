"""`atom-os users set-password`: the way a person gets a dashboard password; it ends open sessions."""

from __future__ import annotations

import asyncio

import httpx
from typer.testing import CliRunner

from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database
from atom.security.models import Role
from tests.web.conftest import MakeWebUser, WebUserInfo, sign_in


def _env(settings: Settings) -> dict[str, str]:
    values = {
        "ATOM_DATA_DIR": str(settings.data_dir),
        "ATOM_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "ATOM_LOG_FORMAT": "json",
    }
    if settings.database_url:
        values["ATOM_DATABASE_URL"] = settings.database_url
    return values


async def test_set_password_lets_the_user_sign_in_and_ends_old_sessions(
    client: httpx.AsyncClient, web_user: MakeWebUser, settings: Settings, db: Database
) -> None:
    user = await web_user(Role.APPROVER)
    await sign_in(client, user)
    assert (await client.get("/")).status_code == 200

    def invoke(password: str) -> tuple[int, str]:
        result = CliRunner().invoke(
            cli, ["users", "set-password", user.username, "--password-stdin"], env=_env(settings), input=password
        )
        return result.exit_code, result.output

    code, out = await asyncio.to_thread(invoke, "short\n")
    assert code != 0 and "8 to 1024 characters" in out
    code, out = await asyncio.to_thread(invoke, "a new long password\n")
    assert code == 0, out
    assert "a new long password" not in out
    assert (await client.get("/")).status_code == 303  # the open session ended
    client.cookies.clear()
    await sign_in(
        client, WebUserInfo(id=user.id, username=user.username, password="a new long password", role=user.role)
    )
    assert (await client.get("/")).status_code == 200
