"""Guidance fixtures: the chat fixtures (scripted OpenAI-wire server as the app's provider) and helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tests.chat.conftest import chat_app, llm_server
from tests.conftest import UserWithKey

__all__ = ["chat_app", "llm_server"]


async def eventually(
    client: httpx.AsyncClient, path: str, user: UserWithKey, check: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    """GET `path` until `check(body)` holds (15 s at most)."""
    deadline = asyncio.get_running_loop().time() + 15
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        response = await client.get(path, headers=user.headers)
        if response.status_code == 200:
            last = response.json()
            if check(last):
                return dict(last)
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


async def until(predicate: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
