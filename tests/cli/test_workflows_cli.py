"""`atom-os workflows ...` against a real server: the full app (lifespan on: workflow engine and
scheduler) under uvicorn on a loopback port; the CLI speaks HTTP to it with an API key."""

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
from atom.security.models import Role
from tests.conftest import MakeUser
from tests.support.agents import make_agent
from tests.support.live_server import serving
from tests.workflows.conftest import put_secret

runner = CliRunner()

GOOD = """\
name: greet
agent: cli-bot
inputs:
  who: {default: world}
  times: {type: integer, default: 1}
steps:
  - id: hello
    action: noop
    with: {text: "hello {{ inputs.who }}"}
  - id: count
    needs: [hello]
    action: noop
    with: {times: "{{ inputs.times }}", said: "{{ steps.hello.output.text }}"}
triggers:
  - id: nightly
    type: schedule
    cron: "0 2 * * *"
    timezone: Europe/Paris
"""

BAD = """\
name: broken
agent: cli-bot
steps:
  - id: first
    action: noop
  - id: second
    needs: [frist]
    action: noop
"""

FAILING = """\
name: fails
agent: cli-bot
steps:
  - id: send
    action: noop
    with: {order: "{{ trigger.body.order_id }}"}
  - id: after
    needs: [send]
    action: noop
"""

HOOKED = """\
name: hooked-on-a-rather-long-workflow-name
agent: cli-bot
steps:
  - id: take
    action: noop
triggers:
  - id: from_the_supplier_portal
    type: webhook
    secret: supplier_portal_hook
"""

APPROVAL = """\
name: signoff
agent: cli-bot
steps:
  - id: ask
    type: approval
    message: "Go ahead?"
  - id: done
    needs: [ask]
    action: noop
"""


@pytest.fixture
async def server(settings: Settings, db: Database) -> AsyncIterator[str]:
    async with serving(create_app(settings, db=db, configure_logs=False), lifespan="on") as address:
        yield f"http://{address}"


def run_line(out: str) -> str:
    """The run's own status line of `run-show` (the in-process server may log lines into the output too)."""
    return next((line for line in out.splitlines() if line.startswith("run ")), "")


async def wf(url: str, key: str, *args: str, columns: int = 200) -> tuple[int, str]:
    """`atom-os workflows ARGS --url URL` with ATOM_API_KEY; runs in a thread (the server runs in this loop)."""
    env = {"ATOM_API_KEY": key, "COLUMNS": str(columns), "ATOM_LOG_FORMAT": "json"}

    def call() -> tuple[int, str]:
        result = runner.invoke(cli, ["workflows", *args, "--url", url], env=env)
        return result.exit_code, result.output

    return await asyncio.to_thread(call)


async def test_validate_create_show_and_run_to_success(
    server: str, settings: Settings, db: Database, make_user: MakeUser, tmp_path: Path
) -> None:
    await make_agent(db, settings, MaturityLevel.STUDENT, name="cli-bot")
    operator = await make_user(Role.OPERATOR)
    good, bad = tmp_path / "greet.yaml", tmp_path / "broken.yaml"
    good.write_text(GOOD)
    bad.write_text(BAD)

    code, out = await wf(server, operator.key, "validate", str(good))
    assert code == 0, out
    assert "valid" in out and "hello -> count" in out

    code, out = await wf(server, operator.key, "validate", str(bad))
    assert code == 1
    assert "line 7" in out and "steps[1](second).needs" in out and "unknown step 'frist'" in out

    code, out = await wf(server, "", "validate", "--offline", str(bad))  # local checks need no server or key
    assert code == 1 and "line 7" in out and "frist" in out
    code, out = await wf(server, "", "validate", "--offline", str(good))
    assert code == 0 and "valid locally" in out

    unknown_agent = tmp_path / "agentless.yaml"
    unknown_agent.write_text(GOOD.replace("agent: cli-bot", "agent: nobody"))
    code, out = await wf(server, operator.key, "validate", str(unknown_agent))  # only the server knows agents
    assert code == 1 and "line 2" in out and "agent" in out and "nobody" in out

    code, out = await wf(server, operator.key, "create", str(bad))
    assert code == 1 and "frist" in out
    code, out = await wf(server, operator.key, "list")
    assert code == 0 and "broken" not in out  # a bad definition stored nothing

    code, out = await wf(server, operator.key, "create", str(good))
    assert code == 0, out
    assert "created" in out and "greet" in out
    code, out = await wf(server, operator.key, "show", "greet")
    assert code == 0, out
    assert "nightly" in out and "0 2 * * *" in out and "Europe/Paris" in out
    assert "02:00 Europe/Paris" in out and ("01:00 UTC" in out or "00:00 UTC" in out)  # winter or summer time

    code, out = await wf(server, operator.key, "run", "greet", "--input", "who=Ada", "--input", "times=3")
    assert code == 0, out
    assert "hello" in out and "count" in out and "succeeded" in out
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run ") and "started" in line)

    code, out = await wf(server, operator.key, "run-show", run_id)
    assert code == 0, out
    assert '"text": "hello Ada"' in out and '"times": 3' in out and '"said": "hello Ada"' in out
    code, out = await wf(server, operator.key, "runs", "greet")
    assert code == 0 and run_id in out and "succeeded" in out

    # `run FILE` updates the workflow to a new version when the file changed, then runs it
    good.write_text(GOOD.replace("default: world", "default: everyone"))
    code, out = await wf(server, operator.key, "run", str(good))
    assert code == 0, out
    assert "version 2" in out and "succeeded" in out
    code, out = await wf(server, operator.key, "run", str(good), "--no-watch")
    assert code == 0 and "unchanged (version 2)" in out

    viewer = await make_user(Role.VIEWER)
    code, out = await wf(server, viewer.key, "run", "greet")
    assert code == 1 and "403" in out


