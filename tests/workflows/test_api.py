"""The workflows API over HTTP: definitions (validate, create, versions, list, show, delete), runs
(run now with inputs, list, show, cancel, retry from the failed step) and who may do what."""

from __future__ import annotations

import json

import httpx
from sqlalchemy import func, select

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.workflows.models import Workflow, WorkflowVersion
from atom.workflows.runner import StepRunner
from tests.conftest import MakeUser, UserWithKey
from tests.support.agents import make_agent
from tests.support.integration_servers import HttpServer
from tests.workflows.conftest import wait_run, wait_step

GOOD = """\
name: onboard
description: Welcome a customer
agent: api-bot
inputs:
  customer: {required: true}
  seats: {type: integer, default: 1}
steps:
  - id: welcome
    action: noop
    with: {to: "{{ inputs.customer }}", seats: "{{ inputs.seats }}"}
  - id: summary
    needs: [welcome]
    action: noop
    with: {line: "welcomed {{ steps.welcome.output.to }}"}
triggers:
  - id: mornings
    type: schedule
    cron: "0 8 * * 1-5"
    timezone: America/New_York
"""

BAD = """\
name: onboard
agent: api-bot
steps:
  - id: welcome
    action: noop
  - id: summary
    needs: [welcome]
    action: noop
    retries: {max: -1}
    with: {line: "{{ steps.nothing.output }}"}
"""


async def _count(db: Database, model: type[Workflow] | type[WorkflowVersion]) -> int:
    async with db.session_scope() as s:
        return int(await s.scalar(select(func.count()).select_from(model)) or 0)


async def _operator(settings: Settings, db: Database, make_user: MakeUser) -> UserWithKey:
    await make_agent(db, settings, MaturityLevel.STUDENT, name="api-bot")
    return await make_user(Role.OPERATOR)


