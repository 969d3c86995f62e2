"""Approving a proposal the way a person does: with the plan hash they were shown."""

from __future__ import annotations

import httpx


async def approve(
    client: httpx.AsyncClient, proposal_id: str, headers: dict[str, str], **extra: object
) -> httpx.Response:
    shown = await client.get(f"/api/proposals/{proposal_id}", headers=headers)
    assert shown.status_code == 200, shown.text
    body = {"plan_hash": shown.json()["plan_hash"], **extra}
    return await client.post(f"/api/proposals/{proposal_id}/approve", json=body, headers=headers)
