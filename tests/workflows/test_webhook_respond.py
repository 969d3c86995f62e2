"""Synchronous webhooks: `respond: on_finish` answers with the run's output (200), its failure (502),
or 202 and the run id when the trigger's timeout passes first; `respond: on_accept` stays the default.
The trigger's fields are validated with errors that name them, and the curl command of
docs/workflows.md is run against a served app."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.workflows import signing
from atom.workflows.models import Workflow, WorkflowRun
from atom.workflows.runner import StepRunner
from atom.workflows.schemas import RunStarted
from tests.conftest import MakeUser
from tests.support.agents import make_agent
from tests.support.integration_servers import serve
from tests.workflows.conftest import make_workflow, put_secret, wait_run, wait_step

SECRET = "whsec-sync-41d2"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


def workflow(name: str, steps: str, respond: str = "    respond: on_finish\n") -> str:
    return f"""
name: {name}
agent: answerer
steps:
{steps}
triggers:
  - id: hook
    type: webhook
    secret: sync_hook
{respond}"""


SHAPED = """\
  - id: take
    action: noop
    with: {order: "{{ trigger.body.order_id }}", total: "{{ trigger.body.total }}"}
  - id: respond
    needs: [take]
    action: noop
    with: {accepted: "{{ steps.take.output.order }}", total: "{{ steps.take.output.total }}"}
"""
PLAIN = """\
  - id: take
    action: noop
    with: {order: "{{ trigger.body.order_id }}"}
  - id: note
    needs: [take]
    action: noop
    with: {line: "took {{ steps.take.output.order }}"}
"""
BROKEN = """\
  - id: take
    action: noop
    with: {order: "{{ trigger.body.order_id }}"}
  - id: explode
    needs: [take]
    action: noop
    with: {missing: "{{ trigger.body.not_sent.deeper }}"}
"""
WAITS = """\
  - id: take
    action: noop
    with: {order: "{{ trigger.body.order_id }}"}
  - id: later
    needs: [take]
    type: wait
    duration: 1h
"""


def signed(body: bytes) -> dict[str, str]:
    return {**signing.headers(SECRET, str(int(time.time())), body), "Content-Type": "application/json"}


async def _setup(settings: Settings, db: Database, engine: StepRunner, source: str) -> tuple[Workflow, str]:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="answerer")
    await put_secret(db, settings, "sync_hook", SECRET)
    created = await make_workflow(db, engine, source)
    return created, f"/hooks/{created.id}/hook"


async def _runs(db: Database) -> int:
    async with db.session_scope() as s:
        return int(await s.scalar(select(func.count()).select_from(WorkflowRun)) or 0)


async def test_on_finish_answers_200_with_the_respond_steps_output(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    _, path = await _setup(settings, db, engine, workflow("shaped", SHAPED))
    body = json.dumps({"order_id": "A-7", "total": 42}).encode()
    answer = await client.post(path, content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["status"] == "succeeded" and data["route"] == "run"
    assert data["output"] == {"accepted": "A-7", "total": 42}  # the respond step's value, types kept
    view = await wait_run(db, data["run_id"])
    assert view.status == "succeeded" and view.steps["respond"].output == data["output"]


async def test_without_a_respond_step_the_output_is_every_steps_output_by_id(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    _, path = await _setup(settings, db, engine, workflow("plain", PLAIN))
    body = json.dumps({"order_id": "B-1"}).encode()
    answer = await client.post(path, content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"] == {"take": {"order": "B-1"}, "note": {"line": "took B-1"}}


async def test_a_run_still_going_at_the_timeout_answers_202_with_its_id(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    _, path = await _setup(
        settings, db, engine, workflow("patient", WAITS, "    respond: on_finish\n    timeout: 0.3s\n")
    )
    body = json.dumps({"order_id": "C-3"}).encode()
    answer = await client.post(path, content=body, headers=signed(body))
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert data["status"] == "running" and data["route"] == "run" and "output" not in data
    view = await wait_step(db, data["run_id"], "later", "waiting")  # the run goes on after the answer
    assert view.status == "running" and view.steps["take"].status == "succeeded"


async def test_a_failed_run_answers_502_run_failed_naming_the_step(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    _, path = await _setup(settings, db, engine, workflow("broken", BROKEN))
    body = json.dumps({"order_id": "D-4"}).encode()
    answer = await client.post(path, content=body, headers=signed(body))
    assert answer.status_code == 502, answer.text
    error = answer.json()["error"]
    assert error["code"] == "RUN_FAILED"
    details = error["details"]
    assert details["status"] == "failed" and details["step"] == "explode"
    assert details["error_code"] == "TEMPLATE_ERROR" and "not_sent" in details["error"]
    assert (await wait_run(db, details["run_id"])).status == "failed"


async def test_on_accept_stays_the_default_and_answers_at_once(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient
) -> None:
    _, path = await _setup(settings, db, engine, workflow("eager", WAITS, respond=""))
    body = json.dumps({"order_id": "E-5"}).encode()
    answer = await client.post(path, content=body, headers=signed(body))
    assert answer.status_code == 202, answer.text
    data = answer.json()
    assert set(data) == set(RunStarted.model_fields)  # today's answer: no status, no output
    assert (await wait_step(db, data["run_id"], "later", "waiting")).status == "running"


@pytest.mark.parametrize(
    ("respond", "field", "message"),
    [
        ("    respond: at_once\n", "triggers[0](hook).respond", "'on_accept' or 'on_finish'"),
        ("    timeout: 5s\n", "triggers[0](hook).timeout", "only to `respond: on_finish`"),
        ("    respond: on_finish\n    timeout: 10m\n", "triggers[0](hook).timeout", "at most 120 s"),
        ("    respond: on_finish\n    timeout: 0\n", "triggers[0](hook).timeout", "more than 0"),
        ("    respond: on_finish\n    timeout: soon\n", "triggers[0](hook).timeout", "not a duration"),
    ],
)
async def test_the_respond_fields_are_validated_naming_the_field_and_nothing_is_stored(
    settings: Settings,
    db: Database,
    engine: StepRunner,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    respond: str,
    field: str,
    message: str,
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="answerer")
    await put_secret(db, settings, "sync_hook", SECRET)
    operator = await make_user("operator")
    created = await client.post(
        "/api/workflows", json={"source": workflow("checked", PLAIN, respond)}, headers=operator.headers
    )
    assert created.status_code == 422, created.text
    [problem] = created.json()["error"]["details"]["errors"]
    assert problem["field"] == field and message in problem["message"] and problem["line"] >= 12
    listed = await client.get("/api/workflows", headers=operator.headers)
    assert listed.json()["items"] == []


def _documented_curl() -> str:
    """The shell block of docs/workflows.md's "Synchronous webhooks" section."""
    section = DOCS.read_text().split("### Synchronous webhooks", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None, "docs/workflows.md shows no curl command for synchronous webhooks"
    return match.group(1)


async def test_the_documented_curl_command_gets_the_runs_output(
    settings: Settings, db: Database, engine: StepRunner, app: object
) -> None:
    created, path = await _setup(settings, db, engine, workflow("curled", SHAPED))
    async with serve(app) as url:
        env = {**os.environ, "URL": f"{url}{path}", "SECRET": SECRET}
        proc = await asyncio.create_subprocess_exec(
            "bash", "-euo", "pipefail", "-c", _documented_curl(), env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
    assert proc.returncode == 0
    data = json.loads(out)
    assert data["status"] == "succeeded" and data["output"] == {"accepted": "A-1001", "total": 12}
    assert await _runs(db) == 1 and created.name == "curled"
