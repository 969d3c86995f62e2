"""Sign-in, sessions, CSRF, lock-out and the session cookie on /api (in-process, both databases)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from atom.audit.models import AuditEvent
from atom.db.base import utcnow
from atom.db.session import Database
from atom.security.models import Role, WebSession
from atom.security.sessions import SESSION_COOKIE, hash_token
from tests.conftest import MakeUser
from tests.web.conftest import MakeWebUser, csrf_of, page_csrf, sign_in


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"web_login_max_failures": 3}


async def _audit(db: Database, action: str) -> list[AuditEvent]:
    async with db.session_scope() as s:
        return list((await s.scalars(select(AuditEvent).where(AuditEvent.action == action))).all())


async def test_sign_in_sets_a_strict_cookie_and_sign_out_revokes_it(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database
) -> None:
    user = await web_user(Role.OPERATOR)
    assert (await client.get("/proposals")).headers["location"] == "/signin?next=%2Fproposals"
    response = await sign_in(client, user, next_path="/proposals")
    assert response.headers["location"] == "/proposals"
    cookie = next(h for h in response.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain HTTP here; `auto` sets it behind HTTPS
    token = client.cookies[SESSION_COOKIE]
    async with db.session_scope() as s:
        row = await s.scalar(select(WebSession).where(WebSession.token_hash == hash_token(token)))
    assert row is not None and row.user_id == user.id and row.revoked_at is None  # only the hash is stored

    page = await client.get("/")
    assert page.status_code == 200 and user.username in page.text
    assert (await client.get("/api/me")).json()["username"] == user.username

    out = await client.post("/signout", data={"csrf_token": csrf_of(page.text)})
    assert out.status_code == 303 and out.headers["location"] == "/signin?flash=signed_out"
    assert [e.decision for e in await _audit(db, "web.sign_out")] == ["done"]
    # The old cookie, replayed, is worthless: pages send to sign-in, the API answers 401.
    replay = httpx.Cookies({SESSION_COOKIE: token})
    client.cookies = replay
    assert (await client.get("/")).headers["location"] == "/signin?next=%2F"
    assert (await client.get("/api/me")).status_code == 401


async def test_wrong_password_is_refused_audited_and_keeps_the_username(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database
) -> None:
    user = await web_user(Role.VIEWER)
    form = await client.get("/signin")
    response = await client.post(
        "/signin", data={"csrf_token": csrf_of(form.text), "username": user.username, "password": "nope"}
    )
    assert response.status_code == 401
    assert "Wrong username or password" in response.text
    assert f'value="{user.username}"' in response.text and "nope" not in response.text
    assert SESSION_COOKIE not in client.cookies
    denied = await _audit(db, "web.sign_in")
    assert [(e.decision, e.resource_id) for e in denied] == [("denied", user.id)]


async def test_missing_fields_come_back_beside_the_fields_with_input_kept(
    client: httpx.AsyncClient, web_user: MakeWebUser
) -> None:
    form = await client.get("/signin")
    response = await client.post(
        "/signin", data={"csrf_token": csrf_of(form.text), "username": "kim<b>", "password": ""}
    )
    assert response.status_code == 422
    assert 'id="e-password"' in response.text and "Enter your password." in response.text
    assert 'aria-describedby="e-password"' in response.text
    assert 'value="kim&lt;b&gt;"' in response.text  # kept, and escaped


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database
) -> None:
    user = await web_user(Role.ADMIN)
    for _ in range(3):
        form = await client.get("/signin")
        bad = await client.post(
            "/signin", data={"csrf_token": csrf_of(form.text), "username": user.username, "password": "guess"}
        )
        assert bad.status_code == 401
    form = await client.get("/signin")
    right = await client.post(
        "/signin", data={"csrf_token": csrf_of(form.text), "username": user.username, "password": user.password}
    )
    assert right.status_code == 401 and "Too many failed sign-ins" in right.text
    assert SESSION_COOKIE not in client.cookies
    lockouts = await _audit(db, "web.lockout")
    assert [(e.decision, e.resource_id) for e in lockouts] == [("locked", user.id)]
    # Attempts while locked are not recorded again (a flood must not grow the audit log).
    assert len(await _audit(db, "web.sign_in")) == 3


async def test_the_sign_in_form_needs_its_csrf_token(client: httpx.AsyncClient, web_user: MakeWebUser) -> None:
    user = await web_user(Role.VIEWER)
    await client.get("/signin")  # the cookie half is set; the field half is missing
    response = await client.post("/signin", data={"username": user.username, "password": user.password})
    assert response.status_code == 403 and "Not allowed" in response.text
    assert SESSION_COOKIE not in client.cookies


async def test_signing_in_never_redirects_off_site(client: httpx.AsyncClient, web_user: MakeWebUser) -> None:
    user = await web_user(Role.VIEWER)
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"):
        client.cookies.clear()
        response = await sign_in(client, user, next_path=target)
        assert response.headers["location"] == "/", target


async def test_an_expired_session_sends_to_sign_in_keeping_the_target(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database
) -> None:
    user = await web_user(Role.VIEWER)
    await sign_in(client, user)
    assert (await client.get("/proposals?status=all")).status_code == 200
    async with db.session_scope() as s:
        await s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    response = await client.get("/proposals?status=all")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin?next=%2Fproposals%3Fstatus%3Dall"


async def test_an_idle_session_expires(client: httpx.AsyncClient, web_user: MakeWebUser, db: Database) -> None:
    user = await web_user(Role.VIEWER)
    await sign_in(client, user)
    async with db.session_scope() as s:
        await s.execute(update(WebSession).values(last_seen_at=utcnow() - timedelta(minutes=61)))
    assert (await client.get("/")).status_code == 303


async def test_the_cookie_authenticates_the_api_with_csrf_for_writes(
    client: httpx.AsyncClient, web_user: MakeWebUser, make_user: MakeUser
) -> None:
    user = await web_user(Role.ADMIN)
    await sign_in(client, user)
    csrf = await page_csrf(client)
    assert (await client.get("/api/me")).status_code == 200
    body = {"name": "from-the-dashboard"}
    refused = await client.post("/api/agents", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "CSRF_FAILED"
    wrong = await client.post("/api/agents", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403
    made = await client.post("/api/agents", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code in (200, 201), made.text
    cross = await client.get("/api/me", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    # A presented API key is always what counts: an invalid one is 401 even with a valid cookie.
    assert (await client.get("/api/me", headers={"Authorization": "Bearer atom_bad"})).status_code == 401
    other = await make_user(Role.VIEWER)
    assert (await client.get("/api/me", headers=other.headers)).json()["username"] == other.username


async def test_pages_carry_a_strict_content_security_policy(client: httpx.AsyncClient, web_user: MakeWebUser) -> None:
    for response in (await client.get("/signin"),):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "<script>" not in response.text and " style=" not in response.text
