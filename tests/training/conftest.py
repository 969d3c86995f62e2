"""Tools whose side effects the tests can count, and a real server for WebSocket/SSE tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from atom.runtime import tools as runtime_tools
from atom.runtime.tools import Tool
from tests.support.live_server import serving


class RecordParams(BaseModel):
    value: str = "x"


class FailParams(BaseModel):
    pass


@dataclass
class SideEffects:
    calls: list[tuple[str, str]] = field(default_factory=list)
    gates: dict[int, asyncio.Event] = field(default_factory=dict)
    arrived: asyncio.Queue[int] = field(default_factory=asyncio.Queue)

    def count(self, name: str) -> int:
        return sum(1 for tool, _ in self.calls if tool == name)


@pytest.fixture
def effects() -> Iterator[SideEffects]:
    recorded = SideEffects()
    gate_counter = {"n": 0}

    async def record_read(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, RecordParams)
        recorded.calls.append(("test_read_record", params.value))
        return {"read": params.value}

    async def record_create(params: BaseModel) -> dict[str, Any]:
        assert isinstance(params, RecordParams)
        recorded.calls.append(("test_create_record", params.value))
        return {"created": params.value}

    async def gated(params: BaseModel) -> dict[str, Any]:
        """Records, then waits until the test opens its gate: a step held open on purpose."""
        assert isinstance(params, RecordParams)
        index = gate_counter["n"]
        gate_counter["n"] += 1
        recorded.calls.append(("test_gated_step", params.value))
        event = recorded.gates.setdefault(index, asyncio.Event())
        await recorded.arrived.put(index)
        await event.wait()
        return {"gated": params.value}

    async def explode(params: BaseModel) -> dict[str, Any]:
        raise RuntimeError("the integration answered 500")

    registered = [
        Tool("test_read_record", 1, "test: record a read", RecordParams, record_read),
        Tool("test_create_record", 3, "test: record a creation", RecordParams, record_create),
        Tool("test_gated_step", 1, "test: a step the test holds open", RecordParams, gated),
        Tool("test_explode", 1, "test: a tool that fails", FailParams, explode),
    ]
    tools = runtime_tools.current()
    for tool in registered:
        tools.register(tool)
    yield recorded
    for tool in registered:
        tools.unregister(tool.name)


@pytest.fixture
async def live_server(app: FastAPI) -> AsyncIterator[str]:
    """The app under uvicorn on a loopback port, in this test's event loop."""
    async with serving(app) as address:
        yield address