async def test_a_bad_definition_is_refused_with_lines_and_fields_and_nothing_is_stored(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    operator = await _operator(settings, db, make_user)
    h = operator.headers
    created = await client.post("/api/workflows", json={"source": BAD}, headers=h)
    assert created.status_code == 422
    error = created.json()["error"]
    assert error["code"] == "INVALID_WORKFLOW"
    problems = {(p["line"], p["field"]) for p in error["details"]["errors"]}
    assert (9, "steps[1](summary).retries.max") in problems
    assert await _count(db, Workflow) == 0 and await _count(db, WorkflowVersion) == 0

    checked = await client.post("/api/workflows/validate", json={"source": BAD}, headers=h)
    assert checked.status_code == 200 and checked.json()["valid"] is False
    assert any(p["line"] == 9 and "retries.max" in p["field"] for p in checked.json()["problems"])
    graph = BAD.replace("    retries: {max: -1}\n", "")
    checked = (await client.post("/api/workflows/validate", json={"source": graph}, headers=h)).json()
    assert checked["valid"] is False
    assert [(p["line"], p["field"], p["message"]) for p in checked["problems"]] == [
        (9, "steps[1](summary).with.line", "steps.nothing is not a step")
    ]
    as_json = json.dumps({"name": "onboard", "agent": "api-bot", "steps": [{"id": "x", "action": "no_such_tool"}]})
    checked = (await client.post("/api/workflows/validate", json={"source": as_json}, headers=h)).json()
    assert checked["valid"] is False and checked["problems"][0]["field"] == "steps[0](x).action"
    assert "unknown action" in checked["problems"][0]["message"]

    good = (await client.post("/api/workflows/validate", json={"source": GOOD}, headers=h)).json()
    assert good == {"valid": True, "name": "onboard", "steps": 2, "order": ["welcome", "summary"], "problems": []}
    assert await _count(db, Workflow) == 0  # validating stores nothing


async def test_create_update_versions_list_show_and_delete(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    operator = await _operator(settings, db, make_user)
    h = operator.headers
    created = await client.post("/api/workflows", json={"source": GOOD}, headers=h)
    assert created.status_code == 201, created.text
    detail = created.json()
    assert detail["name"] == "onboard" and detail["current_version"] == 1 and detail["source"] == GOOD
    [trigger] = detail["triggers"]
    assert trigger["kind"] == "schedule" and len(trigger["next_fire_times"]) == 5
    assert all(t.endswith(("12:00:00Z", "13:00:00Z")) for t in trigger["next_fire_times"])  # 08:00 New York

    again = await client.post("/api/workflows", json={"source": GOOD}, headers=h)
    assert again.status_code == 409 and again.json()["error"]["code"] == "WORKFLOW_EXISTS"

    changed = GOOD.replace("default: 1", "default: 2")
    updated = await client.put(f"/api/workflows/{detail['id']}", json={"source": changed}, headers=h)
    assert updated.status_code == 200 and updated.json()["current_version"] == 2
    assert updated.json()["definition"]["inputs"]["seats"]["default"] == 2
    renamed = await client.put(
        "/api/workflows/onboard", json={"source": changed.replace("onboard", "other")}, headers=h
    )
    assert renamed.status_code == 422 and renamed.json()["error"]["details"]["errors"][0]["field"] == "name"
    versions = (await client.get("/api/workflows/onboard/versions", headers=h)).json()["items"]
    assert sorted(v["version"] for v in versions) == [1, 2]

    listed = (await client.get("/api/workflows", headers=h)).json()["items"]
    assert [w["name"] for w in listed] == ["onboard"]
    shown = (await client.get("/api/workflows/onboard", headers=h)).json()
    assert shown["id"] == detail["id"] and shown["current_version"] == 2 and shown["source"] == changed
    assert (await client.get("/api/workflows/nothing", headers=h)).status_code == 404

    assert (await client.delete("/api/workflows/onboard", headers=h)).status_code == 204
    assert (await client.get("/api/workflows/onboard", headers=h)).status_code == 404
    assert await _count(db, WorkflowVersion) == 0


async def test_run_now_with_inputs_list_and_show_runs(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    operator = await _operator(settings, db, make_user)
    h = operator.headers
    assert (await client.post("/api/workflows", json={"source": GOOD}, headers=h)).status_code == 201

    missing = await client.post("/api/workflows/onboard/runs", json={"inputs": {}}, headers=h)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "MISSING_INPUT"
    unknown = await client.post("/api/workflows/onboard/runs", json={"inputs": {"customer": "x", "vip": 1}}, headers=h)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "UNKNOWN_INPUTS"
    mistyped = await client.post(
        "/api/workflows/onboard/runs", json={"inputs": {"customer": "x", "seats": "two"}}, headers=h
    )
    assert mistyped.status_code == 422 and mistyped.json()["error"]["code"] == "INVALID_INPUT_TYPE"

    started = await client.post(
        "/api/workflows/onboard/runs", json={"inputs": {"customer": "Acme", "seats": 12}}, headers=h
    )
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["route"] == "run" and body["run_id"]
    await wait_run(db, body["run_id"])

    run = (await client.get(f"/api/workflow-runs/{body['run_id']}", headers=h)).json()
    assert run["status"] == "succeeded" and run["inputs"] == {"customer": "Acme", "seats": 12}
    assert run["trigger_kind"] == "manual" and run["version"] == 1
    welcome, summary = run["steps"]
    assert welcome["step_key"] == "welcome" and welcome["input"] == {"to": "Acme", "seats": 12}
    assert welcome["output"] == {"to": "Acme", "seats": 12}
    assert summary["output"] == {"line": "welcomed Acme"}
    assert all(s["started_at"] and s["finished_at"] and s["duration_ms"] is not None for s in run["steps"])

    runs = (await client.get("/api/workflows/onboard/runs", headers=h)).json()["items"]
    assert [r["id"] for r in runs] == [body["run_id"]]
    assert [r["id"] for r in (await client.get("/api/workflow-runs?status=succeeded", headers=h)).json()["items"]] == [
        body["run_id"]
    ]
    assert (await client.get("/api/workflow-runs?status=failed", headers=h)).json()["items"] == []
    assert (await client.get("/api/workflow-runs/nope", headers=h)).status_code == 404


async def test_cancel_a_waiting_run_and_retry_a_failed_one_from_its_failed_step(
    settings: Settings,
    db: Database,
    engine: StepRunner,
    client: httpx.AsyncClient,
    make_user: MakeUser,
    http_api: tuple[HttpServer, str],
) -> None:
    server, url = http_api
    operator = await _operator(settings, db, make_user)
    h = operator.headers
    waiting = """
name: patient
agent: api-bot
steps:
  - id: first
    action: noop
  - id: later
    type: wait
    needs: [first]
    duration: 1h
  - id: last
    needs: [later]
    action: noop
"""
    assert (await client.post("/api/workflows", json={"source": waiting}, headers=h)).status_code == 201
    run_id = (await client.post("/api/workflows/patient/runs", json={}, headers=h)).json()["run_id"]
    await wait_step(db, run_id, "later", "waiting")
    busy = await client.delete("/api/workflows/patient", headers=h)
    assert busy.status_code == 409 and busy.json()["error"]["code"] == "WORKFLOW_HAS_ACTIVE_RUNS"
    cancelled = await client.post(f"/api/workflow-runs/{run_id}/cancel", headers=h)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    steps = {s["step_key"]: s["status"] for s in cancelled.json()["steps"]}
    assert steps["first"] == "succeeded" and steps["last"] == "cancelled"
    assert (await client.post(f"/api/workflow-runs/{run_id}/cancel", headers=h)).status_code == 409

    flaky = f"""
name: flaky
agent: api-bot
steps:
  - id: fetch
    action: http_request
    with: {{url: "{url}/echo", query: {{step: fetch}}}}
  - id: sync
    needs: [fetch]
    action: http_request
    with: {{url: "{url}/flaky/sync", query: {{fail: 1}}}}
"""
    assert (await client.post("/api/workflows", json={"source": flaky}, headers=h)).status_code == 201
    run_id = (await client.post("/api/workflows/flaky/runs", json={}, headers=h)).json()["run_id"]
    failed = await wait_run(db, run_id)
    assert failed.status == "failed" and failed.steps["sync"].status == "failed"
    retried = await client.post(f"/api/workflow-runs/{run_id}/retry", headers=h)
    assert retried.status_code == 200, retried.text
    done = await wait_run(db, run_id)
    assert done.status == "succeeded"
    assert done.steps["fetch"].generation == 0 and done.steps["sync"].generation == 1
    assert [r["path"] for r in server.requests] == ["/echo", "/flaky/sync", "/flaky/sync"]  # fetch ran once
    again = await client.post(f"/api/workflow-runs/{run_id}/retry", headers=h)
    assert again.status_code == 409


async def test_roles_viewers_read_operators_change_and_run_approvers_decide(
    settings: Settings, db: Database, engine: StepRunner, client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    operator = await _operator(settings, db, make_user)
    viewer = await make_user(Role.VIEWER)
    body = {"source": GOOD}
    assert (await client.post("/api/workflows", json=body)).status_code == 401
    assert (await client.post("/api/workflows", json=body, headers=viewer.headers)).status_code == 403
    assert (await client.post("/api/workflows/validate", json=body, headers=viewer.headers)).status_code == 403
    assert await _count(db, Workflow) == 0
    assert (await client.post("/api/workflows", json=body, headers=operator.headers)).status_code == 201

    assert (await client.get("/api/workflows", headers=viewer.headers)).status_code == 200
    assert (await client.get("/api/workflows/onboard", headers=viewer.headers)).status_code == 200
    run = {"inputs": {"customer": "Acme"}}
    assert (await client.post("/api/workflows/onboard/runs", json=run, headers=viewer.headers)).status_code == 403
    assert (await client.put("/api/workflows/onboard", json=body, headers=viewer.headers)).status_code == 403
    assert (await client.delete("/api/workflows/onboard", headers=viewer.headers)).status_code == 403
    assert (await client.get("/api/workflow-runs", headers=viewer.headers)).json()["items"] == []

    started = (await client.post("/api/workflows/onboard/runs", json=run, headers=operator.headers)).json()
    await wait_run(db, started["run_id"])
    run_path = f"/api/workflow-runs/{started['run_id']}"
    assert (await client.get(run_path, headers=viewer.headers)).status_code == 200
    assert (await client.post(f"{run_path}/retry", headers=viewer.headers)).status_code == 403
    assert (await client.post(f"{run_path}/cancel", headers=viewer.headers)).status_code == 403
    decision = {"reason": "no"}
    refused = await client.post(f"{run_path}/steps/welcome/approve", json=decision, headers=operator.headers)
    assert refused.status_code == 403  # deciding approval steps needs an approver
