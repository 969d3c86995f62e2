"""FastAPI dependencies shared by every domain's routes: the database session and the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from atom.config import Settings
from atom.db.session import Database
from atom.errors import Forbidden, Unauthorized
from atom.pagination import CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT
from atom.security import credentials
from atom.security import service as security_service
from atom.security import sessions as web_sessions
from atom.security.key_use import KeyUseRecorder
from atom.security.models import Role
from atom.security.principal import Principal
from atom.security.principal_cache import principal_cache

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <api key>`")
_header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="Or `X-API-Key: <api key>`")
# Called by `current_principal` rather than declared as its dependencies: each dependency FastAPI
# resolves costs every request ~10 us, and these two are resolved once per reference to the
# principal. The OpenAPI document names them for every /api operation (`atom.openapi`).
API_KEY_SCHEMES = (_bearer, _header_key)


async def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back when it raises.

    A request answered without the database (a key from the principal cache, a cached decision)
    began no transaction: its commit and close are skipped, each an await through SQLAlchemy's
    greenlet bridge (~70 us together) for nothing."""
    db: Database = request.app.state.db
    session = db.sessionmaker()
    try:
        yield session
        if session.in_transaction():
            await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        if _holds_anything(session):
            await asyncio.shield(session.close())  # like `async with session`: a cancelled request still closes


def _holds_anything(session: AsyncSession) -> bool:
    """Whether `close` has anything to release: a transaction (its connection) or objects to detach."""
    return session.in_transaction() or bool(session.identity_map) or bool(session.new) or bool(session.deleted)


# scope="function": commit before the response is sent, so a failed commit is never reported as success.
SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]


async def current_principal(request: Request, session: SessionDep) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    bearer = await _bearer(request)
    presented = bearer.credentials if bearer is not None else await _header_key(request)
    if not presented and web_sessions.SESSION_COOKIE in request.cookies:
        # The dashboard's session cookie (only when no key is presented; CSRF checked for writes).
        principal = await web_sessions.api_principal(
            session=session,
            token=request.cookies[web_sessions.SESSION_COOKIE],
            method=request.method,
            csrf_header=request.headers.get(web_sessions.CSRF_HEADER),
            fetch_site=request.headers.get("sec-fetch-site"),
            settings=request.app.state.settings,
        )
        request.state.principal = principal
        return principal
    if not presented:
        raise Unauthorized(
            "An API key is required: send `Authorization: Bearer <key>` or `X-API-Key`.",
            code="API_KEY_REQUIRED",
        )
    principal = await _authenticate(session, presented)
    if principal.needs_touch and principal.key_id is not None:
        # Off the request's transaction and connection, at most once per interval; never awaited here.
        recorder: KeyUseRecorder = request.app.state.key_uses
        recorder.record(request.app.state.db, principal.key_id)
    request.state.principal = principal
    return principal


async def _authenticate(session: AsyncSession, presented: str) -> Principal:
    """The key's principal: from the principal cache when it may be trusted, else from the database."""
    token = principal_cache.token()
    if token is None:
        return await security_service.authenticate_key(session=session, plaintext=presented)
    key_hash = credentials.hash_key(presented)
    principal = principal_cache.lookup(key_hash, token)
    if principal is None:
        principal = await security_service.authenticate_key(session=session, plaintext=presented)
        # cached as due for a touch: the recorder writes at most once per interval per key anyway
        principal_cache.store(key_hash, replace(principal, needs_touch=True), token)
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require_role(minimum: Role) -> Callable[..., Coroutine[Any, Any, Principal]]:
    async def check(principal: PrincipalDep) -> Principal:
        if not principal.has_role(minimum):
            raise Forbidden(
                f"This needs the {minimum.value} role or higher; you are {principal.role.value}.",
                code="ROLE_REQUIRED",
                details={"required_role": minimum.value, "role": principal.role.value},
            )
        return principal

    return check


ViewerDep = Annotated[Principal, Depends(require_role(Role.VIEWER))]
OperatorDep = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
ApproverDep = Annotated[Principal, Depends(require_role(Role.APPROVER))]
AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]

LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
CursorQuery = Annotated[
    str | None,
    Query(max_length=36, pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page (an id)."),
]
DEFAULT_PAGE_LIMIT = DEFAULT_LIMIT
