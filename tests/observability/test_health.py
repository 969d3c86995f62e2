"""Liveness, readiness (with real failures), metrics and request ids."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from atom.config import Settings
from atom.db import migrate
from atom.db.session import Database
from atom.main import create_app
from tests.conftest import UserWithKey, make_settings
from tests.support import databases
from tests.support.logs import captured_logs


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _client_for(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, db=db, configure_logs=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://atom.test") as client:
        yield client


async def test_live(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200 and response.json() == {"status": "alive", "pid": os.getpid()}


async def test_ready_reports_each_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready"
    assert set(body["checks"]) == {"database", "migrations", "disk"}
    assert all(check["ok"] for check in body["checks"].values())


async def test_not_ready_when_database_unreachable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"postgresql://postgres@127.0.0.1:{_closed_port()}/atom", health_db_timeout_s=2)
    db = Database(settings)
    try:
        async for client in _client_for(settings, db):
            response = await client.get("/health/ready")
    finally:
        await db.dispose()
    body = response.json()
    assert response.status_code == 503 and body["status"] == "not_ready"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["disk"]["ok"] is True


async def test_not_ready_when_sqlite_file_cannot_be_opened(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the database directory should be")
    settings = make_settings(tmp_path, f"sqlite:///{blocker / 'atom.db'}")
    db = Database(settings)
    try:
        async for client in _client_for(settings, db):
            response = await client.get("/health/ready")
    finally:
        await db.dispose()
    checks = response.json()["checks"]
    assert response.status_code == 503
    assert checks["database"]["ok"] is False and "unable to open database file" in checks["database"]["detail"]
    assert checks["migrations"]["ok"] is False and checks["disk"]["ok"] is True


@pytest.fixture
async def downgraded_copy(backend: str, settings: Settings, tmp_path: Path) -> AsyncIterator[tuple[Settings, Database]]:
    """A database of its own, migrated to head and then down to base (the shared test database stays intact)."""
    if backend == "sqlite":  # `settings` already points at a per-test copy of the SQLite file
        copy_settings, cleanup = settings, None
    else:
        server = databases.postgres_server_url()
        assert server is not None
        url = await databases.create_pg_database(server)
        copy_settings, cleanup = settings.model_copy(update={"database_url": url}), (server, url)
    db = Database(copy_settings)
    try:
        await migrate.upgrade(db)
        await migrate.downgrade(db, "base")
        yield copy_settings, db
    finally:
        await db.dispose()
        if cleanup is not None:
            await databases.drop_pg_database(*cleanup)


async def test_not_ready_when_migrations_behind(downgraded_copy: tuple[Settings, Database]) -> None:
    settings, db = downgraded_copy
    async for client in _client_for(settings, db):
        response = await client.get("/health/ready")
    checks = response.json()["checks"]
    assert response.status_code == 503 and response.json()["status"] == "not_ready"
    assert checks["database"]["ok"] is True
    assert checks["migrations"]["ok"] is False and "atom-os db upgrade" in checks["migrations"]["detail"]


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, object]:
    return dict(getattr(request, "param", {}))


@pytest.mark.parametrize("settings_overrides", [{"health_disk_threshold_gb": 1e9}], indirect=True)
async def test_not_ready_when_disk_low(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["disk"]["ok"] is False


@pytest.mark.parametrize(
    "settings_overrides",
    [{"redis_url": f"redis://127.0.0.1:{_closed_port()}/0", "health_redis_timeout_s": 1}],
    indirect=True,
)
async def test_not_ready_when_redis_configured_and_down(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False


async def test_ready_with_redis(settings: Settings, db: Database, redis_url: str) -> None:
    with_redis = settings.model_copy(update={"redis_url": redis_url})
    async for client in _client_for(with_redis, db):
        response = await client.get("/health/ready")
    assert response.status_code == 200 and response.json()["checks"]["redis"]["ok"] is True


async def test_metrics_label_full_route_templates(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    await client.get("/api/me", headers=admin.headers)
    await client.get("/api/users/does-not-exist", headers=admin.headers)
    await client.delete("/api/keys/no-such-key", headers=admin.headers)
    await client.get("/docs")
    await client.get("/no/such/route")
    text = (await client.get("/health/metrics")).text
    assert 'atom_http_requests_total{method="GET",route="/api/me",status="200"}' in text
    assert 'atom_http_requests_total{method="GET",route="unmatched",status="404"}' in text
    assert 'atom_http_requests_total{method="DELETE",route="/api/keys/{key_id}",status="404"}' in text
    assert 'atom_http_requests_total{method="GET",route="/docs",status="200"}' in text
    assert "atom_http_request_duration_seconds_bucket" in text
    assert "atom_http_requests_in_flight" in text
    assert "atom_db_query_duration_seconds_bucket" in text


async def test_request_id_is_returned_echoed_and_logged(settings: Settings, db: Database) -> None:
    with captured_logs(settings) as logs:
        async for client in _client_for(settings, db):
            generated = await client.get("/api/me")
            echoed = await client.get("/api/me", headers={"X-Request-ID": "trace-abc.123"})
            replaced = await client.get("/api/me", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["x-request-id"]) == 32
    assert echoed.headers["x-request-id"] == "trace-abc.123"
    assert replaced.headers["x-request-id"] != "bad id with spaces"
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if line.startswith("{")]
    request_lines = [line for line in lines if line.get("event") == "request"]
    assert {"trace-abc.123", generated.headers["x-request-id"]} <= {line["request_id"] for line in request_lines}


async def test_logs_redact_credentials(settings: Settings) -> None:
    from atom.observability.logging import get_logger

    with captured_logs(settings) as logs:
        get_logger("atom.test").info("calling provider", api_key="sk-should-not-appear", password="hunter2", user="bob")
    line = json.loads(logs.getvalue().strip().splitlines()[-1])
    assert line["api_key"] == "[redacted]" and line["password"] == "[redacted]" and line["user"] == "bob"
    assert "sk-should-not-appear" not in logs.getvalue() and "hunter2" not in logs.getvalue()


async def test_logs_are_json_lines_with_level_time_and_logger(settings: Settings) -> None:
    from atom.observability.logging import get_logger

    with captured_logs(settings) as logs:
        get_logger("atom.test").warning("disk filling", free_gb=1.5)
    line = json.loads(logs.getvalue().strip().splitlines()[-1])
    assert line["event"] == "disk filling" and line["free_gb"] == 1.5
    assert line["level"] == "warning" and line["logger"] == "atom.test" and line["timestamp"].endswith("Z")


async def test_readiness_and_migrations_do_not_log_alembic_chatter(settings: Settings, db: Database) -> None:
    with captured_logs(settings) as logs:
        async for client in _client_for(settings, db):
            assert (await client.get("/health/ready")).status_code == 200
        await migrate.upgrade(db)
        assert await migrate.is_at_head(db)
    assert "Context impl" not in logs.getvalue() and "alembic" not in logs.getvalue()
