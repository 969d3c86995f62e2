"""Feedback on real agent runs: validation, trusted-reviewer rules, the daily cap, review, stats, the bus."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from atom.agents import service as agents_service
from atom.config import Settings
from atom.db.session import Database
from atom.events.bus import get_bus
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import MakeUser, UserWithKey
from tests.support.llm_servers import text_reply


async def run_once(client: httpx.AsyncClient, user: UserWithKey, agent: str) -> str:
    """A real agent run (POST /api/chat/execute); returns its execution id."""
    response = await client.post(
        "/api/chat/execute", json={"agent": agent, "task": "summarise the day", "stream": False}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


async def confidence(db: Database, agent_id: str) -> float:
    async with db.session_scope() as s:
        return (await agents_service.get_agent(session=s, agent_id=agent_id)).confidence


async def ledger(db: Database, agent_id: str) -> list[Any]:
    async with db.session_scope() as s:
        events, _ = await agents_service.confidence_history(session=s, agent_id=agent_id, limit=100, cursor=None)
    return [e for e in events if e.source == "feedback"]


@pytest.fixture
async def scene(
    chat_app: Any, client: httpx.AsyncClient, llm_server: WatchedOpenAIServer, db: Database, settings: Settings
) -> dict[str, Any]:
    llm_server.default = text_reply("all quiet", usage=(5, 2))
    agent_id = await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "reporter")
    return {"agent_id": agent_id}


async def test_bad_feedback_is_refused_and_nothing_is_stored(
    scene: dict[str, Any], client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    operator = await make_user("operator")
    execution_id = await run_once(client, operator, "reporter")
    cases = [
        ({"target_type": "execution", "target_id": execution_id, "kind": "rating", "rating": 6}, 422, "rating"),
        ({"target_type": "execution", "target_id": execution_id, "kind": "rating", "rating": 0}, 422, "rating"),
        ({"target_type": "execution", "target_id": execution_id, "kind": "rating"}, 422, "rating"),
        ({"target_type": "execution", "target_id": execution_id, "kind": "thumbs", "thumbs": 2}, 422, "thumbs"),
        ({"target_type": "execution", "target_id": execution_id, "kind": "thumbs", "thumbs": 1, "rating": 4}, 422, ""),
        ({"target_type": "planet", "target_id": execution_id, "kind": "comment", "comment": "x"}, 422, "target_type"),
        ({"target_type": "execution", "target_id": "0199-nope", "kind": "comment", "comment": "x"}, 404, ""),
        ({"target_type": "message", "target_id": "0199-nope", "kind": "comment", "comment": "x"}, 404, ""),
        ({"target_type": "workflow_step", "target_id": "0199-nope", "kind": "comment", "comment": "x"}, 404, ""),
    ]
    for body, status, field in cases:
        response = await client.post("/api/feedback", json=body, headers=operator.headers)
        assert response.status_code == status, (body, response.text)
        assert "error" in response.json()
        if field:
            assert field in response.text
    listed = await client.get("/api/feedback", headers=operator.headers)
    assert listed.json()["items"] == []


async def test_trusted_correction_moves_confidence_at_once_and_others_wait_for_review(
    scene: dict[str, Any], client: httpx.AsyncClient, make_user: MakeUser, db: Database
) -> None:
    agent_id = scene["agent_id"]
    operator, approver = await make_user("operator"), await make_user("approver")
    execution_id = await run_once(client, operator, "reporter")
    before = await confidence(db, agent_id)

    pending = await client.post(
        "/api/feedback",
        json={"target_type": "execution", "target_id": execution_id, "kind": "correction", "corrected": "busy day"},
        headers=operator.headers,
    )
    assert pending.status_code == 201, pending.text
    assert pending.json()["status"] == "pending" and pending.json()["original"] == "all quiet"
    assert await confidence(db, agent_id) == pytest.approx(before)
    assert await ledger(db, agent_id) == []

    forbidden = await client.post(
        "/api/feedback/review", json={"feedback_ids": [pending.json()["id"]], "decision": "accept"},
        headers=operator.headers,
    )  # fmt: skip
    assert forbidden.status_code == 403
    reviewed = await client.post(
        "/api/feedback/review",
        json={"feedback_ids": [pending.json()["id"]], "decision": "accept", "reason": "right"},
        headers=approver.headers,
    )
    assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["reviewed"][0]["status"] == "accepted"
    assert await confidence(db, agent_id) == pytest.approx(before - 0.02)
    again = await client.post(
        "/api/feedback/review", json={"feedback_ids": [pending.json()["id"]], "decision": "reject"},
        headers=approver.headers,
    )  # fmt: skip
    assert again.status_code == 409

    trusted = await client.post(
        "/api/feedback",
        json={"target_type": "execution", "target_id": execution_id, "kind": "correction", "corrected": "a busy day"},
        headers=approver.headers,
    )
    assert trusted.status_code == 201 and trusted.json()["status"] == "accepted"
    assert trusted.json()["confidence_delta"] == pytest.approx(-0.10)
    assert await confidence(db, agent_id) == pytest.approx(before - 0.12)
    rows = await ledger(db, agent_id)
    assert {r.source_id for r in rows} == {pending.json()["id"], trusted.json()["id"]}


async def test_high_ratings_from_a_reviewer_count_three_times_a_day(
    scene: dict[str, Any], client: httpx.AsyncClient, make_user: MakeUser, db: Database
) -> None:
    agent_id = scene["agent_id"]
    operator, approver = await make_user("operator"), await make_user("approver")
    execution_id = await run_once(client, operator, "reporter")
    before = await confidence(db, agent_id)
    deltas = []
    for rating in (5, 4, 5, 5, 3):
        response = await client.post(
            "/api/feedback",
            json={"target_type": "execution", "target_id": execution_id, "kind": "rating", "rating": rating},
            headers=approver.headers,
        )
        assert response.status_code == 201, response.text
        deltas.append(response.json()["confidence_delta"])
    untrusted = await client.post(
        "/api/feedback",
        json={"target_type": "execution", "target_id": execution_id, "kind": "rating", "rating": 5},
        headers=operator.headers,
    )
    assert untrusted.json()["confidence_delta"] == 0
    assert deltas == pytest.approx([0.005, 0.005, 0.005, 0.0, 0.0])
    assert await confidence(db, agent_id) == pytest.approx(before + 0.015)

    stats = await client.get(f"/api/feedback/stats/{agent_id}?days=7", headers=operator.headers)
    assert stats.status_code == 200, stats.text
    body = stats.json()
    assert body["count"] == 6 and body["by_kind"]["rating"] == 6
    assert body["mean_rating"] == pytest.approx((5 + 4 + 5 + 5 + 3 + 5) / 6)
    assert body["correction_rate"] == 0 and len(body["trend"]) == 1 and body["trend"][0]["count"] == 6


async def test_feedback_on_a_message_and_the_created_event(
    scene: dict[str, Any], client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    author, other = await make_user("operator"), await make_user("operator")
    created = await client.post("/api/chat/sessions", json={"agent": "reporter"}, headers=author.headers)
    session_id = created.json()["id"]
    sent = await client.post(
        f"/api/chat/sessions/{session_id}/messages", json={"content": "hi", "stream": False}, headers=author.headers
    )
    assert sent.status_code == 200, sent.text
    detail = await client.get(f"/api/chat/sessions/{session_id}", headers=author.headers)
    answer = next(m for m in detail.json()["messages"] if m["role"] == "assistant")

    hidden = await client.post(
        "/api/feedback",
        json={"target_type": "message", "target_id": answer["id"], "kind": "thumbs", "thumbs": -1},
        headers=other.headers,
    )
    assert hidden.status_code == 404  # someone else's conversation looks absent

    async with get_bus().subscribe("feedback.created") as events:
        response = await client.post(
            "/api/feedback",
            json={"target_type": "message", "target_id": answer["id"], "kind": "thumbs", "thumbs": -1},
            headers=author.headers,
        )
        assert response.status_code == 201, response.text
        event = await asyncio.wait_for(anext(aiter(events)), timeout=10)
    assert event["id"] == response.json()["id"] and event["thumbs"] == -1 and event["agent_id"] == scene["agent_id"]
