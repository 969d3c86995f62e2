"""A workflow run's progress, read from its steps: n of m, what / why / next, and on a failed step its
error guidance, which a person can mark."""

from __future__ import annotations

import httpx

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.workflows import flows
from atom.workflows.runner import StepRunner
from tests.conftest import MakeUser
from tests.support.agents import make_agent
from tests.support.integration_servers import HttpServer
from tests.workflows.conftest import engine, http_api, make_workflow, start, wait_run, wait_step

__all__ = ["engine", "http_api"]

APPROVAL = """name: pay-quote
agent: wf-bot
steps:
  - id: quote
    name: Get the quote
    action: noop
    with: {amount: 120}
  - id: sign_off
    type: approval
    needs: [quote]
    message: "Pay {{ steps.quote.output.amount }} EUR?"
  - id: pay
    action: noop
    needs: [sign_off]
"""

FAILING = """name: fetch-missing
agent: wf-bot
steps:
  - id: fetch
    action: http_request
    with: {{url: "{url}/status/404"}}
  - id: store
    action: noop
    needs: [fetch]
"""


async def test_a_run_waiting_for_approval_says_so_and_then_finishes(
    client: httpx.AsyncClient, engine: StepRunner, db: Database, settings: Settings, make_user: MakeUser
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="wf-bot")
    viewer = await make_user("viewer")
    workflow = await make_workflow(db, engine, APPROVAL)
    started = await start(engine, workflow)
    assert started.run_id is not None
    await wait_step(db, started.run_id, "sign_off", "waiting")
    path = f"/api/guidance/workflow-runs/{started.run_id}"
    progress = (await client.get(path, headers=viewer.headers)).json()
    assert (progress["kind"], progress["status"], progress["step"], progress["total"]) == (
        "workflow_run",
        "running",
        1,
        3,
    )
    assert progress["percent"] == 33 and progress["bounded"] is False
    assert progress["what"] == "Waiting for a person to approve “sign_off”"
    assert progress["why"] == "Pay 120 EUR?" and progress["next"] == "Then “pay”."
    assert [(s["label"], s["status"]) for s in progress["steps"]] == [
        ("Get the quote", "succeeded"),
        ("sign_off", "waiting"),
        ("pay", "pending"),
    ]
    await flows.approve_step(engine, run_id=started.run_id, step_key="sign_off", approver_id="someone", reason=None)
    await wait_run(db, started.run_id)
    done = (await client.get(path, headers=viewer.headers)).json()
    assert (done["status"], done["step"], done["percent"]) == ("succeeded", 3, 100)
    assert done["what"] == "Finished: all 3 steps done" and done["guidance"] is None
    missing = await client.get("/api/guidance/workflow-runs/nope", headers=viewer.headers)
    assert missing.status_code == 404


async def test_a_failed_step_is_classified_and_its_resolution_can_be_marked(
    client: httpx.AsyncClient,
    engine: StepRunner,
    db: Database,
    settings: Settings,
    make_user: MakeUser,
    http_api: tuple[HttpServer, str],
) -> None:
    _, url = http_api
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="wf-bot")
    operator = await make_user("operator")
    workflow = await make_workflow(db, engine, FAILING.format(url=url))
    started = await start(engine, workflow)
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    assert view.status == "failed"
    progress = (await client.get(f"/api/guidance/workflow-runs/{started.run_id}", headers=operator.headers)).json()
    assert progress["what"] == "Failed at “fetch”" and "HTTP 404" in progress["why"]
    assert progress["next"].startswith("See what to do below")
    guidance = progress["guidance"]
    assert guidance["category"] == "resource_not_found" and guidance["subject_type"] == "workflow_step"
    assert guidance["subject_id"] == view.steps["fetch"].id and guidance["suggested"] == "look_up_again"
    assert progress["steps"][0]["guidance"] == guidance and progress["steps"][1]["guidance"] is None
    marked = await client.post(
        "/api/guidance/outcomes",
        json={
            "subject_type": "workflow_step",
            "subject_id": guidance["subject_id"],
            "resolution_id": "restore_resource",
            "worked": True,
        },
        headers=operator.headers,
    )
    assert marked.status_code == 201, marked.text
    assert marked.json()["category"] == "resource_not_found"
    again = (await client.get(f"/api/guidance/workflow-runs/{started.run_id}", headers=operator.headers)).json()
    assert again["guidance"]["suggested"] == "restore_resource"
    assert again["guidance"]["marked"] == {"restore_resource": True}
    cancelled = await client.post(
        "/api/guidance/outcomes",
        json={
            "subject_type": "workflow_step",
            "subject_id": view.steps["store"].id,
            "resolution_id": "look_up_again",
            "worked": True,
        },
        headers=operator.headers,
    )
    assert cancelled.status_code == 409 and cancelled.json()["error"]["code"] == "NO_ERROR"
