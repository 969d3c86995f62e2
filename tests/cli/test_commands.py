"""The atom-os commands that work on the database directly, through Typer's runner."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from typer.testing import CliRunner

from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database

runner = CliRunner()


@pytest.fixture
def env(settings: Settings, db: Database) -> dict[str, str]:
    """Environment for the CLI; depends on `db` so the database is reset after the test."""
    values = {
        "ATOM_DATA_DIR": str(settings.data_dir),
        "ATOM_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "ATOM_LOG_FORMAT": "json",
        "COLUMNS": "200",
    }
    if settings.database_url:
        values["ATOM_DATABASE_URL"] = settings.database_url
    return values


def invoke(env: dict[str, str], *args: str, input: str | None = None) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env=env, input=input)
    return result.exit_code, result.output


async def ainvoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    """From an async test: the command runs its own event loop, so it runs in a thread."""
    return await asyncio.to_thread(invoke, env, *args)


def test_init_creates_admin_once_and_prints_key(env: dict[str, str]) -> None:
    code, out = invoke(env, "init")
    assert code == 0, out
    assert "atom_" in out and "shown only this once" in out
    code, out = invoke(env, "init")
    assert code == 0 and "Users already exist" in out and "atom_" not in out


def test_init_makes_the_data_directory_owner_only(env: dict[str, str]) -> None:
    data = Path(env["ATOM_DATA_DIR"])
    data.chmod(0o755)  # as a default umask leaves a directory made by hand
    code, out = invoke(env, "init")
    assert code == 0, out
    assert data.stat().st_mode & 0o777 == 0o700


async def test_users_keys_and_revocation(env: dict[str, str], app: FastAPI) -> None:
    assert (await ainvoke(env, "init"))[0] == 0
    code, out = await ainvoke(env, "users", "create", "dora", "--role", "operator")
    assert code == 0, out
    key = next(line for line in out.splitlines() if line.startswith("atom_"))
    code, out = await ainvoke(env, "users", "list")
    assert "dora" in out and "operator" in out
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://atom.test") as client:
        headers = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/api/me", headers=headers)).json()["role"] == "operator"
        code, out = await ainvoke(env, "keys", "list", "--user", "dora")
        key_id = next(line.split()[1] for line in out.splitlines() if "dora key" in line)
        # rich may shorten the id column; look the id up through the API instead when truncated
        if "…" in key_id:
            key_id = (await client.get("/api/keys", headers=headers)).json()["items"][0]["id"]
        assert (await ainvoke(env, "keys", "revoke", key_id))[0] == 0
        assert (await client.get("/api/me", headers=headers)).status_code == 401
    assert (await ainvoke(env, "users", "set-role", "nobody", "admin"))[0] == 1


def test_secrets_values_never_printed(env: dict[str, str]) -> None:
    assert invoke(env, "init")[0] == 0
    code, out = invoke(env, "secrets", "set", "asana/pat", input="pat-distinctive-123\n")
    assert code == 0, out
    code, out = invoke(env, "secrets", "list")
    assert "asana/pat" in out and "pat-distinctive-123" not in out
    code, out = invoke(env, "secrets", "rotate", "asana/pat", input="pat-new-456\n")
    assert code == 0 and "version 2" in out and "pat-new-456" not in out
    assert invoke(env, "secrets", "delete", "asana/pat")[0] == 0
    code, out = invoke(env, "secrets", "delete", "asana/pat")
    assert code == 1 and "No secret named" in out


async def test_audit_verify_reports_the_first_broken_record(env: dict[str, str], db: Database) -> None:
    assert (await ainvoke(env, "init"))[0] == 0
    assert (await ainvoke(env, "users", "create", "eve"))[0] == 0
    code, out = await ainvoke(env, "audit", "verify")
    assert code == 0 and "intact: 2 records" in out
    code, out = await ainvoke(env, "audit", "list")
    assert "user.create" in out and "system.init" in out
    async with db.session_scope() as s:
        await s.execute(text("UPDATE audit_events SET reason = 'forged' WHERE seq = 1"))
    code, out = await ainvoke(env, "audit", "verify")
    assert code == 1 and "seq 1" in out


def test_db_commands(env: dict[str, str]) -> None:
    code, out = invoke(env, "db", "current")
    assert code == 0 and "at head" in out
    assert invoke(env, "db", "downgrade", "base")[0] == 0
    code, out = invoke(env, "db", "current")
    assert "base" in out and "behind" in out
    assert invoke(env, "db", "upgrade")[0] == 0
    assert "at head" in invoke(env, "db", "current")[1]


def test_version() -> None:
    result = runner.invoke(cli, ["version"])
    assert result.exit_code == 0 and result.output.startswith("atom-os ")


def test_unknown_database_is_one_clear_line(tmp_path: Path) -> None:
    env = {"ATOM_DATA_DIR": str(tmp_path), "ATOM_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    code, out = invoke(env, "db", "current")
    assert code == 1
    assert "ATOM_DATABASE_URL" in out and "Traceback" not in out


async def test_audit_list_filters(env: dict[str, str], db: Database) -> None:
    from atom.audit import service as audit

    for actor, action, resource in (
        ("user-a", "doc.read", "r1"),
        ("user-b", "doc.write", "r2"),
        ("user-a", "doc.write", "r3"),
        ("user-a", "doc.write", "r4"),
    ):
        async with db.session_scope() as s:
            await audit.record(
                session=s, actor=audit.Actor.user(actor), action=action, resource_type="doc", resource_id=resource
            )

    async def shown(*args: str) -> set[str]:
        code, out = await ainvoke(env, "audit", "list", *args)
        assert code == 0, out
        return {r for r in ("r1", "r2", "r3", "r4") if f"doc:{r}" in out}

    assert await shown() == {"r1", "r2", "r3", "r4"}
    assert await shown("--actor", "user-a") == {"r1", "r3", "r4"}
    assert await shown("--actor", "user-a", "--action", "doc.write", "--limit", "1") == {"r4"}
    assert await shown("--resource", "r2") == {"r2"}
    assert await shown("--action", "doc.delete") == set()
    code, out = await ainvoke(env, "audit", "verify")
    assert code == 0 and "chain intact: 4 records" in out
    assert (await ainvoke(env, "audit", "list", "--limit", "0"))[0] != 0


async def test_agents_show_lists_planned_actions_as_unavailable(env: dict[str, str], db: Database) -> None:
    from atom.governance.maturity import MaturityLevel
    from tests.support.agents import make_agent

    settings = Settings(_env_file=None, data_dir=Path(env["ATOM_DATA_DIR"]), database_url=env.get("ATOM_DATABASE_URL"))  # type: ignore[call-arg]
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="shown")
    code, out = await ainvoke(env, "agents", "show", "shown")
    assert code == 0, out
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 4}
    for planned in ("browser_click", "device_screen_record", "device_camera_snap"):
        assert "unavailable" in rows[planned] and "allow" not in rows[planned], rows[planned]
    assert "allow" in rows["get_current_time"]
    code, out = await ainvoke(env, "governance", "actions")
    assert code == 0
    listed = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 4}
    assert "planned" in listed["browser_click"] and "integration" in listed["slack_post_message"]
