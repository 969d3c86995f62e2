"""Helpers for scenario-run tests: a scheduled training session, scenarios, waiting for a run to end."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from atom.training import run_tasks
from tests.conftest import UserWithKey
from tests.support.proposals import approve

PLAN = {"steps": [{"action": "test_read_record", "params": {}}]}


async def scheduled_training(client: httpx.AsyncClient, who: UserWithKey, agent_id: str) -> str:
    """An automated trigger routes the STUDENT to training; approving the proposal schedules a session."""
    routed = await client.post("/api/triggers", json={"agent_id": agent_id, "plan": PLAN}, headers=who.headers)
    assert routed.status_code == 200 and routed.json()["route"] == "training", routed.text
    approval = await approve(client, routed.json()["proposal_id"], who.headers)
    assert approval.status_code == 200, approval.text
    return str(approval.json()["training_id"])


async def add_scenario(client: httpx.AsyncClient, who: UserWithKey, body: dict[str, Any]) -> None:
    response = await client.post("/api/training-scenarios", json=body, headers=who.headers)
    assert response.status_code == 201, response.text


async def run_to_the_end(app: FastAPI, client: httpx.AsyncClient, who: UserWithKey, training_id: str) -> dict[str, Any]:
    started = await client.post(f"/api/training/{training_id}/run", headers=who.headers)
    assert started.status_code == 202, started.text
    assert started.json()["status"] in {"running", "completed", "scheduled"}
    await asyncio.gather(*run_tasks.runs_of(app.state).running())
    shown = await client.get(f"/api/training/{training_id}", headers=who.headers)
    assert shown.status_code == 200
    return dict(shown.json())


async def training_ledger(client: httpx.AsyncClient, who: UserWithKey, agent_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/agents/{agent_id}/confidence", headers=who.headers)
    assert response.status_code == 200
    return [row for row in response.json()["items"] if row["source"] == "training"]


async def audit_rows(client: httpx.AsyncClient, who: UserWithKey, action: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/audit?action={action}", headers=who.headers)
    assert response.status_code == 200
    return list(response.json()["items"])
