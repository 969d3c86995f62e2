"""A provider key never shows up anywhere a failed chat run leaves a trace: logs, the streamed events,
the execution record, the conversation, the audit trail, the provider's health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.llm import service as llm_service
from atom.llm.schemas import ProviderCreate
from atom.security.secrets_store import load_cipher
from tests.chat.conftest import API_KEY, MODEL, WatchedOpenAIServer, agent_named, parse_sse
from tests.conftest import UserWithKey
from tests.support.live_server import serving
from tests.support.logs import captured_logs

REVOKED_KEY = "sk-revoked-4f0c2d9e8b7a61"


@pytest.fixture
async def revoked_app(
    app: FastAPI, llm_server: WatchedOpenAIServer, db: Database, settings: Settings
) -> AsyncIterator[FastAPI]:
    """The app with the scripted provider configured under a key the provider refuses (it accepts API_KEY)."""
    async with db.session_scope() as s:
        await llm_service.create_provider(
            session=s,
            cipher=load_cipher(settings),
            data=ProviderCreate(
                name="local", kind="openai", base_url=llm_server.base_url, models=[MODEL], api_key=REVOKED_KEY
            ),
            actor_id=None,
        )
    yield app
    gateway = getattr(app.state, "llm_gateway", None)
    if gateway is not None:
        await gateway.aclose()


async def test_a_run_refused_by_the_provider_names_the_provider_and_never_the_key(
    revoked_app: FastAPI, llm_server: WatchedOpenAIServer, db: Database, settings: Settings, admin: UserWithKey
) -> None:
    await agent_named(db, settings, MaturityLevel.AUTONOMOUS, "locked-out")
    traces: list[str] = []
    with captured_logs(settings) as logs:
        async with (
            serving(revoked_app) as address,
            httpx.AsyncClient(base_url=f"http://{address}", headers=admin.headers, timeout=20) as http,
        ):
            created = await http.post("/api/chat/sessions", json={"agent": "locked-out"})
            session_id = created.json()["id"]
            async with http.stream(
                "POST", f"/api/chat/sessions/{session_id}/messages", json={"content": "hello"}
            ) as response:
                raw = (await response.aread()).decode()
            events = parse_sse(raw)
            execution_id = events[0]["execution_id"]
            record = await http.get(f"/api/chat/executions/{execution_id}")
            conversation = await http.get(f"/api/chat/sessions/{session_id}")
            audit = await http.get("/api/audit", params={"limit": 200})
            providers = await http.get("/api/llm/providers")
            traces += [raw, record.text, conversation.text, audit.text, providers.text]
        traces.append(logs.getvalue())

    # The provider really was sent the key and really answered with it in its message.
    assert llm_server.last_request.headers["authorization"] == f"Bearer {REVOKED_KEY}"
    done = events[-1]
    assert (done["status"], done["error_code"]) == ("failed", "LLM_PROVIDER_AUTH")
    error: dict[str, Any] = next(e for e in events if e["type"] == "error")
    assert "local" in error["message"]  # the provider is named
    assert record.json()["error_code"] == "LLM_PROVIDER_AUTH" and "local" in record.json()["error"]
    assert audit.status_code == 200 and "agent.execute" in audit.text
    assert providers.json()["items"][0]["healthy"] is False
    assert '"logger": "atom.http"' in traces[-1]  # the server's own logs were captured
    for trace in traces:
        assert REVOKED_KEY not in trace and API_KEY not in trace
        assert REVOKED_KEY[:12] not in trace  # not even a prefix long enough to identify it
