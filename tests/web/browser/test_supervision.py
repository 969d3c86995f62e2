"""Live supervision in Chromium: steps stream in; pause before the next step, correct its input (JSON,
validated in the page), resume, then terminate; the intervention count follows each command."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.runtime import tools as runtime_tools
from atom.runtime.tools import Tool
from atom.security.models import Role
from atom.training import interceptor, supervision
from atom.training.plan import Plan, PlanStep
from tests.support.agents import make_agent
from tests.web.browser.conftest import PageAs, check_a11y, csp_violations, shot


class NoteParams(BaseModel):
    text: str


@pytest.fixture
def gate() -> Iterator[asyncio.Semaphore]:
    """A complexity-3 tool that waits for the test to let each call finish."""
    released = asyncio.Semaphore(0)

    async def held_note(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, NoteParams)
        await released.acquire()
        return {"written": params.text}

    runtime_tools.current().register(
        Tool("test_web_held_note", 3, "test: a note, held until the test lets go", NoteParams, held_note)
    )
    yield released
    runtime_tools.current().unregister("test_web_held_note")


async def test_pause_correct_resume_and_terminate_a_supervised_run(
    page_as: PageAs, db: Database, settings: Settings, gate: asyncio.Semaphore, live_url: str
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED, name="careful")
    steps = [PlanStep(action="test_web_held_note", params={"text": t}) for t in ("one", "two", "three")]
    routed = await interceptor.intercept(
        db=db,
        settings=settings,
        agent_id=agent.id,
        trigger=interceptor.TriggerInfo(source="schedule", payload={}),
        plan=Plan(steps=steps),
    )
    session_id = routed.supervision_session_id
    assert session_id is not None
    view = await page_as(Role.OPERATOR)
    page = view.page
    await page.goto("/supervision?status=queued")
    await page.get_by_role("link", name="careful").click()
    await page.wait_for_url(f"{live_url}/supervision/{session_id}")
    first = page.locator('#sv-steps li[data-index="0"]')
    await first.wait_for(timeout=20000)  # connecting started the queued run; step 1 is running (held)

    await page.get_by_role("button", name="Pause").click()
    await page.wait_for_function("() => document.getElementById('sv-interventions').textContent === '1'")
    gate.release()  # step 1 ends; the run stops before step 2
    await page.locator('#sv-steps li[data-index="0"][data-status="done"]').wait_for(timeout=20000)
    await page.wait_for_function("() => document.getElementById('sv-status').textContent === 'paused'")

    field = page.get_by_label("Next step's input (JSON object)")
    await field.fill('{"text": "two, corrected"')  # not JSON: refused in the page, nothing sent
    await page.get_by_role("button", name="Correct the next step").click()
    assert "Not valid JSON" in (await page.locator("#e-correction").text_content() or "")
    assert await page.locator("#sv-interventions").text_content() == "1"
    await field.fill('{"text": "two, corrected"}')
    await page.get_by_role("button", name="Correct the next step").click()
    await page.wait_for_function("() => document.getElementById('sv-interventions').textContent === '2'")
    await check_a11y(page)
    await shot(page, "supervision-paused")

    await page.get_by_role("button", name="Resume").click()
    second = page.locator('#sv-steps li[data-index="1"]')
    await second.wait_for(timeout=20000)
    assert "two, corrected" in (await second.text_content() or "")
    await page.get_by_role("button", name="Terminate").click()
    await page.wait_for_function("() => document.getElementById('sv-interventions').textContent === '3'")
    gate.release()
    await page.wait_for_function("() => document.getElementById('sv-status').textContent === 'terminated'")
    await supervision.wait_for_run(session_id)
    async with db.session_scope() as s:
        row = await supervision.get(session=s, session_id=session_id)
    assert (row.status, row.interventions) == ("terminated", 3)
    assert [step["params"]["text"] for step in row.steps] == ["one", "two, corrected"]  # step 3 never ran
    await shot(page, "supervision-terminated")
    assert csp_violations(view.console) == []
