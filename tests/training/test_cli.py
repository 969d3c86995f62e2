"""`atom-os trigger`, `proposals` and `training` as a user runs them."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from atom.cli.main import app as cli
from atom.config import Settings
from atom.db.session import Database

runner = CliRunner()
ID = re.compile(r"01[0-9a-f-]{34}")


@pytest.fixture
def env(settings: Settings, db: Database) -> dict[str, str]:
    values = {
        "ATOM_DATA_DIR": str(settings.data_dir),
        "ATOM_SECRET_KEY": settings.secret_key.get_secret_value() if settings.secret_key else "",
        "COLUMNS": "200",
    }
    if settings.database_url:
        values["ATOM_DATABASE_URL"] = settings.database_url
    return values


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env=env)
    return result.exit_code, result.output


async def test_trigger_propose_approve_and_train(env: dict[str, str], tmp_path: Path) -> None:
    def scenario() -> None:
        assert invoke(env, "users", "create", "ann", "--role", "approver", "--no-key")[0] == 0
        assert invoke(env, "users", "create", "opal", "--role", "operator", "--no-key")[0] == 0
        assert invoke(env, "agents", "create", "intern-bot", "--confidence", "0.6")[0] == 0
        assert invoke(env, "agents", "create", "student-bot")[0] == 0
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps([{"action": "calculate", "params": {"expression": "6*7"}}]))

        code, out = invoke(env, "trigger", "intern-bot", "--plan", str(plan))
        assert code == 0 and "proposal (INTERN)" in out
        proposal_id = ID.findall(out)[0]
        code, out = invoke(env, "proposals", "list")
        assert proposal_id in out
        code, out = invoke(env, "proposals", "show", proposal_id)
        assert "6*7" in out and "plan hash" in out
        code, out = invoke(env, "proposals", "approve", proposal_id, "--by", "opal")
        assert code == 1 and "approver" in out
        code, out = invoke(env, "proposals", "approve", proposal_id, "--by", "ann")
        assert code == 0 and "executed" in out and "calculate: done" in out
        code, out = invoke(env, "proposals", "approve", proposal_id, "--by", "ann")
        assert code == 1 and "only a pending proposal" in out

        code, out = invoke(env, "trigger", "student-bot", "--plan", str(plan))
        assert "training (STUDENT)" in out and "40.0 h" in out
        training_proposal = ID.findall(out)[0]
        code, out = invoke(env, "proposals", "approve", training_proposal, "--by", "ann")
        training_id = ID.findall(out.split("training session", 1)[1])[0]
        assert invoke(env, "training", "override", training_id, "--hours", "8", "--by", "ann")[0] == 0
        code, out = invoke(env, "training", "complete", training_id, "--performance", "0.8", "--by", "ann")
        assert code == 0 and "+0.20" in out
        assert "completed" in invoke(env, "training", "list")[1]

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"steps": [{"params": {}}]}))
        code, out = invoke(env, "trigger", "intern-bot", "--plan", str(bad))
        assert code == 1 and "steps.0.action" in out

    await asyncio.to_thread(scenario)
