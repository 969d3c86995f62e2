"""The Home counts stream over SSE and change when the bus says so (real server, both databases)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.security.models import Role
from tests.support.live_server import serving
from tests.web.conftest import MakeWebUser, pending_proposal, sign_in


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    # No periodic recount within the test: only a bus event can bring the second update.
    return {"web_live_recheck_s": 600.0}


async def _updates(response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    event = ""
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event == "update":
            yield json.loads(line[len("data: ") :])


async def test_home_counts_update_when_a_proposal_arrives(
    app: FastAPI, db: Database, settings: Settings, web_user: MakeWebUser
) -> None:
    user = await web_user(Role.VIEWER)
    async with serving(app) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
        await sign_in(client, user)
        async with client.stream("GET", "/live/home") as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            updates = _updates(response)
            first = await asyncio.wait_for(anext(updates), timeout=20)
            assert first == {
                "pending_proposals": 0,
                "waiting_supervision": 0,
                "failed_runs": 0,
                "demoted_today": 0,
                "pending_requests": 0,
            }
            await pending_proposal(db, settings)
            second = await asyncio.wait_for(anext(updates), timeout=20)
            assert second["pending_proposals"] == 1


async def test_the_stream_needs_a_session(app: FastAPI) -> None:
    async with serving(app) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
        response = await client.get("/live/home")
        assert response.status_code == 303 and response.headers["location"].startswith("/signin")
