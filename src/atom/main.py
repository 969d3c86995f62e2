"""`create_app(settings)`: the one way to build the Atom web application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from atom import __version__
from atom.api import include_api_routers
from atom.chat import routing as chat_routing
from atom.config import Settings
from atom.db import migrate
from atom.db.session import Database
from atom.errors import AtomError, ConfigurationError
from atom.events.bus import build_bus, reset_bus, set_bus
from atom.governance.cache import decision_cache
from atom.llm.gateway import close_gateway
from atom.observability.health import router as health_router
from atom.observability.logging import configure_logging, get_logger
from atom.observability.middleware import RequestContextMiddleware
from atom.process import settle_heap
from atom.security.key_use import KeyUseRecorder
from atom.security.secrets_store import load_cipher
from atom.workflows import app as workflows_app
from atom.workflows.hooks import router as webhooks_router

log = get_logger("atom.app")

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    """One entry per invalid field: where (`body.username`, `query.limit`), what is wrong, the error type.

    Malformed JSON has no field; pydantic reports it at `("body", <character offset>)`, which
    would read as a field named after a number, so it is reported as `body` with the offset.
    """
    fields = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        entry: dict[str, Any] = {"field": ".".join(loc), "message": err.get("msg", ""), "type": err.get("type", "")}
        if entry["type"] == "json_invalid":
            position = loc[1] if len(loc) > 1 else None
            reason = (err.get("ctx") or {}).get("error", "")
            entry["field"] = loc[0] if loc else "body"
            entry["message"] = (
                "Malformed JSON" + (f" at character {position}" if position else "") + (f": {reason}" if reason else "")
            )
            if position is not None and position.isdigit():
                entry["position"] = int(position)
        fields.append(entry)
    return fields


def _validation_message(fields: list[dict[str, Any]]) -> str:
    shown = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
    more = f" (and {len(fields) - 3} more)" if len(fields) > 3 else ""
    return f"Invalid request: {shown}{more}."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AtomError)
    async def atom_error(request: Request, exc: AtomError) -> JSONResponse:
        if exc.status_code >= 500:
            log.error("request failed", code=exc.code, error=exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status_code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _validation_details(exc)
        return JSONResponse(
            error_body("VALIDATION_ERROR", _validation_message(fields), {"fields": fields}),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").capitalize()
        details: dict[str, Any] = {}
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route {request.method} {request.url.path}."
        elif exc.status_code == 405 and message == "Method Not Allowed":
            allowed = [m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()]
            message = f"{request.method} is not allowed on {request.url.path}" + (
                f"; use {', '.join(allowed)}." if allowed else "."
            )
            details = {"allowed_methods": allowed}
        return JSONResponse(error_body(code, message, details), exc.status_code, headers=exc.headers)


async def check_startup(db: Database, settings: Settings) -> None:
    """Fail fast with one clear line instead of serving errors."""
    load_cipher(settings)  # a wrong ATOM_SECRET_KEY or key file would otherwise surface at the first secret
    try:
        await db.ping()
    except Exception as exc:
        raise ConfigurationError(
            f"cannot reach the database ({type(exc).__name__}).",
            setting="ATOM_DATABASE_URL",
            fix="check the URL and that the server is running, or unset it to use SQLite in ATOM_DATA_DIR.",
        ) from exc
    if not await migrate.is_at_head(db):
        raise ConfigurationError(
            "the database schema is not at the latest migration.",
            setting="ATOM_DATABASE_URL",
            fix="run `atom-os init` (new install) or `atom-os db upgrade`.",
        )


def create_app(settings: Settings, *, db: Database | None = None, configure_logs: bool = True) -> FastAPI:
    if configure_logs:
        configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = db or Database(settings)
        app.state.db = database
        bus = build_bus(settings)
        try:
            await check_startup(database, settings)
            await bus.start()
            set_bus(bus)
            app.state.bus = bus
            decision_cache.ttl_s = settings.governance_cache_ttl_s
            await workflows_app.start(app, database, settings)  # workflow engine: worker pool + scheduler
            log.info("atom started", version=__version__, database=database.dialect, events=type(bus).__name__)
            settle_heap()
            yield
        finally:
            await workflows_app.stop(app)
            await app.state.key_uses.drain()
            await close_gateway(app.state)  # the LLM providers' SDK clients
            await bus.drain()
            await bus.stop()
            reset_bus()
            if db is None:
                await database.dispose()

    app = FastAPI(
        title="Atom",
        version=__version__,
        description="AI agents that automate business work under governance.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.key_uses = KeyUseRecorder()
    if db is not None:
        app.state.db = db
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    app.include_router(health_router)
    include_api_routers(app)
    chat_routing.install(app.state)  # agent plans run later (a supervisor connecting) use this app's LLM gateway
    app.include_router(webhooks_router)  # /hooks: signed webhooks, outside /api (no API key; see docs/workflows.md)
    return app
