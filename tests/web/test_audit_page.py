"""The audit page (both databases): filters, bad filters beside their fields, verify, links to subjects."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from atom.audit.models import AuditEvent
from atom.config import Settings
from atom.db.session import Database
from atom.security.models import Role
from tests.web.conftest import MakeWebUser, page_csrf, pending_proposal, sign_in


async def test_filter_link_and_verify(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    proposal_id = await pending_proposal(db, settings)
    await sign_in(client, await web_user(Role.VIEWER))
    page = await client.get("/audit", params={"action": "proposal.create"})
    assert page.status_code == 200
    assert f'href="/proposals/{proposal_id}"' in page.text  # the record links to its subject
    assert "agent.create" not in page.text and "web.sign_in" not in page.text
    everything = await client.get("/audit")
    assert "agent.create" in everything.text and "web.sign_in" in everything.text

    csrf = await page_csrf(client, "/audit")
    intact = await client.post("/audit/verify", data={"csrf_token": csrf})
    assert intact.status_code == 200 and "The chain is intact" in intact.text
    async with db.session_scope() as s:
        await s.execute(update(AuditEvent).where(AuditEvent.action == "proposal.create").values(reason="edited"))
    broken = await client.post("/audit/verify", data={"csrf_token": csrf})
    assert "The chain is broken at record" in broken.text
    assert (await client.post("/audit/verify", data={})).status_code == 403  # no CSRF token


async def test_bad_filters_are_shown_beside_their_fields(client: httpx.AsyncClient, web_user: MakeWebUser) -> None:
    await sign_in(client, await web_user(Role.VIEWER))
    page = await client.get("/audit", params={"since": "yesterday", "action": "<b>x</b>", "actor_type": "robot"})
    assert page.status_code == 422
    assert 'id="e-since"' in page.text and "Use a date like" in page.text
    assert 'id="e-actor_type"' in page.text
    assert 'value="yesterday"' in page.text and 'value="&lt;b&gt;x&lt;/b&gt;"' in page.text
