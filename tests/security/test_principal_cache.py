"""The principal cache never lets a revoked key, a disabled user or a lost role through.

Changes made through the API, by the CLI (another process: seen through the SQLite marker file, or
through Redis), and a Redis bus that lost its connection (entries from before are not trusted).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
from redis.asyncio import Redis

from atom.config import Settings
from atom.events.bus import EventBus, InProcessBus, RedisBus, get_bus, set_bus
from atom.security.models import Role
from atom.security.principal import Principal
from atom.security.principal_cache import PRINCIPALS_CHANGED, PrincipalCache, marker_for, principal_cache, touch_marker
from tests.conftest import MakeUser, UserWithKey

ROOT = Path(__file__).resolve().parents[2]


async def _key_id(client: httpx.AsyncClient, user: UserWithKey) -> str:
    page = (await client.get("/api/keys", headers=user.headers)).json()  # the caller's own keys
    (key,) = page["items"]
    return str(key["id"])


def _cached_here(settings: Settings) -> bool:
    """Whether the cache may be used in this test's set-up (SQLite marker, or a Redis bus)."""
    return principal_cache.token() is not None


async def _warm(client: httpx.AsyncClient, user: UserWithKey, settings: Settings) -> None:
    for _ in range(2):
        assert (await client.get("/api/me", headers=user.headers)).status_code == 200
    if settings.resolved_database_url.startswith("sqlite"):
        assert len(principal_cache) > 0, "the second call should be served from the cache"


async def test_a_revoked_key_is_refused_by_the_next_request(
    client: httpx.AsyncClient, admin: UserWithKey, make_user: MakeUser, settings: Settings
) -> None:
    user = await make_user(Role.OPERATOR)
    await _warm(client, user, settings)
    key_id = await _key_id(client, user)
    assert (await client.delete(f"/api/keys/{key_id}", headers=admin.headers)).status_code == 200
    refused = await client.get("/api/me", headers=user.headers)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "INVALID_API_KEY"
    assert (await client.get("/api/me", headers=admin.headers)).status_code == 200


async def test_disabling_a_user_and_changing_a_role_are_seen_at_once(
    client: httpx.AsyncClient, admin: UserWithKey, make_user: MakeUser, settings: Settings
) -> None:
    other_admin = await make_user(Role.ADMIN)
    await _warm(client, other_admin, settings)
    assert (await client.get("/api/users", headers=other_admin.headers)).status_code == 200
    demoted = await client.patch(f"/api/users/{other_admin.id}", json={"role": "viewer"}, headers=admin.headers)
    assert demoted.status_code == 200
    forbidden = await client.get("/api/users", headers=other_admin.headers)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "ROLE_REQUIRED"

    assert (await client.get("/api/me", headers=other_admin.headers)).status_code == 200  # cached again
    disabled = await client.patch(f"/api/users/{other_admin.id}", json={"is_active": False}, headers=admin.headers)
    assert disabled.status_code == 200
    assert (await client.get("/api/me", headers=other_admin.headers)).status_code == 401


def _cli_env(settings: Settings, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        ATOM_DATA_DIR=str(settings.data_dir),
        ATOM_SECRET_KEY=settings.secret_key.get_secret_value() if settings.secret_key else "",
        ATOM_LOG_FORMAT="json",
    )
    if settings.database_url:
        env["ATOM_DATABASE_URL"] = settings.database_url
    if redis_url:
        env["ATOM_REDIS_URL"] = redis_url
    return env


