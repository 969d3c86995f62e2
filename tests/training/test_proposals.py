"""Proposals: exactly the stored plan, exactly once, only while pending and unexpired."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text, update

from atom.agents.models import Agent
from atom.config import Settings
from atom.db.base import utcnow
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from atom.training import proposals
from atom.training.models import AgentProposal
from tests.conftest import MakeUser, UserWithKey
from tests.support.agents import make_agent
from tests.support.sqlite_lock import write_lock_is_free
from tests.training.conftest import SideEffects

PLAN = {
    "steps": [
        {"action": "test_read_record", "params": {"value": "one"}},
        {"action": "test_read_record", "params": {"value": "two"}},
    ]
}


@pytest.fixture
async def approver(make_user: MakeUser) -> UserWithKey:
    return await make_user(Role.APPROVER)


async def _propose(
    client: httpx.AsyncClient, who: UserWithKey, db: Database, settings: Settings, plan: dict[str, object] = PLAN
) -> tuple[str, str]:
    agent = await make_agent(db, settings, MaturityLevel.INTERN)
    routed = (
        await client.post(
            "/api/triggers", json={"agent_id": agent.id, "plan": plan, "source": "webhook"}, headers=who.headers
        )
    ).json()
    assert routed["route"] == "proposal"
    return agent.id, routed["proposal_id"]


async def _seen(client: httpx.AsyncClient, proposal_id: str, who: UserWithKey, **extra: object) -> dict[str, object]:
    """An approval body carrying the plan hash the approver was shown."""
    shown = await client.get(f"/api/proposals/{proposal_id}", headers=who.headers)
    return {"plan_hash": shown.json().get("plan_hash", "0" * 64), **extra}


async def _confidence(db: Database, agent_id: str) -> float:
    async with db.sessionmaker() as s:
        return float((await s.get(Agent, agent_id)).confidence)  # type: ignore[union-attr]


async def test_approval_executes_exactly_the_plan_and_rewards(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent_id, proposal_id = await _propose(client, approver, db, settings)
    before = await _confidence(db, agent_id)
    shown = (await client.get(f"/api/proposals/{proposal_id}", headers=approver.headers)).json()
    approved = await client.post(
        f"/api/proposals/{proposal_id}/approve",
        json=await _seen(client, proposal_id, approver, reason="looks right"),
        headers=approver.headers,
    )
    body = approved.json()["proposal"]
    assert approved.status_code == 200 and body["status"] == "executed" and body["modified"] is False
    assert body["plan_hash"] == shown["plan_hash"] and body["decided_by"] == approver.id
    assert effects.calls == [("test_read_record", "one"), ("test_read_record", "two")]
    # +0.05 for approval unchanged, +0.01 per successful action
    assert round(await _confidence(db, agent_id) - before, 4) == 0.07
    again = await client.post(
        f"/api/proposals/{proposal_id}/approve",
        json=await _seen(client, proposal_id, approver),
        headers=approver.headers,
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "PROPOSAL_NOT_PENDING"
    assert len(effects.calls) == 2


async def test_concurrent_approvals_execute_once(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    _, proposal_id = await _propose(client, approver, db, settings)
    seen = await _seen(client, proposal_id, approver)
    responses = await asyncio.gather(
        *(client.post(f"/api/proposals/{proposal_id}/approve", json=seen, headers=approver.headers) for _ in range(8))
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * 7, [r.text for r in responses if r.status_code not in (200, 409)]
    assert effects.calls == [("test_read_record", "one"), ("test_read_record", "two")]


async def test_only_approvers_decide(
    client: httpx.AsyncClient, make_user: MakeUser, db: Database, settings: Settings, effects: SideEffects
) -> None:
    operator = await make_user(Role.OPERATOR)
    _, proposal_id = await _propose(client, operator, db, settings)
    assert (
        await client.post(
            f"/api/proposals/{proposal_id}/approve",
            json=await _seen(client, proposal_id, operator),
            headers=operator.headers,
        )
    ).status_code == 403
    assert effects.calls == []


async def test_expired_proposal_is_a_conflict_and_nothing_runs(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    _, proposal_id = await _propose(client, approver, db, settings)
    async with db.session_scope() as s:
        await s.execute(
            update(AgentProposal)
            .where(AgentProposal.id == proposal_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    response = await client.post(
        f"/api/proposals/{proposal_id}/approve",
        json=await _seen(client, proposal_id, approver),
        headers=approver.headers,
    )
    assert response.status_code == 409 and response.json()["error"]["details"]["status"] == "expired"
    assert effects.calls == []
    listed = (await client.get("/api/proposals?status=expired", headers=approver.headers)).json()["items"]
    assert [p["id"] for p in listed] == [proposal_id]


async def test_modified_plan_executes_and_counts_as_modified(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent_id, proposal_id = await _propose(client, approver, db, settings)
    before = await _confidence(db, agent_id)
    modified = {"steps": [{"action": "test_read_record", "params": {"value": "edited"}}]}
    body = (
        await client.post(
            f"/api/proposals/{proposal_id}/approve",
            json=await _seen(client, proposal_id, approver, plan=modified),
            headers=approver.headers,
        )
    ).json()["proposal"]
    assert (
        body["modified"] is True
        and body["plan"] == modified["steps"]
        and body["plan_hash"] != body["original_plan_hash"]
    )
    assert effects.calls == [("test_read_record", "edited")]
    # a correction from a trusted reviewer (-0.10, RULES) instead of the approval bonus, +0.01 for the action
    assert round(await _confidence(db, agent_id) - before, 4) == round(settings.confidence_correction_trusted + 0.01, 4)
    ledger = (await client.get(f"/api/agents/{agent_id}/confidence", headers=approver.headers)).json()["items"]
    assert [(e["source_id"], round(e["delta"], 4)) for e in ledger if e["source"] == "correction"] == [
        (proposal_id, settings.confidence_correction_trusted)
    ]
    corrected = (await client.get("/api/audit?action=proposal.correct", headers=approver.headers)).json()["items"]
    assert [(a["resource_id"], a["details"]["plan_hash"]) for a in corrected] == [(proposal_id, body["plan_hash"])]


async def test_approval_holds_only_for_the_hash_the_approver_saw(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent_id, proposal_id = await _propose(client, approver, db, settings)
    before = await _confidence(db, agent_id)
    url = f"/api/proposals/{proposal_id}/approve"
    missing = await client.post(url, json={}, headers=approver.headers)
    assert missing.status_code == 422 and "body.plan_hash" in str(missing.json()["error"]["details"])
    other = PLAN | {"steps": [{"action": "test_read_record", "params": {"value": "something else"}}]}
    from atom.training.plan import plan_hash

    wrong = await client.post(url, json={"plan_hash": plan_hash(other["steps"])}, headers=approver.headers)
    assert wrong.status_code == 409 and wrong.json()["error"]["code"] == "PLAN_HASH_MISMATCH"
    assert effects.calls == [] and await _confidence(db, agent_id) == before
    shown = (await client.get(f"/api/proposals/{proposal_id}", headers=approver.headers)).json()
    assert shown["status"] == "pending" and shown["decided_by"] is None
    right = await client.post(url, json={"plan_hash": shown["plan_hash"].upper()}, headers=approver.headers)
    assert right.status_code == 200 and right.json()["proposal"]["status"] == "executed"


async def test_invalid_modified_plan_leaves_the_proposal_pending_and_unchanged(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    _, proposal_id = await _propose(client, approver, db, settings)
    before = (await client.get(f"/api/proposals/{proposal_id}", headers=approver.headers)).json()
    response = await client.post(
        f"/api/proposals/{proposal_id}/approve",
        json=await _seen(client, proposal_id, approver, plan={"steps": [{"params": {}}]}),
        headers=approver.headers,
    )
    assert response.status_code == 422
    assert "body.plan.steps.0.action" in [f["field"] for f in response.json()["error"]["details"]["fields"]]
    after = (await client.get(f"/api/proposals/{proposal_id}", headers=approver.headers)).json()
    assert after == before and effects.calls == []


async def test_tampered_plan_is_refused(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    _, proposal_id = await _propose(client, approver, db, settings)
    seen = await _seen(client, proposal_id, approver)
    async with db.session_scope() as s:
        row = (await s.scalars(select(AgentProposal).where(AgentProposal.id == proposal_id))).one()
        row.plan = [{"action": "test_create_record", "params": {"value": "evil"}}]
    response = await client.post(f"/api/proposals/{proposal_id}/approve", json=seen, headers=approver.headers)
    assert response.status_code == 409 and response.json()["error"]["code"] == "PLAN_HASH_MISMATCH"
    assert effects.calls == []
    assert (await client.get(f"/api/proposals/{proposal_id}", headers=approver.headers)).json()["status"] == "pending"


async def test_execution_failure_is_recorded_not_half_applied_silently(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    plan = {
        "steps": [
            {"action": "test_read_record", "params": {"value": "first"}},
            {"action": "test_explode", "params": {}},
            {"action": "test_read_record", "params": {"value": "never"}},
        ]
    }
    _, proposal_id = await _propose(client, approver, db, settings, plan)
    body = (
        await client.post(
            f"/api/proposals/{proposal_id}/approve",
            json=await _seen(client, proposal_id, approver),
            headers=approver.headers,
        )
    ).json()["proposal"]
    assert body["status"] == "execution_failed" and "500" in body["error"]
    assert [s["status"] for s in body["result"]["steps"]] == ["done", "failed"]
    assert effects.calls == [("test_read_record", "first")]


async def test_intern_plan_cannot_exceed_its_complexity_even_when_approved(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    plan = {"steps": [{"action": "test_create_record", "params": {"value": "too much"}}]}
    _, proposal_id = await _propose(client, approver, db, settings, plan)
    body = (
        await client.post(
            f"/api/proposals/{proposal_id}/approve",
            json=await _seen(client, proposal_id, approver),
            headers=approver.headers,
        )
    ).json()["proposal"]
    assert body["status"] == "execution_failed"
    assert body["result"]["steps"][0]["reason_code"] == "COMPLEXITY_EXCEEDS_MATURITY"
    assert effects.calls == []


async def test_reject_moves_confidence_down(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings, effects: SideEffects
) -> None:
    agent_id, proposal_id = await _propose(client, approver, db, settings)
    before = await _confidence(db, agent_id)
    rejected = await client.post(
        f"/api/proposals/{proposal_id}/reject", json={"reason": "wrong customer"}, headers=approver.headers
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["decision_reason"] == "wrong customer"
    assert round(await _confidence(db, agent_id) - before, 4) == -0.10
    assert (
        await client.post(
            f"/api/proposals/{proposal_id}/approve",
            json=await _seen(client, proposal_id, approver),
            headers=approver.headers,
        )
    ).status_code == 409
    assert (
        await client.post(f"/api/proposals/{proposal_id}/reject", json={"reason": "x"}, headers=approver.headers)
    ).status_code == 409
    assert effects.calls == []


async def test_unknown_proposal_is_404(client: httpx.AsyncClient, approver: UserWithKey) -> None:
    for method, path, body in (
        ("GET", "/api/proposals/nope", None),
        ("POST", "/api/proposals/nope/approve", {"plan_hash": "0" * 64}),
        ("POST", "/api/proposals/nope/reject", {"reason": "x"}),
    ):
        response = await client.request(method, path, json=body, headers=approver.headers)
        assert response.status_code == 404 and response.json()["error"]["code"] == "PROPOSAL_NOT_FOUND"


async def test_two_sessions_racing_on_the_claim(
    db: Database, settings: Settings, effects: SideEffects, approver: UserWithKey, client: httpx.AsyncClient
) -> None:
    """Below the API: two independent approvals of the same proposal; one executes."""
    from atom.errors import Conflict
    from atom.training import proposals

    _, proposal_id = await _propose(client, approver, db, settings)
    shown = str((await _seen(client, proposal_id, approver))["plan_hash"])
    results = await asyncio.gather(
        proposals.approve(db=db, settings=settings, proposal_id=proposal_id, approver_id=approver.id, seen_hash=shown),
        proposals.approve(db=db, settings=settings, proposal_id=proposal_id, approver_id=approver.id, seen_hash=shown),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1
    assert len(effects.calls) == 2
    async with db.sessionmaker() as s:
        assert (
            await s.execute(text("SELECT status FROM agent_proposals WHERE id = :i"), {"i": proposal_id})
        ).scalar() == "executed"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_reading_a_proposal_takes_no_write_lock(
    client: httpx.AsyncClient, approver: UserWithKey, db: Database, settings: Settings
) -> None:
    """Expiry is applied on read only when something is due: a page view is no writer (SQLite's write lock
    lasts to the commit, and every other writer of the process would wait for it)."""
    _, proposal_id = await _propose(client, approver, db, settings)

    async with db.session_scope() as s:
        assert (await proposals.get(session=s, proposal_id=proposal_id)).status == "pending"
        assert await write_lock_is_free(settings.data_dir / "atom.db")
        await s.execute(
            update(AgentProposal)
            .where(AgentProposal.id == proposal_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    async with db.session_scope() as s:
        assert (await proposals.get(session=s, proposal_id=proposal_id)).status == "expired"  # still expired on read
