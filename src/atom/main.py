"""`create_app(settings)`: the one way to build the Atom web application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from atom import __version__, heap, openapi
from atom.api import include_api_routers
from atom.chat import routing as chat_routing
from atom.config import Settings
from atom.db.session import Database
from atom.deps import API_KEY_SCHEMES
from atom.errors import AtomError, error_body
from atom.events.bus import build_bus, reset_bus, set_bus
from atom.governance.cache import decision_cache
from atom.llm.gateway import close_gateway
from atom.memory import app as memory_app
from atom.observability.health import router as health_router
from atom.observability.logging import configure_logging, get_logger
from atom.observability.middleware import RequestContextMiddleware
from atom.process import check_startup
from atom.registries import ensure_registries
from atom.security.key_use import KeyUseRecorder
from atom.security.principal_cache import principal_cache
from atom.training import run_tasks as training_runs
from atom.validation import EdgeValidationMiddleware
from atom.web import routes as web_routes
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


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (the router's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(request.scope["path"]) and route.methods:
            methods.update(route.methods)
    return sorted(methods)


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
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and message == "Not Found":
            message = f"No route {request.method} {request.url.path}."
        elif exc.status_code == 405 and message == "Method Not Allowed":
            allowed = _allowed_methods(request) or [m.strip() for m in headers.get("Allow", "").split(",") if m.strip()]
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed on {request.url.path}" + (
                f"; use {', '.join(allowed)}." if allowed else "."
            )
            details = {"allowed_methods": allowed}
        return JSONResponse(error_body(code, message, details), exc.status_code, headers=headers or None)


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
            principal_cache.configure(ttl_s=settings.auth_cache_ttl_s, database_url=database.engine.url)
            await workflows_app.start_in_app(app, database, settings)  # workflow engine: worker pool + scheduler
            await memory_app.start(app, database, settings)  # embedding model checked here; ingestion jobs
            log.info("atom started", version=__version__, database=database.dialect, events=type(bus).__name__)
            heap.settle()
            yield
        finally:
            await training_runs.stop(app.state)  # scenario runs give their sessions back
            await memory_app.stop(app)
            await workflows_app.stop_in_app(app)
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
    database_url = db.engine.url if db is not None else settings.resolved_database_url
    principal_cache.configure(ttl_s=settings.auth_cache_ttl_s, database_url=database_url)
    install_error_handlers(app)
    openapi.install(app, api_security=API_KEY_SCHEMES)  # every operation's error answers; the key under /api
    app.add_middleware(EdgeValidationMiddleware)  # inside the request context: its 422s are counted and logged
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    app.include_router(health_router)
    # /hooks: signed webhooks, outside /api (no API key; see docs/workflows.md). Matched right after the
    # probes: routing tries each router in turn, and a webhook sender should not pay for the whole API's.
    app.include_router(webhooks_router)
    include_api_routers(app)
    registries = ensure_registries()  # the catalogue, tools, workflow actions and executors of this process
    app.state.registries = registries
    # agent plans run later (a supervisor connecting) use this app's LLM gateway
    chat_routing.install(registries.executors, app.state)
    web_routes.install(app)  # the dashboard: pages outside /api, session sign-in (docs/dashboard.md)
    return app
