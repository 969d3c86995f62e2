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


def invoke_as(env: dict[str, str], key: str | None, *args: str) -> tuple[int, str]:
    """Run the CLI with ATOM_API_KEY set to `key` (or unset: CliRunner env None removes it)."""
    result = runner.invoke(cli, list(args), env={**env, "ATOM_API_KEY": key})  # type: ignore[dict-item]
    return result.exit_code, result.output


HASH = re.compile(r"plan hash ([0-9a-f]{64})")


async def test_trigger_propose_approve_and_train(env: dict[str, str], tmp_path: Path) -> None:
    def scenario() -> None:
        assert invoke(env, "users", "create", "ann", "--role", "approver", "--no-key")[0] == 0
        assert invoke(env, "users", "create", "opal", "--role", "operator", "--no-key")[0] == 0
        code, out = invoke(env, "keys", "create", "--user", "ann")
        ann_key = out.strip().splitlines()[-1]
        assert code == 0 and ann_key.startswith("atom_"), out
        # above STUDENT needs an approver: nobody named, an operator named, then the approver
        code, out = invoke_as(env, None, "agents", "create", "intern-bot", "--confidence", "0.6")
        assert code == 1 and "ATOM_API_KEY" in out and "approver" in out
        code, out = invoke(env, "agents", "create", "intern-bot", "--confidence", "0.6", "--by", "opal")
        assert code == 1 and "opal is operator" in out
        code, out = invoke(env, "agents", "create", "intern-bot", "--confidence", "0.6", "--by", "ann")
        assert code == 0 and "INTERN" in out
        assert invoke(env, "agents", "create", "student-bot")[0] == 0
        plan = tmp_path / "plan.json"
        plan.write_text(json.dumps([{"action": "calculate", "params": {"expression": "6*7"}}]))

        code, out = invoke(env, "trigger", "intern-bot", "--plan", str(plan))
        assert code == 0 and "proposal (INTERN)" in out
        proposal_id = ID.findall(out)[0]
        code, out = invoke(env, "proposals", "list")
        row = next(line for line in out.splitlines() if proposal_id in line)
        assert "intern-bot" in row  # the agent's name, not its id
        code, out = invoke(env, "proposals", "show", proposal_id)
        assert "6*7" in out and "for agent intern-bot" in out
        seen = HASH.findall(out)[0]
        assert f"atom-os proposals approve {proposal_id} --hash {seen}" in out
        code, out = invoke(env, "proposals", "approve", proposal_id, "--by", "ann")
        assert code == 2 and "--hash" in out  # the hash the approver saw is required
        code, out = invoke(env, "proposals", "approve", proposal_id, "--hash", "0" * 64, "--by", "ann")
        assert code == 1 and "not the proposal's" in out
        code, out = invoke(env, "proposals", "approve", proposal_id, "--hash", seen, "--by", "opal")
        assert code == 1 and "approver" in out
        code, out = invoke_as(env, None, "proposals", "approve", proposal_id, "--hash", seen)
        assert code == 1 and "ATOM_API_KEY" in out
        # no --by: the caller is the owner of ATOM_API_KEY, as in the API
        code, out = invoke_as(env, ann_key, "proposals", "approve", proposal_id, "--hash", seen)
        assert code == 0 and "executed" in out
        assert 'step 1 calculate: done -> {"expression": "6*7", "result": 42}' in out
        code, out = invoke_as(env, ann_key, "proposals", "approve", proposal_id, "--hash", seen)
        assert code == 1 and "only a pending proposal" in out

        code, out = invoke(env, "trigger", "student-bot", "--plan", str(plan))
        assert "training (STUDENT)" in out and "40.0 h" in out
        training_proposal = ID.findall(out)[0]
        seen = HASH.findall(invoke(env, "proposals", "show", training_proposal)[1])[0]
        code, out = invoke_as(env, ann_key, "proposals", "approve", training_proposal, "--hash", seen)
        training_id = ID.findall(out.split("training session", 1)[1])[0]
        code, out = invoke(env, "training", "list")
        assert "student-bot" in next(line for line in out.splitlines() if training_id in line)
        assert invoke_as(env, ann_key, "training", "override", training_id, "--hours", "8")[0] == 0
        code, out = invoke(env, "training", "complete", training_id, "--performance", "0.8", "--by", "ann")
        assert code == 0 and "+0.20" in out
        assert "completed" in invoke(env, "training", "list")[1]

        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps({"steps": [{"params": {}}]}))
        code, out = invoke(env, "trigger", "intern-bot", "--plan", str(bad))
        assert code == 1 and "steps.0.action" in out

    await asyncio.to_thread(scenario)


async def test_trigger_on_an_autonomous_agent_prints_each_result(env: dict[str, str], tmp_path: Path) -> None:
    def scenario() -> None:
        assert invoke(env, "users", "create", "ann", "--role", "approver", "--no-key")[0] == 0
        assert invoke(env, "agents", "create", "auto-bot", "--confidence", "0.95", "--by", "ann")[0] == 0
        plan = tmp_path / "plan.json"
        steps = [
            {"action": "calculate", "params": {"expression": "6*7"}},
            {"action": "calculate", "params": {"expression": "2**10"}},
        ]
        plan.write_text(json.dumps(steps))
        code, out = invoke(env, "trigger", "auto-bot", "--plan", str(plan))
        assert code == 0 and "run (AUTONOMOUS)" in out, out
        assert 'step 1 calculate: done -> {"expression": "6*7", "result": 42}' in out
        assert 'step 2 calculate: done -> {"expression": "2**10", "result": 1024}' in out

    await asyncio.to_thread(scenario)
