"""Guidance pages over HTTP (both databases): the requests inbox answered with a CSRF form (a permission
only by an approver), Home's count of waiting requests, a workflow run's progress panel with its error
guidance marked by a form, and the run page's layout remembered per person; a run's canvases are one of
its page's views (workflow run and agent run), live, arranged beside the progress when the person says."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from atom.canvas import service as canvas_service
from atom.canvas.coordination import Editor
from atom.canvas.models import CanvasKind
from atom.chat import service as chat_service
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.guidance import requests
from atom.guidance.schemas import RequestKind
from atom.security.models import Role
from atom.workflows import app as workflows_app
from atom.workflows.runner import StepRunner
from tests.chat.conftest import WatchedOpenAIServer, agent_named, chat_app, llm_server
from tests.conftest import MakeUser
from tests.support.agents import make_agent
from tests.support.integration_servers import HttpServer
from tests.support.live_server import serving
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply
from tests.web.conftest import MakeWebUser, page_csrf, sign_in
from tests.workflows.conftest import http_api, make_workflow, start, wait_run

__all__ = ["chat_app", "http_api", "llm_server"]


@pytest.fixture
async def wf_engine(app: FastAPI, settings: Settings, db: Database) -> AsyncIterator[StepRunner]:
    runner = StepRunner(db=db, settings=settings)
    started = await workflows_app.start(runner, scheduler=False)
    app.state.workflow_engine = runner
    yield runner
    await workflows_app.stop(started)


async def _ask(db: Database, agent_id: str, kind: RequestKind, question: str) -> str:
    options = requests.PERMISSION_OPTIONS if kind is RequestKind.PERMISSION else ("now", "later")
    default = "deny" if kind is RequestKind.PERMISSION else "later"
    async with db.session_scope() as s:
        row = await requests.create(
            session=s, ask=requests.Ask(kind, agent_id, None, question, options, default, timeout_s=600)
        )
        return row.id


async def test_the_inbox_lists_requests_and_a_person_answers_with_the_form(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="asker")
    decision = await _ask(db, agent.id, RequestKind.DECISION, "Send the <b>report</b> now?")
    permission = await _ask(db, agent.id, RequestKind.PERMISSION, "May the agent delete old files?")
    await sign_in(client, await web_user(Role.OPERATOR))

    home = await client.get("/")
    assert 'data-count="pending_requests">2<' in home.text and 'href="/requests"' in home.text
    page = await client.get("/requests")
    assert page.status_code == 200
    assert "Send the &lt;b&gt;report&lt;/b&gt; now?" in page.text  # autoescaped
    assert f'action="/requests/{decision}/answer"' in page.text
    assert f'action="/requests/{permission}/answer"' not in page.text  # an approver answers a permission
    assert "An approver answers a permission." in page.text
    csrf = await page_csrf(client, "/requests")

    no_token = await client.post(f"/requests/{decision}/answer", data={"answer": "now"})
    assert no_token.status_code == 403
    wrong = await client.post(f"/requests/{decision}/answer", data={"csrf_token": csrf, "answer": "never"})
    assert wrong.status_code == 422 and "is not one of the options" in wrong.text
    refused = await client.post(f"/requests/{permission}/answer", data={"csrf_token": csrf, "answer": "allow"})
    assert refused.status_code == 403
    done = await client.post(f"/requests/{decision}/answer", data={"csrf_token": csrf, "answer": "now", "note": "go"})
    assert done.status_code == 303 and done.headers["location"] == "/requests?flash=request_answered"
    after = await client.get("/requests?flash=request_answered")
    assert "Answered. The agent goes on with your answer." in after.text
    assert f'action="/requests/{decision}/answer"' not in after.text and ">answered<" in after.text
    async with db.session_scope() as s:
        row = await requests.get(session=s, request_id=decision)
        assert (row.status, row.answer, row.note) == ("answered", "now", "go")
        assert (await requests.get(session=s, request_id=permission)).status == "pending"
    assert 'data-count="pending_requests">1<' in (await client.get("/")).text


async def test_a_viewer_sees_requests_but_cannot_answer(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="asker")
    decision = await _ask(db, agent.id, RequestKind.DECISION, "Now?")
    await sign_in(client, await web_user(Role.VIEWER))
    page = await client.get("/requests")
    assert "Now?" in page.text and "An operator answers." in page.text
    csrf = await page_csrf(client, "/requests")
    refused = await client.post(f"/requests/{decision}/answer", data={"csrf_token": csrf, "answer": "now"})
    assert refused.status_code == 403


async def test_a_failed_runs_page_shows_its_guidance_and_the_layout_is_remembered(
    app: FastAPI,
    client: httpx.AsyncClient,
    web_user: MakeWebUser,
    db: Database,
    settings: Settings,
    wf_engine: StepRunner,
    http_api: tuple[HttpServer, str],
) -> None:
    _, url = http_api
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="wf-bot")
    source = (
        "name: bad-call\nagent: wf-bot\nsteps:\n  - id: call\n    action: http_request\n"
        f'    with: {{url: "{url}/status/400"}}\n'
    )
    workflow = await make_workflow(db, wf_engine, source)
    started = await start(wf_engine, workflow)
    assert started.run_id is not None
    view = await wait_run(db, started.run_id)
    step_id = view.steps["call"].id
    operator = await web_user(Role.OPERATOR)
    await sign_in(client, operator)
    path = f"/workflow-runs/{started.run_id}"
    page = await client.get(path)
    assert page.status_code == 200
    assert 'data-progress-live="/live/guidance/workflow-runs/' in page.text
    assert "Failed at “call”" in page.text and "Invalid input: call" in page.text
    assert 'class="views layout-stacked"' in page.text  # nobody chose yet: the default
    assert page.text.count('name="resolution_id"') == 2  # both resolutions can be marked

    csrf = await page_csrf(client, path)
    form = {
        "csrf_token": csrf,
        "subject_type": "workflow_step",
        "subject_id": step_id,
        "resolution_id": "fix_definition",
        "worked": "yes",
        "back": path,
    }
    marked = await client.post("/guidance/outcomes", data=form)
    assert marked.status_code == 303 and marked.headers["location"] == f"{path}?flash=outcome_recorded"
    again = await client.get(path)
    assert "Marked: it worked." in again.text and again.text.count('name="resolution_id"') == 1
    bogus = await client.post("/guidance/outcomes", data={**form, "resolution_id": "Nope!"})
    assert bogus.status_code == 422
    offsite = await client.post("/guidance/outcomes", data={**form, "resolution_id": "fix_input", "back": "//evil"})
    assert offsite.headers["location"] == "/?flash=outcome_recorded"

    arranged = await client.post(
        "/guidance/layouts/workflow_run", data={"csrf_token": csrf, "layout": "side_by_side", "back": path}
    )
    assert arranged.status_code == 303
    assert 'class="views layout-side_by_side"' in (await client.get(path)).text
    bad = await client.post("/guidance/layouts/workflow_run", data={"csrf_token": csrf, "layout": "diagonal"})
    assert bad.status_code == 422
    # Remembered per person: someone else still gets the default.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://atom.test") as other:
        await sign_in(other, await web_user(Role.VIEWER))
        assert 'class="views layout-stacked"' in (await other.get(path)).text
        viewer_mark = await other.post("/guidance/outcomes", data={**form, "csrf_token": await page_csrf(other, path)})
        assert viewer_mark.status_code == 403


async def test_the_layout_api_remembers_each_persons_choice(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    one, two = await make_user("viewer"), await make_user("viewer")
    assert (await client.get("/api/guidance/layouts/agent_run", headers=one.headers)).json() == {
        "view": "agent_run",
        "layout": "stacked",
        "remembered": False,
    }
    put = await client.put("/api/guidance/layouts/agent_run", json={"layout": "side_by_side"}, headers=one.headers)
    assert put.status_code == 200 and put.json()["remembered"] is True
    assert (await client.get("/api/guidance/layouts/agent_run", headers=one.headers)).json()["layout"] == "side_by_side"
    assert (await client.get("/api/guidance/layouts/agent_run", headers=two.headers)).json()["remembered"] is False
    bad = await client.put("/api/guidance/layouts/agent_run", json={"layout": "tiles"}, headers=one.headers)
    assert bad.status_code == 422 and bad.json()["error"]["details"]["fields"][0]["field"] == "body.layout"
    assert (await client.get("/api/guidance/layouts/desk", headers=one.headers)).status_code == 422


async def _first_update(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == "update":
                return dict(json.loads(line[len("data: ") :]))
    raise AssertionError("no update")


async def _arrange(client: httpx.AsyncClient, view: str, path: str, layout: str) -> str:
    csrf = await page_csrf(client, path)
    arranged = await client.post(f"/guidance/layouts/{view}", data={"csrf_token": csrf, "layout": layout, "back": path})
    assert arranged.status_code == 303
    return (await client.get(path)).text


CHART_STEP = """name: weekly-chart
agent: chart-bot
steps:
  - id: chart
    action: present_chart
    with:
      title: Tickets this week
      chart_type: pie
      labels: [open, closed]
      series: [{values: [3, 9]}]
