"""Error bodies, validation, body limits and one transaction per request."""

from __future__ import annotations

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select

from atom.db.session import Database
from atom.deps import SessionDep
from atom.security import service as security
from atom.security.models import Role, User
from atom.security.schemas import UserCreate
from tests.conftest import UserWithKey


def _assert_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    return dict(body["error"])


@pytest.fixture
def failing_app(app: FastAPI) -> FastAPI:
    """The real app plus two test-only routes that fail on purpose."""
    router = APIRouter()

    @router.get("/test-only/boom")
    async def boom() -> dict[str, str]:
        raise RuntimeError("secret internal detail")

    @router.post("/test-only/half-write")
    async def half_write(session: SessionDep) -> dict[str, str]:
        await security.create_user(session=session, user_in=UserCreate(username="half", role=Role.VIEWER))
        raise RuntimeError("failed after writing")

    app.include_router(router)
    return app


async def test_unknown_route_is_404(client: httpx.AsyncClient) -> None:
    error = _assert_error(await client.get("/nothing/here"), 404, "NOT_FOUND")
    assert "/nothing/here" in str(error["message"])


async def test_wrong_method_is_405(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    response = await client.put("/api/me", headers=admin.headers)
    error = _assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert error["details"] == {"allowed_methods": ["GET"]}
    assert "PUT" in str(error["message"]) and "/api/me" in str(error["message"])
    assert response.headers["allow"] == "GET"


async def test_malformed_json_is_422(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    response = await client.post(
        "/api/users",
        content=b'{"username": "x", "role": ',
        headers={**admin.headers, "content-type": "application/json"},
    )
    error = _assert_error(response, 422, "VALIDATION_ERROR")
    field = error["details"]["fields"][0]  # type: ignore[index]
    assert field["type"] == "json_invalid" and field["field"] == "body" and field["position"] == 26
    assert "Malformed JSON at character 26" in str(error["message"])


async def test_wrong_types_name_the_field(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    response = await client.post("/api/users", json={"username": ["x"], "role": "viewer"}, headers=admin.headers)
    error = _assert_error(response, 422, "VALIDATION_ERROR")
    assert [f["field"] for f in error["details"]["fields"]] == ["body.username"]  # type: ignore[index]
    assert "body.username: Input should be a valid string" in str(error["message"])


async def test_bad_query_parameter_is_422(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    error = _assert_error(await client.get("/api/users?limit=0", headers=admin.headers), 422, "VALIDATION_ERROR")
    assert error["details"]["fields"][0]["field"] == "query.limit"  # type: ignore[index]


async def test_naive_timestamps_are_422_naming_the_field(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    """Times on the wire are timezone-aware: a filter without an offset is refused, not guessed."""
    for name in ("since", "until"):
        response = await client.get(f"/api/audit?{name}=2026-01-01T10:00:00", headers=admin.headers)
        error = _assert_error(response, 422, "VALIDATION_ERROR")
        assert [f["field"] for f in error["details"]["fields"]] == [f"query.{name}"]  # type: ignore[index]
        aware = await client.get(f"/api/audit?{name}=2026-01-01T10:00:00%2B02:00", headers=admin.headers)
        assert aware.status_code == 200


@pytest.mark.parametrize("incoming", ["x" * 65, "has space", "semi;colon", "ünïcode"])
async def test_unusable_request_ids_are_replaced(client: httpx.AsyncClient, incoming: str) -> None:
    response = await client.get("/health/ready", headers={"X-Request-ID": incoming.encode()})
    returned = response.headers["x-request-id"]
    assert returned != incoming and len(returned) == 32 and int(returned, 16) >= 0


async def test_oversized_body_is_413_and_writes_nothing(
    client: httpx.AsyncClient, admin: UserWithKey, db: Database
) -> None:
    huge = {"username": "big", "role": "viewer", "email": "x" * 2_000_000}
    _assert_error(await client.post("/api/users", json=huge, headers=admin.headers), 413, "PAYLOAD_TOO_LARGE")

    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"username": "big2", "role": "viewer", "email": "'
        for _ in range(40):
            yield b"y" * 65536
        yield b'"}'

    streamed = await client.post(
        "/api/users", content=chunks(), headers={**admin.headers, "content-type": "application/json"}
    )
    _assert_error(streamed, 413, "PAYLOAD_TOO_LARGE")
    async with db.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User).where(User.username.in_(["big", "big2"]))) == 0


async def test_unexpected_error_is_500_without_internals(failing_app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://atom.test") as client:
        response = await client.get("/test-only/boom")
    error = _assert_error(response, 500, "INTERNAL_ERROR")
    assert "secret internal detail" not in response.text
    assert error["details"]["request_id"] == response.headers["x-request-id"]  # type: ignore[index]


async def test_failed_request_leaves_no_half_written_row(failing_app: FastAPI, db: Database) -> None:
    transport = httpx.ASGITransport(app=failing_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://atom.test") as client:
        response = await client.post("/test-only/half-write")
    assert response.status_code == 500
    async with db.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(User).where(User.username == "half")) == 0


async def test_pagination_walks_every_row_once(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    for i in range(7):
        await client.post("/api/users", json={"username": f"p{i}", "role": "viewer"}, headers=admin.headers)
    seen: list[str] = []
    cursor = None
    while True:
        url = "/api/users?limit=3" + (f"&cursor={cursor}" if cursor else "")
        body = (await client.get(url, headers=admin.headers)).json()
        seen.extend(u["username"] for u in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted([admin.username] + [f"p{i}" for i in range(7)])
    assert len(seen) == len(set(seen))


async def test_times_are_utc_iso(client: httpx.AsyncClient, admin: UserWithKey) -> None:
    created_at = (await client.get("/api/me", headers=admin.headers)).json()["created_at"]
    assert created_at.endswith("Z") or created_at.endswith("+00:00")
