"""Admin pages (both databases): admins only; users and roles; a key shown once; write-only secrets."""

from __future__ import annotations

import re

import httpx

from atom.config import Settings
from atom.db.session import Database
from atom.security import secrets_store
from atom.security.models import Role
from tests.web.conftest import MakeWebUser, WebUserInfo, page_csrf, sign_in


async def test_only_admins_reach_admin_pages(client: httpx.AsyncClient, web_user: MakeWebUser) -> None:
    await sign_in(client, await web_user(Role.APPROVER))
    for path in ("/admin/users", "/admin/keys", "/admin/secrets"):
        assert (await client.get(path)).status_code == 403
    csrf = await page_csrf(client, "/")
    forged = await client.post("/admin/users", data={"csrf_token": csrf, "username": "mallory", "role": "admin"})
    assert forged.status_code == 403
    assert 'href="/admin"' not in (await client.get("/")).text  # not in the nav either


async def test_users_keys_and_secrets(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings
) -> None:
    admin = await web_user(Role.ADMIN)
    await sign_in(client, admin)
    csrf = await page_csrf(client, "/admin/users")

    bad = await client.post(
        "/admin/users", data={"csrf_token": csrf, "username": "no spaces<", "role": "operator", "password": "short"}
    )
    assert bad.status_code == 422
    assert 'id="e-username"' in bad.text and 'id="e-password"' in bad.text
    assert 'value="no spaces&lt;"' in bad.text and '<option value="operator" selected>' in bad.text
    made = await client.post(
        "/admin/users",
        data={"csrf_token": csrf, "username": "olga", "role": "operator", "password": "olga-password"},
    )
    assert made.status_code == 303
    olga_id = re.search(r"#user-(.+)$", made.headers["location"]).group(1)  # type: ignore[union-attr]
    own = await client.post(f"/admin/users/{admin.id}", data={"csrf_token": csrf, "role": "viewer"})
    assert own.status_code == 422 and "cannot demote or deactivate yourself" in own.text
    role = await client.post(f"/admin/users/{olga_id}", data={"csrf_token": csrf, "role": "approver"})
    assert role.status_code == 303
    olga = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with olga:
        await sign_in(olga, WebUserInfo(id=olga_id, username="olga", password="olga-password", role=Role.APPROVER))
        assert "(approver)" in (await olga.get("/")).text
        off = await client.post(f"/admin/users/{olga_id}", data={"csrf_token": csrf, "active": "no"})
        assert off.status_code == 303
        assert (await olga.get("/")).status_code == 303  # a deactivated user's session ends at once

    created = await client.post("/admin/keys", data={"csrf_token": csrf, "name": "ci-bot", "user_id": olga_id})
    assert created.status_code == 200 and "shown only this once" in created.text
    key = re.search(r'<code class="hash" id="new-key">([^<]+)</code>', created.text).group(1)  # type: ignore[union-attr]
    assert key not in (await client.get("/admin/keys")).text  # never again
    key_id = re.search(r'action="/admin/keys/([^/]+)/revoke"', created.text).group(1)  # type: ignore[union-attr]
    await client.post(f"/admin/users/{olga_id}", data={"csrf_token": csrf, "active": "yes"})
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {key}"})).json()["username"] == "olga"
    await client.post(f"/admin/keys/{key_id}/revoke", data={"csrf_token": csrf})
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {key}"})).status_code == 401

    value = "sk-very-secret-value-123"
    stored = await client.post("/admin/secrets", data={"csrf_token": csrf, "name": "openai_key", "value": value})
    assert stored.status_code == 303
    rotated = await client.post("/admin/secrets", data={"csrf_token": csrf, "name": "openai_key", "value": value + "2"})
    assert rotated.status_code == 303
    page = await client.get("/admin/secrets")
    assert "<code>openai_key</code>" in page.text and value not in page.text
    async with db.session_scope() as s:
        cipher = secrets_store.load_cipher(settings)
        assert await secrets_store.reveal(session=s, cipher=cipher, name="openai_key") == value + "2"
    missing = await client.post("/admin/secrets", data={"csrf_token": csrf, "name": "bad name", "value": ""})
    assert missing.status_code == 422 and 'id="e-name"' in missing.text and 'id="e-value"' in missing.text
    await client.post("/admin/secrets/delete", data={"csrf_token": csrf, "name": "openai_key"})
    assert "<code>openai_key</code>" not in (await client.get("/admin/secrets")).text
