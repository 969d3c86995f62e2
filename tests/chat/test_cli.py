"""`atom-os execute` against a live server: the exit code says whether the run completed."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import UserWithKey
from tests.support.llm_servers import ScriptedToolCall, error_reply, text_reply, tool_reply

runner = CliRunner()


async def _execute(live: str, key: str, *args: str) -> tuple[int, str]:
    env = {"ATOM_API_KEY": key, "COLUMNS": "200"}
    result = await asyncio.to_thread(runner.invoke, cli, ["execute", *args, "--url", f"http://{live}"], env=env)
    return result.exit_code, result.output


async def test_execute_exit_codes(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.INTERN, "cli-bot")
    llm_server.queue(
        tool_reply(ScriptedToolCall("calculate", ['{"expression": "2**10"}'])),
        text_reply("1024"),
        error_reply(400, "model not found"),
    )
    code, out = await _execute(live, admin.key, "cli-bot", "what is 2**10?")
    assert code == 0, out
    assert "1024" in out and "calculate" in out and "completed" in out

    code, out = await _execute(live, admin.key, "cli-bot", "again", "--json")
    assert code == 1
    assert "model not found" in out

    code, out = await _execute(live, admin.key, "nobody", "hello")
    assert code == 1 and "No agent named 'nobody'" in out

    code, out = await _execute(live, "atom_wrong_key", "cli-bot", "hello")
    assert code == 1

    unreachable = await asyncio.to_thread(
        runner.invoke, cli, ["execute", "cli-bot", "x", "--key", "k", "--url", "http://127.0.0.1:9"]
    )
    assert unreachable.exit_code == 2 and "cannot reach" in unreachable.output
