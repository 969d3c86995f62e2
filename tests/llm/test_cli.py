"""`atom-os llm ...` against the app under uvicorn on a loopback port, with scripted providers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from typer.testing import CliRunner

from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database
from atom.main import create_app
from atom.security.models import Role
from tests.conftest import MakeUser
from tests.llm.conftest import OPENAI_KEY
from tests.support.live_server import serving
from tests.support.llm_servers import OpenAIServer, text_reply

runner = CliRunner()


@pytest.fixture
async def server(settings: Settings, db: Database) -> AsyncIterator[str]:
    async with serving(create_app(settings, db=db, configure_logs=False)) as address:
        yield f"http://{address}"


async def llm(url: str, key: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`atom-os llm ARGS --url URL` in a thread (the server runs in this loop)."""
    full_env = {"ATOM_API_KEY": key, "COLUMNS": "250", "ATOM_LOG_FORMAT": "json", **(env or {})}

    def call() -> tuple[int, str]:
        result = runner.invoke(cli, ["llm", *args, "--url", url], env=full_env)
        return result.exit_code, result.output

    return await asyncio.to_thread(call)


async def test_add_list_test_usage_remove(server: str, make_user: MakeUser, openai_server: OpenAIServer) -> None:
    admin = await make_user(Role.ADMIN)
    wrong = "sk-wrong-cli-77d1a0c3e9"
    add = ("add", "local", "--kind", "openai", "--base-url", openai_server.base_url, "-m", "gpt-test")
    code, out = await llm(server, admin.key, *add, "--api-key-env", "PROVIDER_KEY", env={"PROVIDER_KEY": OPENAI_KEY})
    assert code == 0, out
    assert "local" in out and "key stored" in out and OPENAI_KEY not in out

    bad_kind = ("add", "x", "--kind", "litellm", "-m", "m", "--no-api-key")
    code, out = await llm(server, admin.key, *bad_kind)
    assert code == 1 and "Unknown LLM provider kind" in out

    code, out = await llm(
        server,
        admin.key,
        "add",
        "revoked",
        "--kind",
        "openai",
        "--base-url",
        openai_server.base_url,
        "-m",
        "gpt-test",
        "--priority",
        "200",
        "--api-key-env",
        "PROVIDER_KEY",
        env={"PROVIDER_KEY": wrong},
    )
    assert code == 0, out

    openai_server.queue(text_reply("OK"))
    code, out = await llm(server, admin.key, "test", "local")
    assert code == 0, out
    assert "healthy" in out and "'OK'" in out

    code, out = await llm(server, admin.key, "test")
    assert code == 1, out
    assert "unhealthy" in out and "revoked" in out and "401" in out and wrong not in out

    code, out = await llm(server, admin.key, "list")
    assert code == 0, out
    assert "local" in out and "revoked" in out and "unhealthy" in out
    assert OPENAI_KEY not in out and wrong not in out

    code, out = await llm(server, admin.key, "usage", "--by", "provider")
    assert code == 0, out
    assert "total" in out and "local" in out and "revoked" in out  # the tests were calls too

    code, out = await llm(server, admin.key, "remove", "revoked")
    assert code == 0 and "Removed" in out
    code, out = await llm(server, admin.key, "show", "revoked")
    assert code == 1 and "No LLM provider named 'revoked'" in out