async def test_a_failing_run_exits_non_zero_and_approvals_are_decided_from_the_cli(
    server: str, settings: Settings, db: Database, make_user: MakeUser, tmp_path: Path
) -> None:
    await make_agent(db, settings, MaturityLevel.STUDENT, name="cli-bot")
    operator = await make_user(Role.OPERATOR)
    approver = await make_user(Role.APPROVER)
    failing = tmp_path / "fails.yaml"
    failing.write_text(FAILING)
    code, out = await wf(server, operator.key, "run", str(failing))
    assert code == 1, out
    assert "run " in out and ": failed" in out and "undefined variable" in out
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run ") and "started" in line)
    code, out = await wf(server, operator.key, "run-show", run_id)
    assert "TEMPLATE_ERROR" in out and "cancelled" in out

    signoff = tmp_path / "signoff.yaml"
    signoff.write_text(APPROVAL)
    code, out = await wf(server, operator.key, "run", str(signoff), "--no-watch")
    assert code == 0, out
    run_id = next(line.split()[1] for line in out.splitlines() if line.startswith("run ") and "started" in line)
    for _ in range(200):
        code, out = await wf(server, operator.key, "run-show", run_id)
        if "waiting" in out:
            break
        await asyncio.sleep(0.05)
    assert "waiting" in out and "proposal" in out
    code, out = await wf(server, operator.key, "approve", run_id, "ask")
    assert code == 1 and "403" in out  # operators cannot approve
    code, out = await wf(server, approver.key, "approve", run_id, "ask", "--reason", "fine")
    assert code == 0, out
    for _ in range(200):
        code, out = await wf(server, operator.key, "run-show", run_id)
        if "succeeded" in run_line(out):
            break
        await asyncio.sleep(0.05)
    assert "succeeded" in run_line(out), out

    code, out = await wf(server, operator.key, "delete", "signoff", "--yes")
    assert code == 0, out
    code, out = await wf(server, operator.key, "show", "signoff")
    assert code == 1 and "WORKFLOW_NOT_FOUND" in out
    code, out = await wf(server, "atom_not-a-key", "list")
    assert code == 1 and "401" in out


async def test_show_prints_a_webhook_url_whole_on_one_line_on_a_narrow_output(
    server: str, settings: Settings, db: Database, make_user: MakeUser, tmp_path: Path
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="cli-bot")
    operator = await make_user(Role.OPERATOR)
    await put_secret(db, settings, "supplier_portal_hook", "a-signing-secret-for-the-portal")
    hooked = tmp_path / "hooked.yaml"
    hooked.write_text(HOOKED)
    code, out = await wf(server, operator.key, "create", str(hooked))
    assert code == 0, out
    code, out = await wf(server, operator.key, "show", "hooked-on-a-rather-long-workflow-name", columns=60)
    assert code == 0, out
    line = next(line for line in out.splitlines() if line.startswith("webhook from_the_supplier_portal: POST "))
    url = line.split("POST ", 1)[1].strip()
    assert url.startswith(server) and url.endswith("/from_the_supplier_portal") and len(url) > 60
    assert "secret supplier_portal_hook" in out
