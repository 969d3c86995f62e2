"""A governance answer does not depend on which process asks: `atom-os governance check`, run in a
fresh process, answers as `POST /api/governance/check` does for every action in the catalogue."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import httpx

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from tests.conftest import MakeUser
from tests.support.agents import make_agent

# A fresh interpreter: nothing of this test process (its registries, its imports) is shared.
CLI_LOOP = """
import json, sys
from typer.testing import CliRunner
from atom.cli.main import app
runner = CliRunner()
answers = {}
for action in json.loads(sys.argv[2]):
    result = runner.invoke(app, ["governance", "check", sys.argv[1], action])
    words = result.output.split()
    answers[action] = [words[0], words[1].rstrip(":")] if len(words) > 1 else [result.output, ""]
print(json.dumps(answers))
"""


def _cli_answers(settings: Settings, agent_id: str, actions: list[str]) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
    env.update(ATOM_DATA_DIR=str(settings.data_dir), ATOM_LOG_FORMAT="json", COLUMNS="400")
    if settings.secret_key:
        env["ATOM_SECRET_KEY"] = settings.secret_key.get_secret_value()
    if settings.database_url:
        env["ATOM_DATABASE_URL"] = settings.database_url
    done = subprocess.run(
        [sys.executable, "-c", CLI_LOOP, agent_id, json.dumps(actions)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return answers


async def test_cli_and_api_give_the_same_answer_for_every_action(
    settings: Settings, db: Database, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    operator = await make_user(Role.OPERATOR)
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="parity")
    listed = await client.get("/api/governance/actions", headers=operator.headers)
    assert listed.status_code == 200
    actions = [a["name"] for a in listed.json()]
    assert {"noop", "slack_post_message", "http_get", "get_current_time"} <= set(actions)
    api: dict[str, list[str]] = {}
    for action in actions:
        answer = await client.post(
            "/api/governance/check", json={"agent_id": agent.id, "action": action}, headers=operator.headers
        )
        assert answer.status_code == 200, answer.text
        api[action] = [answer.json()["outcome"], answer.json()["reason_code"]]
    cli = await asyncio.to_thread(_cli_answers, settings, agent.id, actions)
    assert cli == api
    assert api["noop"] == ["allow", "ALLOWED"]  # the workflow actions are known to both
