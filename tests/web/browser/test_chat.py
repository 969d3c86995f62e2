"""Chat in Chromium: the answer streams in as the model writes it, rendered as markdown (elements, never
HTML); a tool call shows its governance outcome inline, and an INTERN's call becomes a proposal linked
to the inbox; cancel stops a running answer."""

from __future__ import annotations

from typing import Any

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from tests.chat.conftest import WatchedOpenAIServer, agent_named, chat_app, llm_server
from tests.support.llm_servers import ScriptedToolCall, text_reply, tool_reply
from tests.web.browser.conftest import PageAs, check_a11y, csp_violations, shot

__all__ = ["chat_app", "llm_server"]  # fixtures: the scripted OpenAI-wire server as the app's provider


async def _open_chat(page: Any, live_url: str, agent_label: str) -> None:
    await page.goto("/chat")
    await page.get_by_label("Agent").select_option(label=agent_label)
    await page.get_by_role("button", name="Start chatting").click()
    await page.wait_for_url(f"{live_url}/chat/*")


async def test_tokens_stream_in_and_an_interns_call_becomes_a_linked_proposal(
    chat_app: Any, page_as: PageAs, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, live_url: str
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "lead")
    intern_id = await agent_named(db, settings, MaturityLevel.INTERN, "junior")
    # The answer stalls after its first two pieces (chunk 1 is the role): the page shows them before the rest.
    llm_server.queue(text_reply("**Hel", "lo** there", "\n\n- one\n- two", stall_after=3, stall_for=8))
    view = await page_as(Role.OPERATOR)
    page = view.page
    await _open_chat(page, live_url, "lead (autonomous)")
    await page.get_by_label("Message").fill("hello")
    await page.get_by_role("button", name="Send").click()

    answer = page.locator(".msg-assistant").last
    await page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('.msg-assistant')].pop();"
        " return a && a.dataset.state === 'streaming' && a.querySelector('.text').textContent.includes('lo** there'); }"
    )
    assert "one" not in (await answer.locator(".text").text_content() or "")  # not yet: the model is stalled
    await page.locator('.msg-assistant[data-state="completed"]').wait_for(timeout=45000)
    assert await answer.locator(".text strong").text_content() == "Hello"  # markdown, as elements
    assert await answer.locator(".text li").all_text_contents() == ["one", "two"]
    await check_a11y(page)
    await shot(page, "chat-streamed")

    delegate = '{"agent": "junior", "task": "compute 6*7"}'
    llm_server.queue(
        tool_reply(ScriptedToolCall("delegate_to_agent", [delegate], id="call_lead")),
        tool_reply(ScriptedToolCall("calculate", ['{"expression": "6*7"}'], id="call_junior")),
        text_reply("My calculation waits for approval."),
        text_reply("Junior's calculation waits for a person."),
    )
    await page.get_by_label("Message").fill("ask junior for 6*7")
    await page.get_by_role("button", name="Send").click()
    await page.locator('.msg-assistant[data-state="completed"]').nth(1).wait_for(timeout=45000)
    second = page.locator(".msg-assistant").nth(1)
    assert "allowed" in (await second.locator('[data-call="call_lead"]').text_content() or "")
    link = second.get_by_role("link", name="see the proposal")
    href = await link.get_attribute("href")
    assert href is not None and href.startswith("/proposals/")
    await shot(page, "chat-proposal")
    await link.click()
    await page.wait_for_url(f"{live_url}{href}")
    assert "junior" in (await page.locator("main").text_content() or "")

    # History: the conversation is listed and reopening it shows what was said.
    await page.goto("/chat")
    history = page.get_by_role("link", name="Chat with lead")
    history_href = await history.get_attribute("href")
    await history.click()
    await page.wait_for_url(f"{live_url}{history_href}")  # the messages are read from the reopened page
    assert await page.locator(".msg-user .text").all_text_contents() == ["hello", "ask junior for 6*7"]
    assert await page.locator(".msg-assistant .text strong").first.text_content() == "Hello"
    assert intern_id
    assert csp_violations(view.console) == []


async def test_cancel_stops_a_running_answer(
    chat_app: Any, page_as: PageAs, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, live_url: str
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "slowpoke")
    llm_server.queue(text_reply("Thinking", " very", " slowly", stall_after=2, stall_for=60))
    view = await page_as(Role.OPERATOR, width=375, height=800)
    page = view.page
    await _open_chat(page, live_url, "slowpoke (autonomous)")
    await page.get_by_label("Message").fill("take your time")
    await page.get_by_role("button", name="Send").click()
    await page.wait_for_function(
        "() => { const a = document.querySelector('.msg-assistant'); return a && a.textContent.includes('Thinking'); }"
    )
    await page.get_by_role("button", name="Cancel").click()
    await page.locator('.msg-assistant:not([data-state="streaming"])').wait_for(timeout=10000)
    assert await page.locator(".msg-assistant").get_attribute("data-state") == "cancelled"
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 375
    await check_a11y(page)
    await shot(page, "chat-cancelled-375")
    assert csp_violations(view.console) == []
