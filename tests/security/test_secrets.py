"""Secrets are encrypted at rest and never appear in a response, a header or a log line."""

from __future__ import annotations

import os
import stat

import httpx
import pytest
from sqlalchemy import select

from atom.config import Settings
from atom.db.session import Database
from atom.main import create_app
from atom.security import secrets_store
from atom.security.models import Role, Secret
from tests.conftest import MakeUser, UserWithKey
from tests.support.logs import captured_logs

SECRET_VALUE = "xoxb-very-distinctive-4242-value"
ROTATED_VALUE = "xoxb-rotated-distinctive-7777-value"


async def test_secret_lifecycle_never_leaks(settings: Settings, db: Database, admin: UserWithKey) -> None:
    with captured_logs(settings) as logs:
        app = create_app(settings, db=db, configure_logs=False)
        transport = httpx.ASGITransport(app=app)
        seen: list[str] = []
        async with httpx.AsyncClient(transport=transport, base_url="http://atom.test") as client:

            async def call(method: str, path: str, body: object = None) -> httpx.Response:
                response = await client.request(method, path, json=body, headers=admin.headers)
                seen.append(response.text)
                seen.extend(f"{k}: {v}" for k, v in response.headers.items())
                return response

            created = await call("POST", "/api/secrets", {"name": "slack/bot", "value": SECRET_VALUE})
            assert created.status_code == 201
            assert created.json()["version"] == 1
            assert set(created.json()) == {"name", "version", "created_at", "updated_at"}
            duplicate = await call("POST", "/api/secrets", {"name": "slack/bot", "value": SECRET_VALUE})
            assert duplicate.status_code == 409
            listed = await call("GET", "/api/secrets")
            assert [item["name"] for item in listed.json()["items"]] == ["slack/bot"]
            rotated = await call("PUT", "/api/secrets/slack/bot", {"value": ROTATED_VALUE})
            assert rotated.status_code == 200 and rotated.json()["version"] == 2
            audit_page = await call("GET", "/api/audit?resource_type=secret")
            assert [e["action"] for e in audit_page.json()["items"]] == ["secret.rotate", "secret.create"]

            async with db.sessionmaker() as s:
                row = (await s.scalars(select(Secret).where(Secret.name == "slack/bot"))).one()
                assert SECRET_VALUE not in row.ciphertext and ROTATED_VALUE not in row.ciphertext
                cipher = secrets_store.load_cipher(settings)
                assert await secrets_store.reveal(session=s, cipher=cipher, name="slack/bot") == ROTATED_VALUE

            deleted = await call("DELETE", "/api/secrets/slack/bot")
            assert deleted.status_code == 204
            missing = await call("PUT", "/api/secrets/slack/bot", {"value": "x"})
            assert missing.status_code == 404

    everything = "\n".join(seen) + logs.getvalue()
    assert logs.getvalue(), "expected request log lines"
    assert SECRET_VALUE not in everything
    assert ROTATED_VALUE not in everything


async def test_secrets_are_admin_only(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    operator = await make_user(Role.OPERATOR)
    response = await client.post("/api/secrets", json={"name": "a", "value": "b"}, headers=operator.headers)
    assert response.status_code == 403


@pytest.mark.parametrize("name", ["", "has space", "x" * 201, "semi;colon"])
async def test_bad_secret_names_are_422(client: httpx.AsyncClient, admin: UserWithKey, name: str) -> None:
    response = await client.post("/api/secrets", json={"name": name, "value": "v"}, headers=admin.headers)
    assert response.status_code == 422
    assert "v" not in response.json()["error"]["message"].split()


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"secret_key": None}


async def test_key_file_is_created_private_and_reused(settings: Settings) -> None:
    assert not settings.key_file.exists()
    first = secrets_store.load_cipher(settings)
    mode = stat.S_IMODE(os.stat(settings.key_file).st_mode)
    assert mode == 0o600
    token = first.encrypt(b"hello")
    assert secrets_store.load_cipher(settings).decrypt(token) == b"hello"