"""


async def test_a_workflow_runs_canvases_are_a_view_of_its_page(
    app: FastAPI, web_user: MakeWebUser, db: Database, settings: Settings, wf_engine: StepRunner
) -> None:
    await make_agent(db, settings, MaturityLevel.INTERN, name="chart-bot")
    workflow = await make_workflow(db, wf_engine, CHART_STEP)
    started = await start(wf_engine, workflow)
    assert started.run_id is not None
    await wait_run(db, started.run_id, status="succeeded")
    path = f"/workflow-runs/{started.run_id}"
    async with serving(app) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
        await sign_in(client, await web_user(Role.VIEWER))
        page = (await client.get(path)).text
        assert 'class="views layout-stacked"' in page
        assert f'data-canvas-live="/live/workflow-runs/{started.run_id}/canvases"' in page
        assert page.index('class="view view-progress"') < page.index('class="view view-timeline"')
        assert page.index('class="view view-timeline"') < page.index('class="view view-canvas"')
        assert 'value="canvas_beside"' in page
        live_url = f"/live/workflow-runs/{started.run_id}/canvases"
        shown = (await asyncio.wait_for(_first_update(client, live_url), 20))["canvases"]
        assert [(c["kind"], c["title"], c["owner"]) for c in shown] == [("chart", "Tickets this week", "chart-bot")]
        assert 'class="views layout-canvas_beside"' in await _arrange(client, "workflow_run", path, "canvas_beside")
        assert (
            await client.get("/live/workflow-runs/0190a0a0-0000-7000-8000-000000000000/canvases")
        ).status_code == 404


async def test_an_agent_runs_canvases_are_a_view_of_its_page(
    chat_app: Any, web_user: MakeWebUser, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    make_user: MakeUser,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.INTERN, "charter")
    chart = {"title": "Calls", "chart_type": "bar", "labels": ["Mon"], "series": [{"name": "in", "values": [4]}]}
    llm_server.queue(tool_reply(ScriptedToolCall("present_chart", [json.dumps(chart)])), text_reply("Shown."))
    operator = await web_user(Role.OPERATOR)
    async with serving(chat_app) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
        admin = await make_user(Role.ADMIN)
        done = await client.post(
            "/api/chat/execute", json={"agent": "charter", "task": "chart it"}, headers=admin.headers
        )
        execution = done.json()["id"]
        await sign_in(client, operator)
        path = f"/agent-runs/{execution}"
        page = (await client.get(path)).text
        assert f'data-canvas-live="/live/agent-runs/{execution}/canvases"' in page
        assert 'class="views layout-stacked"' in page and 'class="view view-canvas"' in page
        shown = (await asyncio.wait_for(_first_update(client, f"/live/agent-runs/{execution}/canvases"), 20))[
            "canvases"
        ]
        assert [(c["kind"], c["title"]) for c in shown] == [("chart", "Calls")]
        assert 'class="views layout-canvas_beside"' in await _arrange(client, "agent_run", path, "canvas_beside")
    # One in a person's chat session is as private as the session: another person does not get it.
    async with db.session_scope() as sess:
        chat = await chat_service.create_session(session=sess, agent_ref="charter", user_id=operator.id)
        await canvas_service.create(
            session=sess, kind=CanvasKind.MARKDOWN, title="Private notes", content={"text": "mine"},
            editor=Editor(agent_id=chat.agent_id), session_id=chat.id, execution_id=execution,
        )  # fmt: skip
    live_url = f"/live/agent-runs/{execution}/canvases"
    async with serving(chat_app) as address:
        for person, titles in ((operator, ["Private notes", "Calls"]), (await web_user(Role.VIEWER), ["Calls"])):
            async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
                await sign_in(client, person)
                shown = (await asyncio.wait_for(_first_update(client, live_url), 20))["canvases"]
                assert [c["title"] for c in shown] == titles
