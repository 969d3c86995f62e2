"""Recording a key's last use never blocks or fails the requests that use it (issue 9, item 7)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from atom.db.base import utcnow
from atom.db.session import Database
from atom.security import service as security
from atom.security.models import ApiKey
from tests.conftest import MakeUser
from tests.support.live_server import serving

CONCURRENT = 200


async def _last_used(db: Database, user_id: str) -> object:
    async with db.sessionmaker() as s:
        return await s.scalar(select(ApiKey.last_used_at).where(ApiKey.user_id == user_id))


async def test_a_fresh_key_under_200_concurrent_requests_answers_every_one(
    app: FastAPI, db: Database, make_user: MakeUser
) -> None:
    """A burst with a never-used key: every request answered 200 (the pool used to run dry: all 500)."""
    operator = await make_user("operator")
    assert await _last_used(db, operator.id) is None
    async with serving(app) as address:
        limits = httpx.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT)
        async with (
            httpx.AsyncClient(base_url=f"http://{address}", limits=limits, timeout=60) as http,
            asyncio.timeout(120),  # before the fix the pool ran dry and the burst never finished
        ):
            responses = await asyncio.gather(
                *(http.get("/api/me", headers=operator.headers) for _ in range(CONCURRENT)),
                return_exceptions=True,
            )
        await app.state.key_uses.drain()
    statuses = [r.status_code if isinstance(r, httpx.Response) else type(r).__name__ for r in responses]
    assert statuses == [200] * CONCURRENT
    assert await _last_used(db, operator.id) is not None


async def test_the_use_is_written_once_per_interval(app: FastAPI, db: Database, make_user: MakeUser) -> None:
    viewer = await make_user("viewer")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://atom.test") as client:
        for _ in range(5):
            assert (await client.get("/api/me", headers=viewer.headers)).status_code == 200
        await app.state.key_uses.drain()
        first = await _last_used(db, viewer.id)
        assert first is not None
        assert (await client.get("/api/me", headers=viewer.headers)).status_code == 200
        assert app.state.key_uses.pending == 0  # within the interval: nothing scheduled
    assert await _last_used(db, viewer.id) == first


async def test_a_lost_race_writes_nothing_and_is_no_error(db: Database, make_user: MakeUser) -> None:
    """Another process recorded the use a moment ago: the conditional write leaves its value."""
    viewer = await make_user("viewer")
    recent = utcnow() - timedelta(seconds=5)
    async with db.session_scope() as s:
        await s.execute(update(ApiKey).where(ApiKey.user_id == viewer.id).values(last_used_at=recent))
    async with db.session_scope() as s:
        key_id = await s.scalar(select(ApiKey.id).where(ApiKey.user_id == viewer.id))
        assert key_id is not None
        assert await security.touch_key(session=s, key_id=key_id) is False
    stored = await _last_used(db, viewer.id)
    assert isinstance(stored, type(recent)) and abs((stored - recent).total_seconds()) < 1
