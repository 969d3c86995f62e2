"""Supervised runs through the real WebSocket: queued until watched; commands act before the next step."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.training import supervision
from tests.conftest import UserWithKey
from tests.support.agents import make_agent
from tests.training.conftest import SideEffects

STEPS = [{"action": "test_gated_step", "params": {"value": f"s{i}"}} for i in range(3)]


async def _start(client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings) -> tuple[str, str]:
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    routed = (
        await client.post("/api/triggers", json={"agent_id": agent.id, "plan": {"steps": STEPS}}, headers=admin.headers)
    ).json()
    return agent.id, routed["supervision_session_id"]


async def _until(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        event = json.loads(await asyncio.wait_for(ws.recv(), timeout=20))
        if event.get("type") == kind:
            return dict(event)


async def test_pause_correct_resume_and_finish_through_the_websocket(
    client: httpx.AsyncClient,
    admin: UserWithKey,
    db: Database,
    settings: Settings,
    effects: SideEffects,
    live_server: str,
) -> None:
    agent_id, session_id = await _start(client, admin, db, settings)
    assert effects.calls == []  # queued: nobody watches yet
    async with websockets.connect(
        f"ws://{live_server}/ws/supervision/{session_id}", additional_headers={"X-API-Key": admin.key}, open_timeout=30
    ) as ws:
        assert (await _until(ws, "snapshot"))["status"] in ("queued", "running")
        assert await asyncio.wait_for(effects.arrived.get(), timeout=20) == 0  # step 1 is running, held open
        await ws.send(json.dumps({"command": "pause"}))
        assert (await _until(ws, "ack"))["status"] == "paused"
        effects.gates[0].set()
        assert (await _until(ws, "step_finished"))["index"] == 0
        assert (await _until(ws, "paused"))["before_step"] == 1
        await ws.send(json.dumps({"command": "correct", "params": {"value": "fixed"}}))
        await _until(ws, "ack")
        await asyncio.sleep(0.3)
        assert [v for _, v in effects.calls] == ["s0"]  # nothing ran while paused
        await ws.send(json.dumps({"command": "resume"}))
        assert (await _until(ws, "corrected"))["params"] == {"value": "fixed"}
        assert await asyncio.wait_for(effects.arrived.get(), timeout=20) == 1
        effects.gates[1].set()
        assert await asyncio.wait_for(effects.arrived.get(), timeout=20) == 2
        effects.gates[2].set()
        assert (await _until(ws, "finished"))["status"] == "completed"
    assert [v for _, v in effects.calls] == ["s0", "fixed", "s2"]
    await supervision.wait_for_run(session_id)
    row = (await client.get(f"/api/supervision/{session_id}", headers=admin.headers)).json()
    assert row["status"] == "completed" and row["interventions"] == 2 and len(row["steps"]) == 3

    late = await client.post(
        f"/api/supervision/{session_id}/commands", json={"command": "pause"}, headers=admin.headers
    )
    assert late.status_code == 409 and late.json()["error"]["code"] == "SUPERVISION_FINISHED"
    before = (await client.get(f"/api/agents/{agent_id}", headers=admin.headers)).json()["confidence"]
    rated = await client.post(f"/api/supervision/{session_id}/rating", json={"rating": 5}, headers=admin.headers)
    assert rated.status_code == 200
    after = (await client.get(f"/api/agents/{agent_id}", headers=admin.headers)).json()["confidence"]
    assert round(after - before, 4) == round(4 / 40 - 0.02, 4)  # (r-1)/40 - 0.01 * 2 interventions
    assert (
        await client.post(f"/api/supervision/{session_id}/rating", json={"rating": 5}, headers=admin.headers)
    ).status_code == 409


async def test_terminate_stops_before_the_next_step(
    client: httpx.AsyncClient,
    admin: UserWithKey,
    db: Database,
    settings: Settings,
    effects: SideEffects,
    live_server: str,
) -> None:
    _, session_id = await _start(client, admin, db, settings)
    async with websockets.connect(
        f"ws://{live_server}/ws/supervision/{session_id}", additional_headers={"X-API-Key": admin.key}, open_timeout=30
    ) as ws:
        assert await asyncio.wait_for(effects.arrived.get(), timeout=20) == 0
        await ws.send(json.dumps({"command": "terminate"}))
        assert (await _until(ws, "ack"))["status"] == "terminated"
        effects.gates[0].set()
        assert (await _until(ws, "finished"))["status"] == "terminated"
    await supervision.wait_for_run(session_id)
    assert [v for _, v in effects.calls] == ["s0"]


async def test_websocket_needs_a_valid_key_and_an_operator(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database, settings: Settings, live_server: str, make_user: Any
) -> None:
    _, session_id = await _start(client, admin, db, settings)
    viewer = await make_user("viewer")
    for token in ("", "atom_000000000000_nope", viewer.key):
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(
                f"ws://{live_server}/ws/supervision/{session_id}",
                additional_headers={"X-API-Key": token},
                open_timeout=30,
            ):
                pass
    row = (await client.get(f"/api/supervision/{session_id}", headers=admin.headers)).json()
    assert row["status"] == "queued"  # refused connections do not count as supervisors


async def test_bad_commands_are_answered_not_fatal(
    client: httpx.AsyncClient,
    admin: UserWithKey,
    db: Database,
    settings: Settings,
    effects: SideEffects,
    live_server: str,
) -> None:
    _, session_id = await _start(client, admin, db, settings)
    async with websockets.connect(
        f"ws://{live_server}/ws/supervision/{session_id}", additional_headers={"X-API-Key": admin.key}, open_timeout=30
    ) as ws:
        await ws.send(json.dumps({"command": "explode"}))
        assert (await _until(ws, "error"))["code"] == "VALIDATION_ERROR"
        await ws.send(json.dumps({"command": "correct"}))
        assert (await _until(ws, "error"))["code"] == "INVALID_INPUT"
        await ws.send(json.dumps({"command": "terminate"}))
        await _until(ws, "ack")
        for gate in range(3):
            effects.gates.setdefault(gate, asyncio.Event()).set()
    await supervision.wait_for_run(session_id)


async def test_unknown_session_is_404(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    response = await client.post("/api/supervision/nope/commands", json={"command": "pause"}, headers=admin.headers)
    assert response.status_code == 404
