"""Workflow pages over HTTP (both databases): the definition page (YAML, DAG, next fire times, webhook URL),
saving with a typo -> every problem at its line and nothing stored, run now -> the run's timeline; roles."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.workflows import app as workflows_app
from atom.workflows import service as workflows_service
from atom.workflows.runner import StepRunner
from tests.support.agents import make_agent
from tests.web.conftest import MakeWebUser, page_csrf, sign_in
from tests.workflows.conftest import make_workflow, put_secret, wait_run

SOURCE = """name: nightly-report
description: "Collect <b>numbers</b> and file them"
agent: wf-bot
triggers:
  - id: nightly
    type: schedule
    cron: "0 2 * * *"
  - id: from_portal
    type: webhook
    secret: portal_hook
steps:
  - id: collect
    action: noop
    with: {n: 1}
  - id: file
    action: noop
    needs: [collect]
    with: {got: "{{ steps.collect.output.n }}"}
"""


@pytest.fixture
async def wf_engine(app: FastAPI, settings: Settings, db: Database) -> AsyncIterator[StepRunner]:
    runner = StepRunner(db=db, settings=settings)
    started = await workflows_app.start(runner, scheduler=False)
    app.state.workflow_engine = runner
    yield runner
    await workflows_app.stop(started)


async def _workflow(db: Database, settings: Settings, engine: StepRunner) -> str:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="wf-bot")
    await put_secret(db, settings, "portal_hook", "s3cret-value-for-the-portal")
    return (await make_workflow(db, engine, SOURCE)).id


async def test_a_viewer_sees_the_definition_graph_and_triggers_but_cannot_save_or_run(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings, wf_engine: StepRunner
) -> None:
    workflow_id = await _workflow(db, settings, wf_engine)
    await sign_in(client, await web_user(Role.VIEWER))
    listing = await client.get("/workflows")
    assert listing.status_code == 200 and f'href="/workflows/{workflow_id}"' in listing.text
    assert "Collect &lt;b&gt;numbers&lt;/b&gt;" in listing.text
    page = await client.get(f"/workflows/{workflow_id}")
    assert page.status_code == 200
    assert re.findall(r'data-step="([a-z_]+)"', page.text) == ["collect", "file"]
    assert page.text.count("<path d=") == 1  # the one `needs` edge
    assert f"http://atom.test/hooks/{workflow_id}/from_portal" in page.text
    assert len(re.findall(r'<time datetime="[^"]+T02:00:00', page.text)) == 5  # next fire times of 0 2 * * *
    assert "s3cret" not in page.text
    assert 'name="source"' not in page.text and "Run now" not in page.text
    csrf = await page_csrf(client, f"/workflows/{workflow_id}")
    forged = await client.post(f"/workflows/{workflow_id}", data={"csrf_token": csrf, "source": SOURCE})
    assert forged.status_code == 403
    assert (await client.post(f"/workflows/{workflow_id}/run", data={"csrf_token": csrf})).status_code == 403
    assert (await client.get("/workflows/no-such-workflow")).status_code == 404


async def test_saving_a_typo_shows_the_problem_at_its_line_and_keeps_the_text(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings, wf_engine: StepRunner
) -> None:
    workflow_id = await _workflow(db, settings, wf_engine)
    await sign_in(client, await web_user(Role.OPERATOR))
    csrf = await page_csrf(client, f"/workflows/{workflow_id}")
    typo = SOURCE.replace("needs: [collect]", "needs: [colect]")
    line = typo.splitlines().index("    needs: [colect]") + 1
    saved = await client.post(f"/workflows/{workflow_id}", data={"csrf_token": csrf, "source": typo})
    assert saved.status_code == 422
    assert re.search(rf"<li data-line=\"{line}\">Line {line}: [^<]*needs[^<]*colect", saved.text), saved.text
    assert "needs: [colect]" in saved.text  # the user's text is kept
    async with db.session_scope() as s:
        assert (await workflows_service.get_workflow(session=s, ref=workflow_id)).current_version == 1

    validated = await client.post(
        "/api/workflows/validate", json={"source": typo}, headers={"X-CSRF-Token": csrf}
    )  # what the editor calls as you type
    assert validated.status_code == 200 and validated.json()["problems"][0]["line"] == line

    fixed = await client.post(f"/workflows/{workflow_id}", data={"csrf_token": csrf, "source": SOURCE + "\n"})
    assert fixed.status_code == 303 and fixed.headers["location"].endswith("?flash=workflow_saved")
    async with db.session_scope() as s:
        assert (await workflows_service.get_workflow(session=s, ref=workflow_id)).current_version == 2


async def test_run_now_opens_the_runs_timeline(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings, wf_engine: StepRunner
) -> None:
    workflow_id = await _workflow(db, settings, wf_engine)
    await sign_in(client, await web_user(Role.OPERATOR))
    csrf = await page_csrf(client, f"/workflows/{workflow_id}")
    bad = await client.post(f"/workflows/{workflow_id}/run", data={"csrf_token": csrf, "inputs": "[1, 2"})
    assert bad.status_code == 422 and "Not valid JSON" in bad.text and "[1, 2" in bad.text
    started = await client.post(f"/workflows/{workflow_id}/run", data={"csrf_token": csrf, "inputs": ""})
    assert started.status_code == 303
    run_id = re.fullmatch(r"/workflow-runs/([A-Za-z0-9-]+)\?flash=run_started", started.headers["location"])
    assert run_id is not None
    await wait_run(db, run_id.group(1))
    page = await client.get(f"/workflow-runs/{run_id.group(1)}")
    assert page.status_code == 200
    assert re.findall(r'<li data-step="([a-z_]+)" data-status="([a-z]+)"', page.text) == [
        ("collect", "succeeded"),
        ("file", "succeeded"),
    ]
    assert "&#34;got&#34;: 1" in page.text or "&quot;got&quot;: 1" in page.text  # the step's input, shown
    listed = await client.get("/workflow-runs?status=succeeded")
    assert f"/workflow-runs/{run_id.group(1)}" in listed.text
    assert f"/workflow-runs/{run_id.group(1)}" not in (await client.get("/workflow-runs?status=failed")).text
    assert (await client.get("/workflow-runs/nope")).status_code == 404