async def _cli_revoke(settings: Settings, key_id: str, redis_url: str | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "atom",
        "keys",
        "revoke",
        key_id,
        env=_cli_env(settings, redis_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, (out + err).decode()


async def test_a_key_revoked_by_another_process_is_refused_at_once(
    client: httpx.AsyncClient, admin: UserWithKey, make_user: MakeUser, settings: Settings
) -> None:
    """No Redis: on SQLite the CLI's change is seen through the marker file; on PostgreSQL the
    cache is off (nothing could tell this process), so the key is read from the database."""
    user = await make_user(Role.OPERATOR)
    await _warm(client, user, settings)
    assert _cached_here(settings) is settings.resolved_database_url.startswith("sqlite")
    await _cli_revoke(settings, await _key_id(client, user))
    assert (await client.get("/api/me", headers=user.headers)).status_code == 401


async def test_a_key_revoked_by_another_process_reaches_this_one_through_redis(
    client: httpx.AsyncClient, admin: UserWithKey, make_user: MakeUser, settings: Settings, redis_url: str
) -> None:
    previous: EventBus = get_bus()
    bus = RedisBus(redis_url)
    await bus.start()
    set_bus(bus)
    try:
        user = await make_user(Role.OPERATOR)
        await _warm(client, user, settings)
        assert len(principal_cache) > 0  # with Redis the cache is on, on PostgreSQL too
        key_id = await _key_id(client, user)
        async with bus.subscribe(PRINCIPALS_CHANGED) as events:
            await _cli_revoke(settings, key_id, redis_url)
            event = await asyncio.wait_for(anext(events), timeout=30)
        assert event == {"key_id": key_id}
        assert (await client.get("/api/me", headers=user.headers)).status_code == 401
    finally:
        await bus.stop()
        set_bus(previous)


async def test_entries_from_before_a_redis_disconnect_are_not_trusted(redis_url: str) -> None:
    previous: EventBus = get_bus()
    bus = RedisBus(redis_url)
    await bus.start()
    set_bus(bus)
    cache = PrincipalCache()
    cache.configure(ttl_s=3600, database_url="postgresql+asyncpg://db.invalid/atom")
    principal = Principal(user_id="u", username="u", role=Role.ADMIN, key_id="k")
    try:
        token = cache.token()
        assert token is not None
        cache.store("hash", principal, token)
        assert cache.lookup("hash", token) is principal
        epoch = bus.delivery_epoch()
        redis = Redis.from_url(redis_url)
        try:
            await redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")  # messages may be lost from here
        finally:
            await redis.aclose()
        for _ in range(600):  # the listener notices and subscribes again (a new epoch)
            if bus.delivery_epoch() not in (epoch, None):
                break
            await asyncio.sleep(0.05)
        fresh = cache.token()
        assert fresh is not None and fresh != token
        assert cache.lookup("hash", fresh) is None
    finally:
        await bus.stop()
        set_bus(previous)
    assert bus.delivery_epoch() is None  # stopped: nothing trusted
    set_bus(bus)
    try:
        assert cache.token() is None
    finally:
        set_bus(previous)


def test_without_redis_or_sqlite_nothing_is_cached() -> None:
    previous = get_bus()
    set_bus(InProcessBus())
    try:
        cache = PrincipalCache()
        cache.configure(ttl_s=3600, database_url="postgresql+asyncpg://db.invalid/atom")
        assert cache.token() is None
        cache.configure(ttl_s=0, database_url="sqlite+aiosqlite:///tmp/x.db")
        assert cache.token() is None
    finally:
        set_bus(previous)


def test_the_marker_changes_the_token_and_a_principal_read_across_a_change_is_dropped(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'atom.db'}"
    cache = PrincipalCache()
    cache.configure(ttl_s=3600, database_url=url)
    principal = Principal(user_id="u", username="u", role=Role.ADMIN, key_id="k")
    token = cache.token()
    assert token is not None
    touch_marker(marker_for(url))  # another process committed a change meanwhile
    cache.store("hash", principal, token)
    assert len(cache) == 0
    token = cache.token()
    assert token is not None
    cache.store("hash", principal, token)
    assert cache.lookup("hash", token) is principal
    touch_marker(marker_for(url))
    assert cache.lookup("hash", cache.token()) is None  # type: ignore[arg-type]


def test_entries_expire() -> None:
    now = [100.0]
    cache = PrincipalCache(clock=lambda: now[0])
    previous = get_bus()
    set_bus(InProcessBus())
    try:
        cache.configure(ttl_s=5, database_url="sqlite+aiosqlite:////nonexistent-dir/atom.db")
        token = cache.token()
        assert token is not None
        principal = Principal(user_id="u", username="u", role=Role.ADMIN)
        cache.store("hash", principal, token)
        assert cache.lookup("hash", token) is principal
        now[0] += 6
        assert cache.lookup("hash", token) is None
    finally:
        set_bus(previous)
