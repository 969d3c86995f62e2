"""Authentication and roles: who may call what, and how refusals look."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from atom.db.base import utcnow
from atom.db.session import Database
from atom.security import credentials
from atom.security.models import ApiKey, Role, User
from tests.conftest import MakeUser, UserWithKey


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


async def test_no_key_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/me")
    assert response.status_code == 401
    assert _error(response)["code"] == "API_KEY_REQUIRED"
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "presented",
    ["garbage", "atom_short_x", "atom_000000000000_" + "x" * 43, "Bearer"],
    ids=["garbage", "malformed", "unknown-prefix", "word"],
)
async def test_invalid_keys_are_401(client: httpx.AsyncClient, admin: UserWithKey, presented: str) -> None:
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {presented}"})
    assert response.status_code == 401
    assert _error(response)["code"] == "INVALID_API_KEY"


async def test_right_prefix_wrong_secret_is_401(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    tampered = admin.key[:-4] + ("AAAA" if not admin.key.endswith("AAAA") else "BBBB")
    response = await client.get("/api/me", headers={"Authorization": f"Bearer {tampered}"})
    assert response.status_code == 401
    assert _error(response)["code"] == "INVALID_API_KEY"


async def test_both_headers_work(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    assert (await client.get("/api/me", headers={"X-API-Key": admin.key})).json()["username"] == admin.username
    assert (await client.get("/api/me", headers=admin.headers)).json()["username"] == admin.username


async def test_revoked_key_is_401(client: httpx.AsyncClient, admin: UserWithKey, make_user: MakeUser) -> None:
    other = await make_user(Role.OPERATOR)
    listed = (await client.get("/api/keys", headers=other.headers)).json()["items"]
    assert len(listed) == 1
    revoked = await client.delete(f"/api/keys/{listed[0]['id']}", headers=other.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    response = await client.get("/api/me", headers=other.headers)
    assert response.status_code == 401
    assert _error(response)["code"] == "INVALID_API_KEY"


async def test_deactivated_user_key_is_401(client: httpx.AsyncClient, admin: UserWithKey, make_user: MakeUser) -> None:
    viewer = await make_user(Role.VIEWER)
    assert (await client.get("/api/me", headers=viewer.headers)).status_code == 200
    patched = await client.patch(f"/api/users/{viewer.id}", json={"is_active": False}, headers=admin.headers)
    assert patched.status_code == 200
    assert (await client.get("/api/me", headers=viewer.headers)).status_code == 401


@pytest.mark.parametrize("role", list(Role))
async def test_role_matrix_on_admin_routes(client: httpx.AsyncClient, make_user: MakeUser, role: Role) -> None:
    caller = await make_user(role)
    calls = [
        ("GET", "/api/users", None),
        ("POST", "/api/users", {"username": f"new-{role.value}", "role": "viewer"}),
        ("GET", "/api/secrets", None),
        ("GET", "/api/keys?all_users=true", None),
    ]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=caller.headers)
        if role is Role.ADMIN:
            assert response.status_code in (200, 201), (method, path, response.text)
        else:
            assert response.status_code == 403, (method, path)
            error = _error(response)
            assert error["code"] == "ROLE_REQUIRED"
            assert error["details"] == {"required_role": "admin", "role": role.value}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR, Role.APPROVER])
async def test_every_role_reads_its_own_identity_and_audit(
    client: httpx.AsyncClient, make_user: MakeUser, role: Role
) -> None:
    caller = await make_user(role)
    assert (await client.get("/api/me", headers=caller.headers)).json()["role"] == role.value
    assert (await client.get("/api/audit", headers=caller.headers)).status_code == 200


async def test_non_admin_cannot_touch_other_users_keys(
    client: httpx.AsyncClient, admin: UserWithKey, make_user: MakeUser
) -> None:
    operator = await make_user(Role.OPERATOR)
    admin_key_id = (await client.get("/api/keys", headers=admin.headers)).json()["items"][0]["id"]
    assert (await client.delete(f"/api/keys/{admin_key_id}", headers=operator.headers)).status_code == 403
    created = await client.post("/api/keys", json={"name": "x", "user_id": admin.id}, headers=operator.headers)
    assert created.status_code == 403


def _dummy_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)


async def test_every_api_route_requires_a_key(app: FastAPI, client: httpx.AsyncClient) -> None:
    """Structural: a route added later under /api cannot forget authentication."""
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/api"):
            continue
        for method in operations:
            response = await client.request(method.upper(), _dummy_path(path))
            assert response.status_code == 401, f"{method} {path} answered {response.status_code} without a key"
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/health/metrics", "/openapi.json", "/docs"])
async def test_public_routes_need_no_key(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200


async def test_last_used_is_recorded_and_only_a_hash_is_stored(
    client: httpx.AsyncClient, app: FastAPI, admin: UserWithKey, db: Database
) -> None:
    async with db.sessionmaker() as s:
        key = (await s.scalars(select(ApiKey).where(ApiKey.user_id == admin.id))).one()
        assert key.last_used_at is None
        assert key.key_hash == hashlib.sha256(admin.key.encode()).hexdigest()
        assert admin.key not in (key.key_hash, key.prefix, key.name)
    before = utcnow()
    assert (await client.get("/api/me", headers=admin.headers)).status_code == 200
    await app.state.key_uses.drain()  # recorded after the answer, in a transaction of its own
    async with db.sessionmaker() as s:
        key = (await s.scalars(select(ApiKey).where(ApiKey.user_id == admin.id))).one()
        assert key.last_used_at is not None and key.last_used_at >= before.replace(microsecond=0)


async def test_duplicate_username_is_409(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    body = {"username": "dup", "role": "viewer", "password": "correct horse battery"}
    assert (await client.post("/api/users", json=body, headers=admin.headers)).status_code == 201
    response = await client.post("/api/users", json=body, headers=admin.headers)
    assert response.status_code == 409
    assert _error(response)["code"] == "USER_EXISTS"


async def test_passwords_are_argon2_hashed(client: httpx.AsyncClient, admin: UserWithKey, db: Database) -> None:
    body = {"username": "pw", "role": "viewer", "password": "correct horse battery"}
    assert (await client.post("/api/users", json=body, headers=admin.headers)).status_code == 201
    async with db.sessionmaker() as s:
        stored = (await s.scalars(select(User.password_hash).where(User.username == "pw"))).one()
    assert stored is not None and stored.startswith("$argon2")
    assert credentials.verify_password(stored, "correct horse battery")
    assert not credentials.verify_password(stored, "wrong horse battery")


async def test_invalid_user_input_is_422(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    response = await client.post("/api/users", json={"username": "x", "role": "emperor"}, headers=admin.headers)
    assert response.status_code == 422
    assert "body.role" in [f["field"] for f in _error(response)["details"]["fields"]]  # type: ignore[index]


async def test_key_of_deleted_row_state_is_rejected_even_if_cached_elsewhere(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database
) -> None:
    async with db.session_scope() as s:
        await s.execute(update(ApiKey).where(ApiKey.user_id == admin.id).values(revoked_at=utcnow()))
    assert (await client.get("/api/me", headers=admin.headers)).status_code == 401
