"""LLM and Chat pages over HTTP (both databases): the provider key is write-only (never rendered, not even
on an invalid form), test and remove, usage per agent and day with its chart, budgets; roles; a chat
session is its author's (another user gets the 404 page)."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.llm import service as llm_service
from atom.llm.providers.base import Usage
from atom.security.models import Role
from tests.support.agents import make_agent
from tests.support.llm_servers import OpenAIServer, text_reply
from tests.web.conftest import MakeWebUser, page_csrf, sign_in

KEY = "sk-web-very-secret-key-123"


async def test_a_provider_key_goes_in_and_never_comes_out(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    await sign_in(client, await web_user(Role.ADMIN))
    csrf = await page_csrf(client, "/llm")
    form = {"csrf_token": csrf, "kind": "openai", "models": "m1", "api_key": KEY, "priority": "100"}
    invalid = await client.post("/llm/providers", data={**form, "name": "Bad Name!", "base_url": "http://x"})
    assert invalid.status_code == 422 and 'aria-describedby="e-name"' in invalid.text
    assert KEY not in invalid.text and 'value="Bad Name!"' in invalid.text  # input kept, key not echoed
    async with OpenAIServer(api_key=KEY) as server:
        server.queue(text_reply("pong"))
        added = await client.post("/llm/providers", data={**form, "name": "local", "base_url": server.base_url})
        assert added.status_code == 303 and added.headers["location"] == "/llm?flash=provider_added"
        page = await client.get("/llm")
        assert 'data-provider="local"' in page.text and KEY not in page.text
        tested = await client.post("/llm/providers/local/test", data={"csrf_token": csrf})
        assert tested.status_code == 200 and re.search(r"Test of local \(m1\):\s+healthy", tested.text)
        assert server.last_request.headers["authorization"] == f"Bearer {KEY}"  # the stored key was used
    removed = await client.post("/llm/providers/local/delete", data={"csrf_token": csrf})
    assert removed.status_code == 303
    assert 'data-provider="local"' not in (await client.get("/llm")).text


async def test_usage_per_agent_and_day_budgets_and_roles(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN, name="spender")
    async with db.session_scope() as s:
        for _ in range(3):
            await llm_service.record_usage(
                session=s,
                settings=settings,
                provider="p",
                model="gpt-4o-mini",
                usage=Usage(1000, 500),
                agent_id=agent.id,
            )
    await sign_in(client, await web_user(Role.VIEWER))
    page = await client.get("/llm")
    assert page.status_code == 200
    row = re.search(
        r"<td data-label=\"Agent\">spender</td>\s*<td data-label=\"Calls\">3</td>"
        r"\s*<td data-label=\"Tokens in / out\">3000 / 1500</td>",
        page.text,
    )
    assert row is not None, page.text
    heights = [float(h) for h in re.findall(r'<rect class="bar" [^>]*height="([0-9.]+)"', page.text)]
    assert len(heights) == 14 and heights[-1] > 0 and heights[:-1] == [0.0] * 13  # today's bar only
    assert "Add provider" not in page.text and "Save budget" not in page.text
    csrf = await page_csrf(client, "/llm")
    forged = await client.post("/llm/budgets", data={"csrf_token": csrf, "agent": agent.id, "daily_usd": "1"})
    assert forged.status_code == 403

    await client.post("/signout", data={"csrf_token": csrf})
    await sign_in(client, await web_user(Role.ADMIN))
    csrf = await page_csrf(client, "/llm")
    bad = await client.post("/llm/budgets", data={"csrf_token": csrf, "agent": agent.id, "daily_usd": "-2"})
    assert bad.status_code == 422 and 'value="-2"' in bad.text and 'id="e-daily_usd"' in bad.text
    saved = await client.post(
        "/llm/budgets", data={"csrf_token": csrf, "agent": agent.id, "daily_usd": "2.50", "monthly_usd": ""}
    )
    assert saved.status_code == 303
    async with db.session_scope() as s:
        state = await llm_service.budget_state(session=s, settings=settings, agent_id=agent.id)
    assert (state.daily_usd, state.monthly_usd, state.source) == (Decimal("2.5"), None, "agent")


async def test_a_chat_is_its_authors_and_a_viewer_cannot_start_one(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN, name="helper")
    await sign_in(client, await web_user(Role.OPERATOR))
    csrf = await page_csrf(client, "/chat")
    missing = await client.post("/chat", data={"csrf_token": csrf, "agent": "nope"})
    assert missing.status_code == 422 and "Choose an active agent." in missing.text
    started = await client.post("/chat", data={"csrf_token": csrf, "agent": agent.id, "title": "Quarter <close>"})
    assert started.status_code == 303
    chat_path = started.headers["location"]
    page = await client.get(chat_path)
    assert page.status_code == 200 and "Quarter &lt;close&gt;" in page.text and 'id="chat-form"' in page.text
    await client.post("/signout", data={"csrf_token": csrf})

    await sign_in(client, await web_user(Role.VIEWER))
    assert (await client.get(chat_path)).status_code == 404  # someone else's conversation
    listing = await client.get("/chat")
    assert chat_path not in listing.text and "Start chatting" not in listing.text
    csrf = await page_csrf(client, "/chat")
    assert (await client.post("/chat", data={"csrf_token": csrf, "agent": agent.id})).status_code == 403
