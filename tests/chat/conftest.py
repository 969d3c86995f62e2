"""Chat fixtures: the scripted OpenAI-wire server, the app wired to it through the real adapter, a live server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.llm import service as llm_service
from atom.llm.providers.openai_compat import OpenAICompatProvider
from atom.llm.router import CircuitBreaker, ProviderEntry, RetryPolicy, Router
from atom.llm.schemas import ProviderCreate
from atom.security.secrets_store import load_cipher
from tests.support.agents import make_agent
from tests.support.live_server import serving
from tests.support.llm_servers import OpenAIServer

API_KEY = "sk-chat-test-key"
MODEL = "test-model"


class WatchedOpenAIServer(OpenAIServer):
    """Also records when each connection's handling ended (to prove an upstream request was cut)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.closed: asyncio.Queue[float] = asyncio.Queue()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await super()._accept(reader, writer)
        finally:
            self.closed.put_nowait(asyncio.get_running_loop().time())


@pytest.fixture
async def llm_server() -> AsyncIterator[WatchedOpenAIServer]:
    async with WatchedOpenAIServer(api_key=API_KEY) as server:
        yield server


def build_router(server: OpenAIServer) -> Router:
    provider = OpenAICompatProvider(name="local", base_url=server.base_url, api_key=API_KEY, timeout=30)
    return Router(
        [ProviderEntry("local", provider, (MODEL,))],
        retry=RetryPolicy(attempts_per_provider=1, base_delay=0.01),
        breaker=CircuitBreaker(failure_threshold=1000),
    )


@pytest.fixture
async def chat_app(app: FastAPI, llm_server: OpenAIServer, db: Database, settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with the scripted server configured as its LLM provider (key in the secrets store)."""
    async with db.session_scope() as s:
        await llm_service.create_provider(
            session=s,
            cipher=load_cipher(settings),
            data=ProviderCreate(
                name="local", kind="openai", base_url=llm_server.base_url, models=[MODEL], api_key=API_KEY
            ),
            actor_id=None,
        )
    yield app
    gateway = getattr(app.state, "llm_gateway", None)
    if gateway is not None:
        await gateway.aclose()


@pytest.fixture
async def live(chat_app: FastAPI) -> AsyncIterator[str]:
    """The app under uvicorn on a loopback port, in this test's event loop."""
    async with serving(chat_app) as address:
        yield address


async def agent_named(db: Database, settings: Settings, level: MaturityLevel, name: str) -> str:
    agent = await make_agent(db, settings, level, name=name)
    return agent.id


def parse_sse(raw: str) -> list[dict[str, Any]]:
    events = []
    for block in raw.split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    return events
