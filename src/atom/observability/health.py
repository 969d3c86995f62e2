"""Liveness, readiness and the Prometheus scrape. No authentication: probes and scrapers use them."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from atom.config import Settings
from atom.db import migrate
from atom.db.session import Database

router = APIRouter(prefix="/health", tags=["health"])


class CheckResult(BaseModel):
    ok: bool
    detail: str
    ms: float


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, CheckResult]


class Liveness(BaseModel):
    status: Literal["alive"]
    pid: int


async def _timed(name: str, check: Callable[[], Awaitable[str]]) -> tuple[str, CheckResult]:
    started = time.perf_counter()
    try:
        detail = await check()
        ok = True
    except Exception as exc:  # a readiness probe reports failures, it never raises them
        detail = f"{type(exc).__name__}: {exc}"[:300]
        ok = False
    return name, CheckResult(ok=ok, detail=detail, ms=round((time.perf_counter() - started) * 1000, 2))


async def _database_and_migrations(db: Database, timeout: float) -> dict[str, CheckResult]:
    """One round trip answers both: reading the schema version is the ping."""
    started = time.perf_counter()
    try:
        current = await asyncio.wait_for(_schema_version(db), timeout=timeout)
    except Exception as exc:
        detail = f"no answer within {timeout}s" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        failed = CheckResult(ok=False, detail=detail[:300], ms=_ms(started))
        return {"database": failed, "migrations": CheckResult(ok=False, detail="database unreachable", ms=0.0)}
    elapsed = _ms(started)
    database = CheckResult(ok=True, detail=f"{db.dialect} answered", ms=elapsed)
    heads = migrate.head_revisions()
    if current == heads:
        return {"database": database, "migrations": CheckResult(ok=True, detail=f"at head {sorted(heads)}", ms=elapsed)}
    detail = f"at {sorted(current) or 'no revision'}, head is {sorted(heads)}; run `atom-os db upgrade`"
    return {"database": database, "migrations": CheckResult(ok=False, detail=detail, ms=elapsed)}


async def _schema_version(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        try:
            rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:  # no table yet: connected, but never migrated
            return set()
        return set(rows.scalars())


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


async def _check_disk(settings: Settings) -> str:
    target = settings.data_dir if settings.data_dir.exists() else settings.data_dir.parent
    free_gb = shutil.disk_usage(target).free / 1024**3
    if free_gb < settings.health_disk_threshold_gb:
        raise RuntimeError(f"{free_gb:.2f} GiB free, below {settings.health_disk_threshold_gb} GiB")
    return f"{free_gb:.1f} GiB free"


async def _check_redis(url: str, timeout: float) -> str:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        await asyncio.wait_for(client.ping(), timeout=timeout)
    finally:
        await client.aclose()
    return "answered"


@router.get("/live", response_model=Liveness)
async def live() -> Liveness:
    return Liveness(status="alive", pid=os.getpid())


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    db: Database = request.app.state.db
    others = [_timed("disk", lambda: _check_disk(settings))]
    if settings.redis_url:
        url = settings.redis_url
        others.append(_timed("redis", lambda: _check_redis(url, settings.health_redis_timeout_s)))
    database_checks = asyncio.ensure_future(_database_and_migrations(db, settings.health_db_timeout_s))
    rest = await asyncio.gather(*others)
    results = {**(await database_checks), **dict(rest)}
    all_ok = all(result.ok for result in results.values())
    body = Readiness(status="ready" if all_ok else "not_ready", checks=results)
    return JSONResponse(body.model_dump(), status_code=200 if all_ok else 503)


@router.get("/metrics", response_class=Response)
async def prometheus_metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
