"""Workflows in Chromium: a typo shows its error at its line as you type; a run's timeline updates live
as the run moves (an approval decided elsewhere), and the page's Approve button continues a run."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.workflows import app as workflows_app
from atom.workflows import flows
from atom.workflows.runner import StepRunner
from tests.support.agents import make_agent
from tests.web.browser.conftest import PageAs, check_a11y, csp_violations, shot
from tests.workflows.conftest import make_workflow, start, wait_run, wait_step

SOURCE = """name: {name}
agent: wf-bot
steps:
  - id: quote
    action: noop
    with: {{amount: 120}}
  - id: sign_off
    type: approval
    needs: [quote]
    message: "Pay {{{{ steps.quote.output.amount }}}} EUR?"
  - id: pay
    action: noop
    needs: [sign_off]
    with: {{paid: "{{{{ steps.quote.output.amount }}}}"}}
"""


@pytest.fixture
async def wf_engine(app: FastAPI, settings: Settings, db: Database) -> AsyncIterator[StepRunner]:
    runner = StepRunner(db=db, settings=settings)
    started = await workflows_app.start(runner, scheduler=False)
    app.state.workflow_engine = runner
    yield runner
    await workflows_app.stop(started)


async def test_a_typo_is_shown_at_its_line_while_typing(
    page_as: PageAs, db: Database, settings: Settings, wf_engine: StepRunner
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="wf-bot")
    workflow = await make_workflow(db, wf_engine, SOURCE.format(name="pay-quote"))
    view = await page_as(Role.OPERATOR)
    page = view.page
    await page.goto(f"/workflows/{workflow.id}")
    assert await page.locator("svg.dag [data-step]").count() == 3
    editor = page.get_by_label("YAML")
    text = await editor.input_value()
    await editor.fill(text.replace("needs: [quote]", "needs: [qoute]"))
    line = text.splitlines().index("    needs: [quote]") + 1
    problem = page.locator(f'#problems-status li[data-line="{line}"]')
    await problem.wait_for(timeout=20000)
    assert re.match(rf"Line {line}: .*needs.*qoute", await problem.text_content() or "")
    assert await editor.get_attribute("aria-invalid") == "true"
    await check_a11y(page)
    await shot(page, "workflow-typo")
    await editor.fill(text)
    await page.locator("#problems-status .valid").wait_for(timeout=20000)
    assert csp_violations(view.console) == []


async def test_a_runs_timeline_updates_live_and_approve_continues_it(
    page_as: PageAs, db: Database, settings: Settings, wf_engine: StepRunner, live_url: str
) -> None:
    await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="wf-bot")
    first = await make_workflow(db, wf_engine, SOURCE.format(name="pay-live"))
    started = await start(wf_engine, first)
    assert started.run_id is not None
    await wait_step(db, started.run_id, "sign_off", "waiting")
    view = await page_as(Role.APPROVER, width=375, height=800)
    page = view.page
    await page.goto(f"/workflow-runs/{started.run_id}")
    await page.locator('#run[data-live-state="live"]').wait_for(timeout=20000)
    assert await page.locator('#timeline li[data-step="sign_off"]').get_attribute("data-status") == "waiting"
    await check_a11y(page)
    await shot(page, "run-waiting-375")

    # Decided elsewhere (the API, another person): the open page follows without a reload.
    approver = view.user
    await flows.approve_step(
        wf_engine, run_id=started.run_id, step_key="sign_off", approver_id=approver.id, reason=None
    )
    await page.locator('#timeline li[data-step="pay"][data-status="succeeded"]').wait_for(timeout=30000)
    # The run's end is its own change after its last step's: the page may show them one after the other.
    await page.locator("#run-status", has_text="succeeded").wait_for(timeout=30000)
    assert await page.get_by_role("button", name="Approve sign_off").count() == 0
    await shot(page, "run-succeeded-375")

    second = await start(wf_engine, first)
    assert second.run_id is not None
    await wait_step(db, second.run_id, "sign_off", "waiting")
    await page.goto(f"/workflow-runs/{second.run_id}")
    await page.get_by_role("button", name="Approve sign_off").click()
    await page.wait_for_url(f"{live_url}/workflow-runs/{second.run_id}?flash=step_approved")
    assert (await wait_run(db, second.run_id)).status == "succeeded"
    await page.locator('#timeline li[data-step="pay"][data-status="succeeded"]').wait_for(timeout=30000)
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 375
    assert csp_violations(view.console) == []
