"""XSS payloads in agent names, chat messages (the person's and the model's), workflow descriptions and
step outputs never execute on the pages that show them: no payload element appears in the DOM, no
script runs (a marker stays unset), and the CSP never had to refuse anything (nothing reached it)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from atom.agents.models import Agent
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.workflows import app as workflows_app
from atom.workflows.runner import StepRunner
from tests.chat.conftest import WatchedOpenAIServer, chat_app, llm_server
from tests.support.agents import make_agent
from tests.support.llm_servers import text_reply
from tests.web.browser.conftest import PageAs, csp_violations
from tests.workflows.conftest import make_workflow, start, wait_run

__all__ = ["chat_app", "llm_server"]

PAYLOADS = [
    "<img src=x onerror=\"window.__xss='img'\">",
    "<script>window.__xss='script'</script>",
    '"><svg onload="window.__xss=\'svg\'">',
    "</textarea><iframe srcdoc=\"<script>parent.__xss='iframe'</script>\"></iframe>",
    "[click](javascript:window.__xss='link') **<b onmouseover=\"window.__xss='b'\">bold</b>**",
]
ALL = " ".join(PAYLOADS)


@pytest.fixture
async def wf_engine(app: FastAPI, settings: Settings, db: Database) -> AsyncIterator[StepRunner]:
    runner = StepRunner(db=db, settings=settings)
    started = await workflows_app.start(runner, scheduler=False)
    app.state.workflow_engine = runner
    yield runner
    await workflows_app.stop(started)


async def _clean(page: Any) -> None:
    injected = await page.evaluate(
        "() => document.querySelectorAll('img[src=x], main script:not([src]), svg[onload], iframe, b[onmouseover],"
        ' a[href^="javascript"]\').length'
    )
    assert injected == 0
    assert await page.evaluate("() => window.__xss === undefined")


async def test_payloads_never_execute_on_chat_workflow_run_and_supervision_pages(
    chat_app: Any, page_as: PageAs, llm_server: WatchedOpenAIServer, db: Database, settings: Settings,
    wf_engine: StepRunner, live_url: str,
) -> None:  # fmt: skip
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="xss-agent")
    async with db.session_scope() as s:  # the API refuses such names; a row from elsewhere must still be safe
        await s.execute(update(Agent).where(Agent.id == agent.id).values(name=PAYLOADS[0]))
    llm_server.queue(text_reply(*PAYLOADS))
    view = await page_as(Role.ADMIN)
    page = view.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))

    await page.goto("/chat")
    await page.get_by_label("Agent").select_option(value=agent.id)
    await page.get_by_role("button", name="Start chatting").click()
    await page.wait_for_url(f"{live_url}/chat/*")
    await page.get_by_label("Message").fill(ALL)
    await page.get_by_role("button", name="Send").click()
    await page.locator('.msg-assistant[data-state="completed"]').wait_for(timeout=45000)
    assert "window.__xss='script'" in (await page.locator(".msg-assistant .text").text_content() or "")
    await _clean(page)
    await page.reload()  # the history, rendered by the server
    assert PAYLOADS[1] in (await page.locator(".msg-user .text").text_content() or "")  # as text (markdown aside)
    await _clean(page)
    await page.goto("/chat")
    await _clean(page)

    wf_source = (
        "name: xss-flow\nagent: " + agent.id + "\ndescription: " + json.dumps(ALL[:500]) + "\nsteps:\n"
        "  - id: echo\n    action: noop\n    with: {note: " + json.dumps(ALL) + "}\n"
    )
    workflow = await make_workflow(db, wf_engine, wf_source)
    started = await start(wf_engine, workflow)
    assert started.run_id is not None
    await wait_run(db, started.run_id)
    for path in ("/workflows", f"/workflows/{workflow.id}", "/workflow-runs", f"/workflow-runs/{started.run_id}"):
        await page.goto(path)
        await _clean(page)
    await page.locator('#run[data-live-state="live"]').wait_for(timeout=20000)  # redrawn by run.js
    await page.locator('#timeline li[data-step="echo"] details').first.click()
    assert PAYLOADS[1] in (await page.locator("#timeline").text_content() or "")
    await _clean(page)
    await page.goto("/supervision")
    await _clean(page)
    await page.goto("/llm")
    assert PAYLOADS[0] in (await page.locator("main").text_content() or "")  # the agent's name, as text
    await _clean(page)
    assert dialogs == []
    assert csp_violations(view.console) == []
