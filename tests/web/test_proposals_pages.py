"""The proposals inbox over HTTP (both databases): role matrix, CSRF, plan hash, decided/expired, batch, 404."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import update

from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.security.models import Role
from atom.training import proposals
from atom.training.models import AgentProposal
from tests.web.conftest import MakeWebUser, page_csrf, pending_proposal, sign_in


async def _status(db: Database, proposal_id: str) -> str:
    async with db.session_scope() as s:
        return (await proposals.get(session=s, proposal_id=proposal_id)).status


async def _hash(db: Database, proposal_id: str) -> str:
    async with db.session_scope() as s:
        return (await proposals.get(session=s, proposal_id=proposal_id)).plan_hash


async def test_a_viewer_sees_no_buttons_and_a_forged_post_is_403(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    xss = "<img src=x onerror=alert(1)>"
    proposal_id = await pending_proposal(db, settings, payload={"note": xss}, params={"timezone": xss})
    await sign_in(client, await web_user(Role.VIEWER))
    inbox = await client.get("/proposals")
    assert inbox.status_code == 200
    page = await client.get(f"/proposals/{proposal_id}")
    assert page.status_code == 200
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text and "<img src=x" not in page.text
    assert await _hash(db, proposal_id) in page.text
    assert "Approve" not in page.text and 'name="ids"' not in inbox.text
    csrf = await page_csrf(client, f"/proposals/{proposal_id}")
    forged = await client.post(
        f"/proposals/{proposal_id}/approve", data={"csrf_token": csrf, "plan_hash": await _hash(db, proposal_id)}
    )
    assert forged.status_code == 403 and "approver role" in forged.text
    batch = await client.post("/proposals/batch", data={"csrf_token": csrf, "ids": proposal_id, "decision": "approve"})
    assert batch.status_code == 403
    assert await _status(db, proposal_id) == "pending"


async def test_an_approver_approves_exactly_the_plan_shown(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    proposal_id = await pending_proposal(db, settings)
    await sign_in(client, await web_user(Role.APPROVER))
    page = await client.get(f"/proposals/{proposal_id}")
    shown = re.search(r'name="plan_hash" value="([0-9a-f]{64})"', page.text)
    assert shown is not None and shown.group(1) == await _hash(db, proposal_id)
    csrf = await page_csrf(client, f"/proposals/{proposal_id}")

    no_csrf = await client.post(f"/proposals/{proposal_id}/approve", data={"plan_hash": shown.group(1)})
    assert no_csrf.status_code == 403 and "security token" in no_csrf.text
    stale = await client.post(f"/proposals/{proposal_id}/approve", data={"csrf_token": csrf, "plan_hash": "0" * 64})
    assert stale.status_code == 409 and "not the one you saw" in stale.text
    assert await _status(db, proposal_id) == "pending"

    done = await client.post(
        f"/proposals/{proposal_id}/approve", data={"csrf_token": csrf, "plan_hash": shown.group(1)}
    )
    assert done.status_code == 303 and done.headers["location"] == f"/proposals/{proposal_id}?flash=approved"
    assert await _status(db, proposal_id) == "executed"
    after = await client.get(done.headers["location"])
    assert "Approved. The plan ran as shown." in after.text and "Already decided: executed" in after.text
    assert 'action="/proposals/' not in after.text  # no decision forms on a decided proposal
    again = await client.post(
        f"/proposals/{proposal_id}/approve", data={"csrf_token": csrf, "plan_hash": shown.group(1)}
    )
    assert again.status_code == 409 and "only a pending proposal can be decided" in again.text


async def test_rejecting_needs_a_reason_shown_beside_the_field(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    proposal_id = await pending_proposal(db, settings)
    await sign_in(client, await web_user(Role.APPROVER))
    csrf = await page_csrf(client, f"/proposals/{proposal_id}")
    empty = await client.post(f"/proposals/{proposal_id}/reject", data={"csrf_token": csrf, "reason": "  "})
    assert empty.status_code == 422
    assert 'id="e-reject_reason"' in empty.text and 'aria-describedby="e-reject_reason"' in empty.text
    assert await _status(db, proposal_id) == "pending"
    done = await client.post(f"/proposals/{proposal_id}/reject", data={"csrf_token": csrf, "reason": "wrong <target>"})
    assert done.status_code == 303
    page = await client.get(done.headers["location"])
    assert "Already decided: rejected" in page.text and "wrong &lt;target&gt;" in page.text
    assert await _status(db, proposal_id) == "rejected"


async def test_an_expired_proposal_says_so_and_cannot_be_approved(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    proposal_id = await pending_proposal(db, settings)
    async with db.session_scope() as s:
        await s.execute(
            update(AgentProposal)
            .where(AgentProposal.id == proposal_id)
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    await sign_in(client, await web_user(Role.APPROVER))
    page = await client.get(f"/proposals/{proposal_id}")
    assert "This proposal expired" in page.text and "Approve" not in page.text
    csrf = await page_csrf(client, f"/proposals/{proposal_id}")
    forced = await client.post(
        f"/proposals/{proposal_id}/approve", data={"csrf_token": csrf, "plan_hash": await _hash(db, proposal_id)}
    )
    assert forced.status_code == 409 and await _status(db, proposal_id) == "expired"


async def test_batch_decides_each_ticked_proposal_with_its_own_hash(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    first, second = await pending_proposal(db, settings), await pending_proposal(db, settings)
    await sign_in(client, await web_user(Role.APPROVER))
    inbox = await client.get("/proposals")
    assert inbox.text.count('name="ids"') == 2
    csrf = await page_csrf(client, "/proposals")
    form = [
        ("csrf_token", csrf),
        ("decision", "approve"),
        ("ids", first),
        ("ids", second),
        (f"hash_{first}", await _hash(db, first)),
        (f"hash_{second}", "f" * 64),  # what this approver saw is not what is stored: not approved
    ]
    response = await client.post(
        "/proposals/batch",
        content=httpx.QueryParams(form).__str__(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert await _status(db, first) == "executed" and await _status(db, second) == "pending"
    assert "not the one you saw" in response.text
    no_reason = await client.post("/proposals/batch", data={"csrf_token": csrf, "ids": second, "decision": "reject"})
    assert no_reason.status_code == 422 and "Rejecting needs a reason." in no_reason.text


async def test_an_unknown_proposal_is_a_404_page(client: httpx.AsyncClient, web_user: MakeWebUser) -> None:
    await sign_in(client, await web_user(Role.VIEWER))
    for path in ("/proposals/01234567-0000-7000-8000-000000000000", "/proposals/<script>"):
        response = await client.get(path)
        assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")
        assert "Not found" in response.text and "<script>" not in response.text.split("<main")[1]
