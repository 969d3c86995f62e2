"""`atom-os training load-scenarios|scenarios|run|show|score` as a person runs them; `run` talks to a real
server on a loopback port (the agent runs there) and follows the progress."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from tests.chat.conftest import WatchedOpenAIServer
from tests.conftest import MakeUser
from tests.support.agents import make_agent
from tests.support.llm_servers import text_reply
from tests.training.conftest import SideEffects
from tests.training_scenarios.support import scheduled_training

runner = CliRunner()
FILE = """\
scenarios:
  - name: greet
    category: sales
    task: Greet Ann.
    tools: []
    expect:
      reference: {answer: "Hello Ann", match: contains}
  - name: summarize
    category: sales
    task: Summarize the week.
    tools: [test_read_record]
    expect:
      judge: {rubric: "Short and factual."}
"""


def cli_env(settings: Settings) -> dict[str, str]:
    values = {
        "ATOM_DATA_DIR": str(settings.data_dir),
        "ATOM_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "ATOM_LOG_FORMAT": "json",
        "COLUMNS": "200",
    }
    if settings.database_url:
        values["ATOM_DATABASE_URL"] = settings.database_url
    return values


async def test_load_run_show_and_override_from_the_command_line(
    live: str,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    make_user: MakeUser,
    db: Database,
    settings: Settings,
    effects: SideEffects,
    tmp_path: Path,
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.STUDENT, category="sales", name="seller")
    approver = await make_user(Role.APPROVER)
    operator = await make_user(Role.OPERATOR)
    training_id = await scheduled_training(client, approver, agent.id)
    env = cli_env(settings)
    good, bad = tmp_path / "scenarios.yaml", tmp_path / "bad.yaml"
    good.write_text(FILE)
    bad.write_text(FILE.replace("[test_read_record]", "[nope]"))

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["training", *args], env=env)
        return result.exit_code, result.output

    def load_and_list() -> None:
        code, out = invoke("load-scenarios", str(bad), "--by", approver.username)
        assert code == 1 and "line 8" in out and "scenarios.1.tools.0" in out and "nothing stored" in out, out
        code, out = invoke("load-scenarios", str(good), "--by", operator.username)
        assert code == 1 and "approver" in out
        code, out = invoke("load-scenarios", str(good), "--by", approver.username)
        assert code == 0 and "greet v1 (sales)" in out and "summarize v1 (sales)" in out, out
        code, out = invoke("scenarios", "--category", "sales")
        assert code == 0 and "greet" in out and "reference" in out and "judge" in out, out

    await asyncio.to_thread(load_and_list)
    llm_server.queue(
        text_reply("Hello Ann!"),
        text_reply("A quiet week."),
        text_reply(json.dumps({"score": 0.6, "reason": "Short; no figures."})),
    )

    def run_and_score() -> None:
        result = runner.invoke(
            cli, ["training", "run", training_id, "--url", f"http://{live}", "--key", approver.key], env=env
        )
        assert result.exit_code == 0, result.output
        assert "2 scenarios" in result.output and "completed" in result.output and "0.80 by scenarios" in result.output
        code, out = invoke("show", training_id)
        assert code == 0 and "greet" in out and "reference 1.00" in out and "judge 0.60" in out, out
        code, out = invoke(
            "score", training_id, "--performance", "0.2", "--reason", "too vague", "--by", approver.username
        )
        assert code == 0 and "0.20 by person" in out, out
        again = runner.invoke(
            cli, ["training", "run", training_id, "--url", f"http://{live}", "--key", approver.key], env=env
        )
        assert again.exit_code == 1 and "completed" in again.output

    await asyncio.to_thread(run_and_score)
