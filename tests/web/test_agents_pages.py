"""Agents pages (both databases): list, confidence chart from the ledger, pause/stop, promote by role."""

from __future__ import annotations

import re

import httpx

from atom.agents import service as agents_service
from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from tests.support.agents import make_agent
from tests.web.conftest import MakeWebUser, page_csrf, sign_in


async def test_list_and_agent_page_with_its_confidence_chart(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN, name="scribe")
    async with db.session_scope() as s:
        for delta in (0.05, -0.02, 0.05):
            await agents_service.record_confidence(
                session=s,
                agent_id=agent.id,
                delta=delta,
                reason="test",
                source="test",
                source_id=None,
                settings=settings,
            )
    await sign_in(client, await web_user(Role.VIEWER))
    listing = await client.get("/agents")
    assert listing.status_code == 200 and f'href="/agents/{agent.id}"' in listing.text
    assert "INTERN" in listing.text and "0.680" in listing.text
    page = await client.get(f"/agents/{agent.id}")
    assert page.status_code == 200
    points = re.search(r'<polyline points="([^"]+)"', page.text)
    # the start (0.3), its creation above STUDENT (a promotion to 0.6), then three ledger rows
    assert points is not None and len(points.group(1).split()) == 5
    ys = [float(p.split(",")[1]) for p in points.group(1).split()]
    assert ys[1] < ys[0] and ys[2] < ys[1] and ys[3] > ys[2] and ys[4] < ys[3]  # SVG y grows downwards
    assert "Pause" not in page.text and "Promote" not in page.text  # a viewer only sees
    assert (await client.get("/agents/00000000-0000-7000-8000-000000000000")).status_code == 404


async def test_operator_pauses_but_only_an_approver_promotes(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    agent = await make_agent(db, settings, MaturityLevel.INTERN)
    await sign_in(client, await web_user(Role.OPERATOR))
    page = await client.get(f"/agents/{agent.id}")
    assert "Pause" in page.text and "Promote" not in page.text
    csrf = await page_csrf(client, f"/agents/{agent.id}")
    paused = await client.post(f"/agents/{agent.id}/pause", data={"csrf_token": csrf})
    assert paused.status_code == 303
    async with db.session_scope() as s:
        assert (await agents_service.get_agent(session=s, agent_id=agent.id)).status == "paused"
    forged = await client.post(
        f"/agents/{agent.id}/promote", data={"csrf_token": csrf, "to_level": "SUPERVISED", "reason": "x"}
    )
    assert forged.status_code == 403

    client.cookies.clear()
    await sign_in(client, await web_user(Role.APPROVER))
    csrf = await page_csrf(client, f"/agents/{agent.id}")
    empty = await client.post(f"/agents/{agent.id}/promote", data={"csrf_token": csrf, "to_level": "SUPERVISED"})
    assert empty.status_code == 422 and 'id="e-promote_reason"' in empty.text
    assert '<option value="SUPERVISED" selected>' in empty.text  # the choice is kept
    gated = await client.post(
        f"/agents/{agent.id}/promote", data={"csrf_token": csrf, "to_level": "SUPERVISED", "reason": "ready"}
    )
    # graduation gate (docs/graduation.md): no episodes and no exam yet, said beside the field
    assert gated.status_code == 422 and "is not ready for SUPERVISED" in gated.text
    async with db.session_scope() as s:
        assert (await agents_service.get_agent(session=s, agent_id=agent.id)).maturity_level == "INTERN"
    page = await client.get(f"/agents/{agent.id}")
    assert "promotion STUDENT → INTERN" in page.text  # its creation above STUDENT, by an approver
    assert "INTERN → SUPERVISED" not in page.text
