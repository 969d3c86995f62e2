"""The memory API: auth and roles, search with scores, export as JSON lines, forget (vectors too, audited),
jobs with progress, privacy of chat episodes, error bodies."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from atom.audit.models import AuditEvent
from atom.config import Settings
from atom.db.session import Database
from atom.memory import service
from atom.memory.models import EpisodeAccessLog
from atom.memory.runtime import Memory
from atom.memory.segmentation import Event
from atom.security.models import Role
from tests.conftest import MakeUser
from tests.memory.conftest import START
from tests.support.agents import make_agent


async def _seed(db: Database, settings: Settings, memory: Memory, owner: str | None = None) -> tuple[str, list[str]]:
    agent = await make_agent(db, settings)
    texts = ["Invoice INV-3391 for Umbrella Ltd is overdue", "Hooli asked to change its billing address"]
    ids = []
    async with db.session_scope() as s:
        for n, text in enumerate(texts):
            at = START - timedelta(hours=n)
            [e] = await service.record_events(
                session=s,
                memory=memory,
                events=[Event(agent.id, at, "message", text, "execution", user_id=owner, completes_task=True)],
            )
            ids.append(e.id)
    return agent.id, ids


async def _wait_job(client: httpx.AsyncClient, headers: dict[str, str], job_id: str) -> dict[str, object]:
    for _ in range(200):
        body = (await client.get(f"/api/memory/jobs/{job_id}", headers=headers)).json()
        if body["status"] != "running":
            return dict(body)
        await asyncio.sleep(0.05)
    raise AssertionError("job did not finish")


async def test_search_export_forget(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, db: Database, memory: Memory, make_user: MakeUser
) -> None:
    app.state.memory = memory
    admin, viewer = await make_user(Role.ADMIN), await make_user(Role.VIEWER)
    agent_id, ids = await _seed(db, settings, memory)

    assert (await client.post("/api/memory/search", json={"agent": agent_id, "query": "x"})).status_code == 401
    found = await client.post(
        "/api/memory/search",
        json={"agent": agent_id, "query": "INV-3391", "reason": "checking dues"},
        headers=viewer.headers,
    )
    assert found.status_code == 200, found.text
    top = found.json()["items"][0]
    assert top["episode"]["id"] == ids[0] and top["why"]["text_rank"] == 1.0 and top["score"] > 0

    shown = (await client.get(f"/api/memory/episodes/{ids[1]}", headers=viewer.headers)).json()
    assert [s["content"] for s in shown["segments"]] == ["Hooli asked to change its billing address"]
    async with db.session_scope() as s:
        logs = (await s.scalars(select(EpisodeAccessLog).order_by(EpisodeAccessLog.id))).all()
    assert [(x.mode, x.reason, x.actor) for x in logs] == [
        ("semantic", "checking dues", f"user:{viewer.id}"),
        ("sequential", "shown", f"user:{viewer.id}"),
    ]

    listed = (await client.get(f"/api/memory/episodes?agent={agent_id}&limit=1", headers=viewer.headers)).json()
    assert len(listed["items"]) == 1 and listed["next_cursor"]

    export = await client.get(f"/api/memory/agents/{agent_id}/export", headers=admin.headers)
    assert export.status_code == 200 and export.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert sorted(d["id"] for d in lines) == sorted(ids) and lines[0]["segments"][0]["content"]
    missing = await client.get("/api/memory/agents/no-such-agent/export", headers=admin.headers)
    assert missing.status_code == 404 and set(missing.json()) == {"error"}

    refused = await client.request("DELETE", f"/api/memory/agents/{agent_id}", headers=viewer.headers)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "ROLE_REQUIRED"
    gone = await client.request("DELETE", f"/api/memory/agents/{agent_id}", headers=admin.headers)
    assert gone.json() == {"agent_id": agent_id, "deleted": 2}
    assert await memory.store.ids(agent_id) == set()
    async with db.session_scope() as s:
        audited = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "memory.forget"))).all()
    assert [(a.resource_id, a.details["episodes"]) for a in audited] == [(agent_id, 2)]


async def test_chat_episodes_are_private_to_their_user(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, db: Database, memory: Memory, make_user: MakeUser
) -> None:
    app.state.memory = memory
    owner, other = await make_user(Role.VIEWER), await make_user(Role.VIEWER)
    agent_id, ids = await _seed(db, settings, memory, owner=owner.id)
    hidden = await client.get(f"/api/memory/episodes/{ids[0]}", headers=other.headers)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "EPISODE_NOT_FOUND"
    search = {"agent": agent_id, "query": "Umbrella invoice"}
    assert (await client.post("/api/memory/search", json=search, headers=other.headers)).json()["items"] == []
    mine = (await client.post("/api/memory/search", json=search, headers=owner.headers)).json()["items"]
    assert mine[0]["episode"]["id"] == ids[0]


async def test_jobs_and_bad_input(
    app: FastAPI, client: httpx.AsyncClient, settings: Settings, db: Database, memory: Memory, make_user: MakeUser
) -> None:
    app.state.memory = memory
    admin = await make_user(Role.ADMIN)
    agent_id, _ = await _seed(db, settings, memory)
    started = await client.post("/api/memory/maintain", json={"dry_run": True}, headers=admin.headers)
    assert started.status_code == 202
    job = await _wait_job(client, admin.headers, started.json()["id"])
    assert job["status"] == "done" and job["done"] == job["total"] and job["report"]["dry_run"] is True

    started = await client.post("/api/memory/reembed", json={"agent": agent_id}, headers=admin.headers)
    job = await _wait_job(client, admin.headers, started.json()["id"])
    assert (job["status"], job["done"], job["total"]) == ("done", 2, 2)
    assert job["report"]["model_id"] == "all-MiniLM-L6-v2-onnx-int8"

    bad = await client.post(
        "/api/memory/search", json={"agent": agent_id, "mode": "temporal", "days": 3}, headers=admin.headers
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "INVALID_MEMORY_WINDOW"
    extra = await client.post("/api/memory/search", json={"agent": agent_id, "nope": 1}, headers=admin.headers)
    assert extra.status_code == 422 and extra.json()["error"]["code"] == "VALIDATION_ERROR"
    made = await client.post(
        "/api/memory/episodes", json={"agent": agent_id, "text": "Umbrella pays on the 5th"}, headers=admin.headers
    )
    assert made.status_code == 201 and made.json()["closed"] is True and made.json()["source"] == "manual"
