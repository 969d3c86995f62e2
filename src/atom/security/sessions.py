"""Dashboard sign-in: passwords checked with argon2, server-side session rows, rate limit and lock-out.

The browser holds a random token in an HttpOnly cookie; the database holds its SHA-256, so a
leaked database row cannot be replayed as a cookie. Each session also carries a CSRF token that
every form and every state-changing request must echo (docs/dashboard.md). Keyword-only, session
first; functions flush, callers commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atom.audit import service as audit
from atom.config import Settings
from atom.db.base import utcnow
from atom.errors import Forbidden, Unauthorized
from atom.security import credentials
from atom.security import service as security_service
from atom.security.models import LoginAttempt, Role, User, WebSession
from atom.security.principal import Principal

SESSION_COOKIE = "atom_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Recording "last seen" on every request would turn every page view into a write.
LAST_SEEN_RESOLUTION = timedelta(seconds=60)
MAX_USERNAME = 64
MAX_PASSWORD = 1024


@cache
def _dummy_hash() -> str:
    """Verified when the username is unknown, so a wrong name costs the same time as a wrong password."""
    return credentials.hash_password(secrets.token_hex(16))


class SignInRefused(Unauthorized):
    """Wrong username or password, or the account is locked; one message for every cause."""


class SessionExpired(Unauthorized):
    pass


class CsrfFailed(Forbidden):
    pass


@dataclass(frozen=True)
class SignedIn:
    session_id: str
    token: str  # goes into the cookie; never stored
    csrf_token: str
    principal: Principal


@dataclass(frozen=True)
class ActiveSession:
    session_id: str
    csrf_token: str
    principal: Principal


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_match(presented: str | None, expected: str) -> bool:
    return bool(presented) and hmac.compare_digest(str(presented).encode(), expected.encode())


def _window_start(settings: Settings) -> datetime:
    return utcnow() - timedelta(minutes=settings.web_login_window_minutes)


async def _recent_failures(
    session: AsyncSession, *, settings: Settings, username: str | None, address: str | None
) -> int:
    """Failures in the window (for a username: only those after its last successful sign-in)."""
    since = _window_start(settings)
    stmt = (
        select(func.count())
        .select_from(LoginAttempt)
        .where(LoginAttempt.succeeded.is_(False), LoginAttempt.created_at > since)
    )
    if username is not None:
        last_ok = await session.scalar(
            select(func.max(LoginAttempt.created_at)).where(
                LoginAttempt.username == username, LoginAttempt.succeeded.is_(True), LoginAttempt.created_at > since
            )
        )
        stmt = stmt.where(LoginAttempt.username == username)
        if last_ok is not None:
            stmt = stmt.where(LoginAttempt.created_at > last_ok)
    if address is not None:
        stmt = stmt.where(LoginAttempt.address == address)
    return int(await session.scalar(stmt) or 0)


async def is_locked(*, session: AsyncSession, username: str, address: str, settings: Settings) -> bool:
    """True while the username has too many recent failures, or the address far too many."""
    name = username.strip().lower()[:MAX_USERNAME]
    if await _recent_failures(session, settings=settings, username=name, address=None) >= (
        settings.web_login_max_failures
    ):
        return True
    return await _recent_failures(session, settings=settings, username=None, address=address) >= (
        settings.web_login_ip_max_failures
    )


async def sign_in(
    *, session: AsyncSession, username: str, password: str, address: str, user_agent: str, settings: Settings
) -> SignedIn:
    """Check the password and open a session, or raise SignInRefused (the caller records the failure).

    A locked username or blocked address is refused before the password is even checked.
    """
    refused = SignInRefused("Wrong username or password, or too many attempts.", code="SIGN_IN_REFUSED")
    name = username.strip()
    if not name or len(name) > MAX_USERNAME or len(password) > MAX_PASSWORD:
        raise refused
    if await is_locked(session=session, username=name, address=address, settings=settings):
        raise SignInRefused(
            "Too many failed sign-ins; try again later.", code="SIGN_IN_LOCKED", details={"locked": True}
        )
    user = await session.scalar(select(User).where(User.username == name))
    # argon2 costs tens of milliseconds of CPU on purpose: off the event loop (it releases the GIL).
    if user is None or not user.password_hash:
        await asyncio.to_thread(lambda: credentials.verify_password(_dummy_hash(), password))
        raise refused
    if not await asyncio.to_thread(credentials.verify_password, user.password_hash, password) or not user.is_active:
        raise refused
    now = utcnow()
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    row = WebSession(
        user_id=user.id,
        token_hash=hash_token(token),
        csrf_token=csrf,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(hours=settings.web_session_hours),
        user_agent=user_agent[:200],
        address=address[:64],
    )
    session.add(row)
    session.add(LoginAttempt(username=name.lower(), address=address[:64], succeeded=True, created_at=now))
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.user(user.id),
        action="web.sign_in",
        resource_type="user",
        resource_id=user.id,
        decision="allowed",
        details={"address": address[:64]},
    )
    principal = Principal(user_id=user.id, username=user.username, role=Role(user.role))
    return SignedIn(session_id=row.id, token=token, csrf_token=csrf, principal=principal)


async def record_failure(
    *, session: AsyncSession, username: str, address: str, reason: str, settings: Settings
) -> bool:
    """Record a refused sign-in (audited); returns True when this failure locked the username.

    Attempts refused because the account is already locked are not recorded again (an attacker's
    flood must not grow the table or the audit log); the lock ends a window after the last failure.
    """
    name = username.strip().lower()[:MAX_USERNAME]
    if reason == "SIGN_IN_LOCKED":
        return False
    session.add(LoginAttempt(username=name, address=address[:64], succeeded=False, created_at=utcnow()))
    await session.flush()
    failures = await _recent_failures(session, settings=settings, username=name, address=None)
    locked = failures == settings.web_login_max_failures
    user = await session.scalar(select(User).where(User.username == username.strip()[:MAX_USERNAME]))
    await audit.record(
        session=session,
        actor=audit.Actor.user(user.id) if user is not None else audit.Actor.system(),
        action="web.sign_in",
        resource_type="user",
        resource_id=user.id if user is not None else None,
        decision="denied",
        reason="wrong username or password",
        details={"username": name, "address": address[:64], "failures": failures},
    )
    if locked:
        await audit.record(
            session=session,
            actor=audit.Actor.system(),
            action="web.lockout",
            resource_type="user",
            resource_id=user.id if user is not None else None,
            decision="locked",
            reason=f"{failures} failed sign-ins within {settings.web_login_window_minutes:g} minutes",
            details={"username": name, "address": address[:64]},
        )
    return locked


async def resolve(*, session: AsyncSession, token: str, settings: Settings) -> ActiveSession:
    """The live session a cookie token names, or SessionExpired (unknown, revoked, expired, idle, inactive user)."""
    expired = SessionExpired("Your session has expired; sign in again.", code="SESSION_EXPIRED")
    if not token or len(token) > 128:
        raise expired
    found = (
        await session.execute(
            select(WebSession, User)
            .join(User, User.id == WebSession.user_id)
            .where(WebSession.token_hash == hash_token(token))
        )
    ).first()
    if found is None:
        raise expired
    row, user = found
    now = utcnow()
    idle_limit = timedelta(minutes=settings.web_session_idle_minutes)
    if row.revoked_at is not None or row.expires_at <= now or now - row.last_seen_at > idle_limit or not user.is_active:
        raise expired
    if now - row.last_seen_at > LAST_SEEN_RESOLUTION:
        await session.execute(update(WebSession).where(WebSession.id == row.id).values(last_seen_at=now))
    principal = Principal(user_id=user.id, username=user.username, role=Role(user.role))
    return ActiveSession(session_id=row.id, csrf_token=row.csrf_token, principal=principal)


async def sign_out(*, session: AsyncSession, session_id: str) -> None:
    """Revoke the session: its cookie is worthless from now on, even if it was copied."""
    row = await session.get(WebSession, session_id)
    if row is None or row.revoked_at is not None:
        return
    row.revoked_at = utcnow()
    await session.flush()
    await audit.record(
        session=session,
        actor=audit.Actor.user(row.user_id),
        action="web.sign_out",
        resource_type="user",
        resource_id=row.user_id,
        decision="done",
    )


async def revoke_user_sessions(*, session: AsyncSession, user_id: str) -> int:
    """End every open session of a user (deactivation, role change)."""
    await security_service.get_user(session=session, user_id=user_id)
    result = await session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def api_principal(
    *,
    session: AsyncSession,
    token: str,
    method: str,
    csrf_header: str | None,
    fetch_site: str | None,
    settings: Settings,
) -> Principal:
    """The caller of an /api request that carries the session cookie instead of a key.

    A state-changing request must echo the session's CSRF token in `X-CSRF-Token`; a request the
    browser marks as cross-site is refused whatever its method (fail closed).
    """
    active = await resolve(session=session, token=token, settings=settings)
    if fetch_site is not None and fetch_site.lower() == "cross-site":
        raise CsrfFailed("Cross-site requests may not use the dashboard session.", code="CSRF_FAILED")
    if method.upper() not in SAFE_METHODS and not tokens_match(csrf_header, active.csrf_token):
        raise CsrfFailed(
            "This request needs the dashboard's CSRF token in the X-CSRF-Token header.", code="CSRF_FAILED"
        )
    return active.principal


def websocket_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str:
    """The API key a WebSocket handshake presents: `X-API-Key` or `Authorization: Bearer`.

    A key in the URL is refused, not read: URLs end up in proxy and access logs and browser history.
    A browser page authenticates its sockets with the dashboard session cookie instead.
    """
    if any(name in query for name in ("token", "key", "api_key")):
        raise Unauthorized(
            "Send the API key in the X-API-Key or Authorization header, never in the URL.", code="API_KEY_IN_URL"
        )
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return headers.get("x-api-key", "")


async def websocket_principal(
    *,
    session: AsyncSession,
    key: str,
    cookie: str | None,
    origin: str | None,
    host: str | None,
    settings: Settings,
) -> Principal:
    """A WebSocket's caller: its API key when it presents one (`websocket_key`), else the dashboard
    session cookie.

    Browsers send cookies on cross-site WebSocket handshakes and apply no CORS to them, so the
    cookie counts only when the handshake's Origin is this very site (the CSRF check of a socket).
    """
    if key:
        return await security_service.authenticate_key(session=session, plaintext=key)
    if not cookie:
        raise Unauthorized("An API key or a dashboard session is required.", code="API_KEY_REQUIRED")
    if not origin or not host or urlsplit(origin).netloc.lower() != host.lower():
        raise CsrfFailed("A dashboard session works only from a page of this site.", code="CSRF_FAILED")
    return (await resolve(session=session, token=cookie, settings=settings)).principal
