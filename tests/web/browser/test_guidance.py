"""Guidance in Chromium: a chat run's progress advances live (step, what / why / next) while the agent
waits for a permission a person grants in the inbox, then shows what to do about its failed call, which
the person marks; a decision nobody answers leaves the inbox and Home live and the agent gets its default."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from tests.chat.conftest import WatchedOpenAIServer, agent_named, chat_app, llm_server
from tests.conftest import MakeUser
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply
from tests.web.browser.conftest import PageAs, check_a11y, csp_violations, shot

__all__ = ["chat_app", "llm_server"]

COUNT_IS = "(n) => document.querySelector('[data-count=\"pending_requests\"]').textContent === n"


def _tool_result(server: WatchedOpenAIServer) -> str:
    """What the agent was told by its first tool call (the second model request carries it)."""
    return str(next(m for m in server.requests[1].body["messages"] if m["role"] == "tool")["content"])


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"chat_max_steps": 4, "guidance_request_recheck_s": 0.5, "web_live_recheck_s": 1.0}


async def test_a_runs_progress_advances_live_while_a_person_grants_its_permission(
    chat_app: Any, page_as: PageAs, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, live_url: str
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "archivist")
    ask = '{"action": "archive last year\'s logs", "reason": "the disk is 95% full", "timeout_s": 50}'
    llm_server.queue(
        tool_reply(ScriptedToolCall("request_permission", [ask], id="call_ask")),
        tool_reply(ScriptedToolCall("calculate", ['{"expr": "95-80"}'], id="call_calc")),
        text_reply("Archived; the disk has room again."),
    )
    view = await page_as(Role.APPROVER)
    page = view.page
    await page.goto("/chat")
    await page.get_by_label("Agent").select_option(label="archivist (autonomous)")
    await page.get_by_role("button", name="Start chatting").click()
    await page.wait_for_url(f"{live_url}/chat/*")
    panel = page.locator("#progress")
    assert await panel.is_hidden()  # nothing runs yet
    await page.get_by_label("Message").fill("make room on the disk")
    await page.get_by_role("button", name="Send").click()

    # Step 1: the agent waits for a person; the panel says what, why and what comes next.
    what = panel.locator('[data-p="what"]')
    await page.wait_for_function(
        "() => document.querySelector('#progress [data-p=\"what\"]').textContent.startsWith('Waiting for a person')"
    )
    assert await what.text_content() == "Waiting for a person to answer: “May the agent archive last year's logs?”"
    assert await panel.locator('[data-p="count"]').text_content() == "Step 1 of at most 4 · 0%"
    assert "“deny”" in (await panel.locator('[data-p="why"]').text_content() or "")
    await check_a11y(page)
    await shot(page, "guidance-chat-waiting")

    # The inbox, in another tab: an approver grants it.
    inbox = await page.context.new_page()
    await inbox.goto("/requests")
    item = inbox.locator("li.request").first
    assert await item.locator("h3").text_content() == "May the agent archive last year's logs?"
    assert "the disk is 95% full" in (await item.text_content() or "")
    await check_a11y(inbox)
    await shot(inbox, "guidance-inbox")
    await item.get_by_label("Note for the agent (optional)").fill("keep the last month")
    await item.get_by_role("button", name="allow").click()
    await inbox.wait_for_url(f"{live_url}/requests?flash=request_answered")
    assert await inbox.locator("li.request").count() == 0

    # Back in the chat: the run went on by itself and finished; its failed call says what to do.
    await page.wait_for_function("() => document.querySelector('#progress').dataset.status === 'completed'")
    assert await what.text_content() == "Finished in 3 steps"
    assert await panel.locator('[data-p="count"]').text_content() == "Step 3 of 3 · 100%"
    assert await panel.locator('[data-p="bar"]').get_attribute("value") == "100"
    card = panel.locator('article.guidance[data-category="invalid_input"]')
    assert "Invalid input: calculate" in (await card.locator("h3").text_content() or "")
    suggested = card.locator("section.fix.suggested")
    assert await suggested.get_attribute("data-resolution") == "fix_input"
    assert "The agent can fix it" in (await suggested.locator("h4").text_content() or "")
    sent = json.loads(_tool_result(llm_server))
    assert sent["granted"] is True and "keep the last month" in sent["message"]
    await check_a11y(page)
    await shot(page, "guidance-chat-finished")

    await suggested.get_by_role("button", name="It worked").click()
    await page.wait_for_url(f"{live_url}/agent-runs/*?flash=outcome_recorded")
    assert await page.locator('section.fix[data-resolution="fix_input"] .marked').text_content() == (
        "Marked: it worked."
    )
    assert "Worked 1 time before" in (
        await page.locator('section.fix[data-resolution="fix_input"]').text_content() or ""
    )
    await page.get_by_label("Side by side").check()
    await page.get_by_role("button", name="Save layout").click()
    await page.locator(".views.layout-side_by_side").wait_for()
    await check_a11y(page)
    await shot(page, "guidance-agent-run")
    # The run's canvases are a view too (live; this run presented none): beside progress and steps.
    empty = page.locator(".view-canvas .canvases p.hint")
    await empty.wait_for()
    assert await empty.text_content() == "This run has not presented anything yet."
    await page.get_by_label("Canvases beside").check()
    await page.get_by_role("button", name="Save layout").click()
    await page.locator(".views.layout-canvas_beside").wait_for()
    progress_box = await page.locator(".view-progress").bounding_box()
    steps_box = await page.locator(".view-timeline").bounding_box()
    canvas_box = await page.locator(".view-canvas").bounding_box()
    assert progress_box and steps_box and canvas_box
    assert canvas_box["x"] > progress_box["x"] + progress_box["width"] - 1 and steps_box["x"] == progress_box["x"]
    assert canvas_box["y"] == progress_box["y"] and steps_box["y"] > progress_box["y"]
    await check_a11y(page)
    await shot(page, "guidance-agent-run-canvas-beside")
    assert csp_violations(view.console) == []


async def test_a_decision_nobody_answers_times_out_to_its_default_live(
    chat_app: Any,
    page_as: PageAs,
    llm_server: WatchedOpenAIServer,
    db: Database,
    settings: Settings,
    live_url: str,
    make_user: MakeUser,
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "shipper")
    caller = await make_user("operator")
    ask = '{"question": "Ship the order today?", "options": ["ship", "hold"], "default": "hold", "timeout_s": 8}'
    llm_server.queue(
        tool_reply(ScriptedToolCall("request_decision", [ask], id="call_ask")), text_reply("Holding the order.")
    )
    view = await page_as(Role.OPERATOR, width=375, height=800)
    page = view.page
    home = await page.context.new_page()
    await home.goto("/")
    count = home.locator('[data-count="pending_requests"]')
    assert await count.text_content() == "0"
    await page.goto("/requests")
    assert await page.get_by_text("Nothing is waiting for you.").is_visible()

    async with httpx.AsyncClient(base_url=live_url, timeout=30) as client:
        run = asyncio.create_task(
            client.post("/api/chat/execute", json={"agent": "shipper", "task": "ship?"}, headers=caller.headers)
        )
        # The request appears in the open inbox and on Home without reloading.
        item = page.locator("li.request").first
        await item.wait_for(timeout=15000)
        assert await item.locator("h3").text_content() == "Ship the order today?"
        assert "the default “hold” applies" in (await item.locator(".meta").text_content() or "")
        await home.wait_for_function(
            "() => document.querySelector('[data-count=\"pending_requests\"]').textContent === '1'"
        )
        assert await page.evaluate("() => document.documentElement.scrollWidth") <= 375
        await check_a11y(page)
        await shot(page, "guidance-inbox-375")
        # Nobody answers: it times out, leaves the inbox and Home, and the agent goes on with the default.
        await page.locator("li.request").first.wait_for(state="detached", timeout=15000)
        await home.wait_for_function(
            "() => document.querySelector('[data-count=\"pending_requests\"]').textContent === '0'"
        )
        response = await run
    assert response.status_code == 200 and response.json()["status"] == "completed"
    result = json.loads(_tool_result(llm_server))
    assert (result["answer"], result["timed_out"]) == ("hold", True)
    await page.reload()
    row = page.locator("table.list tbody tr").first
    assert "timed out" in (await row.text_content() or "") and "hold (the default)" in (await row.text_content() or "")
    assert csp_violations(view.console) == []
