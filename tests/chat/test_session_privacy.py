"""A conversation is its author's: other operators neither list, read, continue nor resume it; admins can."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import websockets

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import WatchedOpenAIServer, agent_named
from tests.conftest import MakeUser
from tests.support.llm_servers import text_reply


async def test_only_the_author_and_admins_see_a_conversation(
    chat_app: Any,
    live: str,
    client: httpx.AsyncClient,
    llm_server: WatchedOpenAIServer,
    make_user: MakeUser,
    db: Database,
    settings: Settings,
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "confidant")
    llm_server.default = text_reply(["noted"], usage=(5, 1))
    author, other, admin = await make_user("operator"), await make_user("operator"), await make_user("admin")

    created = await client.post("/api/chat/sessions", json={"agent": "confidant"}, headers=author.headers)
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    sent = await client.post(
        f"/api/chat/sessions/{session_id}/messages",
        json={"content": "my salary is 1234", "stream": False},
        headers=author.headers,
    )
    assert sent.status_code == 200, sent.text
    execution_id = sent.json()["id"]

    assert (await client.get(f"/api/chat/sessions/{session_id}", headers=author.headers)).status_code == 200
    hidden = await client.get(f"/api/chat/sessions/{session_id}", headers=other.headers)
    assert hidden.status_code == 404 and hidden.json()["error"]["code"] == "CHAT_SESSION_NOT_FOUND"
    continued = await client.post(
        f"/api/chat/sessions/{session_id}/messages",
        json={"content": "and yours?", "stream": False},
        headers=other.headers,
    )
    assert continued.status_code == 404
    assert session_id not in [
        s["id"] for s in (await client.get("/api/chat/sessions", headers=other.headers)).json()["items"]
    ]
    assert session_id in [
        s["id"] for s in (await client.get("/api/chat/sessions", headers=author.headers)).json()["items"]
    ]
    assert session_id in [
        s["id"] for s in (await client.get("/api/chat/sessions", headers=admin.headers)).json()["items"]
    ]
    assert (await client.get(f"/api/chat/executions/{execution_id}", headers=other.headers)).status_code == 404
    assert (await client.get(f"/api/chat/executions/{execution_id}", headers=author.headers)).status_code == 200
    listed = (await client.get("/api/chat/executions", headers=other.headers)).json()["items"]
    assert execution_id not in [e["id"] for e in listed]
    detail = await client.get(f"/api/chat/sessions/{session_id}", headers=admin.headers)
    assert detail.status_code == 200 and "1234" in detail.text

    with pytest.raises(websockets.exceptions.WebSocketException):
        async with websockets.connect(
            f"ws://{live}/ws/chat/confidant?session_id={session_id}",
            additional_headers={"X-API-Key": other.key},
            open_timeout=30,
        ) as ws:
            await ws.recv()
    async with websockets.connect(
        f"ws://{live}/ws/chat/confidant?session_id={session_id}",
        additional_headers={"X-API-Key": author.key},
        open_timeout=30,
    ) as ws:
        assert (await ws.recv()).find(session_id) > 0
    assert len(llm_server.requests) == 1  # nothing reached the model on the other operator's behalf
