"""The dashboard in Chromium: sign in and out, live Home counts, approving from the inbox at phone width.

Each page is checked with axe-core (zero serious violations), for Content-Security-Policy refusals
in the console, and saved as a screenshot under .artifacts/web/.
"""

from __future__ import annotations

import socket
from typing import Any

from atom.agents import service as agents_service
from atom.agents.schemas import AgentUpdate
from atom.audit import service as audit
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.main import create_app
from atom.security.models import Role
from atom.training import proposals
from tests.support.agents import make_agent
from tests.support.live_server import serving
from tests.web.browser.conftest import PageAs, check_a11y, csp_violations, shot
from tests.web.conftest import MakeWebUser, pending_proposal


async def test_sign_in_live_home_and_sign_out(page_as: PageAs, db: Database, settings: Settings, live_url: str) -> None:
    view = await page_as(Role.VIEWER)
    page = view.page
    count = page.locator('[data-count="pending_proposals"]')
    assert await count.text_content() == "0"
    await page.locator('[data-live-state="live"]').wait_for()
    await check_a11y(page)
    await shot(page, "home")

    await pending_proposal(db, settings)
    await page.wait_for_function(
        "() => document.querySelector('[data-count=\"pending_proposals\"]').textContent === '1'"
    )
    await page.get_by_role("button", name="Sign out").click()
    await page.wait_for_url(f"{live_url}/signin?flash=signed_out")
    assert await page.get_by_role("status").text_content() == "You are signed out."
    await check_a11y(page)
    await shot(page, "signed-out")
    await page.goto("/proposals")
    assert page.url == f"{live_url}/signin?next=%2Fproposals"
    assert csp_violations(view.console) == []


async def test_an_approver_approves_from_the_inbox_at_phone_width(
    page_as: PageAs, db: Database, settings: Settings, live_url: str
) -> None:
    proposal_id = await pending_proposal(db, settings, name="reporter")
    view = await page_as(Role.APPROVER, width=375, height=800)
    page = view.page
    await page.goto("/proposals")
    await check_a11y(page)
    await shot(page, "proposals-375")
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 375
    await page.get_by_role("link", name="reporter").click()
    await page.wait_for_url(f"{live_url}/proposals/{proposal_id}")
    async with db.session_scope() as s:
        stored_hash = (await proposals.get(session=s, proposal_id=proposal_id)).plan_hash
    assert await page.locator("#plan-hash").text_content() == stored_hash
    await check_a11y(page)
    await shot(page, "proposal-375")
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 375
    await page.get_by_role("button", name="Approve", exact=True).click()
    await page.wait_for_url(f"{live_url}/proposals/{proposal_id}?flash=approved")
    assert "Approved. The plan ran as shown." in (await page.get_by_role("status").first.text_content() or "")
    assert await page.get_by_role("button", name="Approve", exact=True).count() == 0
    await shot(page, "proposal-approved-375")
    async with db.session_scope() as s:
        assert (await proposals.get(session=s, proposal_id=proposal_id)).status == "executed"
    assert csp_violations(view.console) == []


async def test_installable_with_a_service_worker_that_caches_the_shell_only(page_as: PageAs, live_url: str) -> None:
    view = await page_as(Role.VIEWER, width=375, height=800)
    page = view.page
    manifest = await page.evaluate(
        "async () => (await fetch(document.querySelector('link[rel=manifest]').href)).json()"
    )
    assert manifest["start_url"] == "/" and manifest["display"] == "standalone"
    assert {icon["type"] for icon in manifest["icons"]} == {"image/svg+xml"}
    await page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    await page.reload()  # now controlled by the worker
    assert await page.evaluate("() => navigator.serviceWorker.controller !== null")
    await page.goto("/proposals")
    assert await page.evaluate("async () => (await fetch('/api/me')).status") == 200
    cached = await page.evaluate(
        """async () => {
            const urls = [];
            for (const name of await caches.keys()) {
                const cache = await caches.open(name);
                for (const request of await cache.keys()) { urls.push(new URL(request.url).pathname); }
            }
            return urls;
        }"""
    )
    assert "/static/offline.html" in cached and "/static/css/atom.css" in cached
    assert all(path.startswith("/static/") for path in cached), cached  # no page, no API answer
    await page.context.set_offline(True)
    await page.goto("/proposals")
    assert "You are offline" in (await page.content())
    await shot(page, "offline-375")
    await page.context.set_offline(False)


XSS = [
    "<script>alert('x1')</script>",
    '"><img src=x onerror=alert("x2")>',
    "<svg onload=alert('x3')>",
    "javascript:alert('x4')",
    "</code><iframe srcdoc='<script>alert(5)</script>'>",
]


async def test_every_page_is_accessible_and_no_payload_executes(
    page_as: PageAs, db: Database, settings: Settings, live_url: str
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN, name="courier")
    async with db.session_scope() as s:
        await agents_service.update_agent(
            session=s, agent_id=agent.id, agent_in=AgentUpdate(description=" ".join(XSS)), actor=audit.Actor.system()
        )
        await agents_service.record_confidence(
            session=s, agent_id=agent.id, delta=0.05, reason=XSS[0], source="test", source_id=None, settings=settings
        )
    proposal_id = await pending_proposal(db, settings, payload={"x": XSS}, params={"timezone": XSS[1]})
    view = await page_as(Role.ADMIN)
    page = view.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    pages = {
        "agents": "/agents",
        "agent": f"/agents/{agent.id}",
        "proposal-xss": f"/proposals/{proposal_id}",
        "audit": "/audit",
        "admin-users": "/admin/users",
        "admin-keys": "/admin/keys",
        "admin-secrets": "/admin/secrets",
    }
    for name, path in pages.items():
        await page.goto(path)
        await check_a11y(page)
        await shot(page, name)
    await page.goto("/audit")
    await page.get_by_role("button", name="Verify the hash chain").click()
    assert "The chain is intact" in (await page.locator("#verify-result").text_content() or "")
    await shot(page, "audit-verified")
    await page.goto("/admin/keys")
    await page.get_by_label("Name").fill("phone")
    await page.get_by_role("button", name="Create key").click()
    assert (await page.locator("#new-key").text_content() or "").startswith("atom_")
    await check_a11y(page)
    assert dialogs == []
    assert csp_violations(view.console) == []


async def test_live_counts_reconnect_and_catch_up_after_a_server_restart(
    browser: Any, settings: Settings, db: Database, web_user: MakeWebUser
) -> None:
    user = await web_user(Role.VIEWER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with serving(create_app(settings, db=db, configure_logs=False), port=port) as address:
        context = await browser.new_context(base_url=f"http://{address}")
        page = await context.new_page()
        await page.goto("/signin")
        await page.get_by_label("Username").fill(user.username)
        await page.get_by_label("Password").fill(user.password)
        await page.get_by_role("button", name="Sign in").click()
        await page.locator('[data-live-state="live"]').wait_for()
    await page.locator('[data-live-state="reconnecting"]').wait_for()  # the page noticed the server left

    await pending_proposal(db, settings)  # a change while nothing serves: no event reaches any page
    async with serving(create_app(settings, db=db, configure_logs=False), port=port):
        await page.wait_for_function(
            "() => document.querySelector('[data-count=\"pending_proposals\"]').textContent === '1'"
        )
        await page.locator('[data-live-state="live"]').wait_for()
    await context.close()
