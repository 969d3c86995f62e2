"""Progress bars in the terminal: `atom-os execute --progress` follows an agent run step by step and
`atom-os workflows run` shows the run's progress and, when it fails, what to do (suggested first)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.main import create_app
from tests.chat.conftest import WatchedOpenAIServer, agent_named, live
from tests.conftest import MakeUser, UserWithKey
from tests.support.agents import make_agent
from tests.support.integration_servers import HttpServer
from tests.support.live_server import serving
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply
from tests.workflows.conftest import http_api

__all__ = ["http_api", "live"]

runner = CliRunner()
ENV = {"COLUMNS": "200", "ATOM_LOG_FORMAT": "json"}


async def _invoke(key: str, *args: str) -> tuple[int, str]:
    result = await asyncio.to_thread(runner.invoke, cli, list(args), env={**ENV, "ATOM_API_KEY": key})
    return result.exit_code, result.output


async def test_execute_with_progress_follows_the_run(
    live: str, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "counter")
    llm_server.queue(
        tool_reply(ScriptedToolCall("calculate", ['{"expression": "6*7"}'])),
        text_reply("It is 42."),
    )
    code, out = await _invoke(admin.key, "execute", "counter", "6 times 7?", "--progress", "--url", f"http://{live}")
    assert code == 0, out
    assert "2/2" in out and "Finished in 2 steps" in out  # the bar's last state: step n of m, what
    assert "> calculate ok" in out and "It is 42." in out and "completed" in out


@pytest.fixture
async def server(settings: Settings, db: Database) -> AsyncIterator[str]:
    async with serving(create_app(settings, db=db, configure_logs=False), lifespan="on") as address:
        yield f"http://{address}"


async def test_a_failed_workflow_run_says_what_to_do(
    server: str, db: Database, settings: Settings, make_user: MakeUser, http_api: tuple[HttpServer, str],
    tmp_path: Path,
) -> None:  # fmt: skip
    _, url = http_api
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="cli-bot")
    operator = await make_user("operator")
    source = tmp_path / "fetch.yaml"
    source.write_text(
        "name: fetch\nagent: cli-bot\nsteps:\n  - id: fetch\n    action: http_request\n"
        f'    with: {{url: "{url}/status/404"}}\n'
    )
    code, out = await _invoke(operator.key, "workflows", "run", str(source), "--url", server)
    assert code == 1, out
    assert "1/1 · Failed at “fetch”" in out  # the run's row: steps finished of all, what happened
    assert "Not found: The thing asked for" in out
    lines = out.splitlines()
    suggested = next(i for i, line in enumerate(lines) if "(suggested)" in line)
    assert "the agent can: Look it up again (suggested)" in lines[suggested]
    assert any("a person must: Create, restore or share it" in line for line in lines[suggested:])
