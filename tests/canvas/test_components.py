"""Custom components on both databases: HTML sanitized and CSS checked, versions with rollback and usage
counts, a JavaScript version usable only after another person's approval, each tool governed at its
level (HTML/CSS: SUPERVISED+, JavaScript: AUTONOMOUS), the frame served with its own strict CSP."""

from __future__ import annotations

import httpx
import pytest

from atom.config import Settings
from atom.db.session import Database
from atom.errors import Forbidden, InvalidInput
from atom.governance import service as governance
from atom.governance.maturity import MaturityLevel
from atom.governance.policy import GovernanceContext
from atom.security.models import Role
from tests.canvas.conftest import acting_as, call
from tests.conftest import MakeUser
from tests.support.agents import make_agent
from tests.web.conftest import MakeWebUser, sign_in, web_user

__all__ = ["web_user"]  # fixture

HTML = '<div class="card" onclick="steal()"><h2>Total</h2><script>alert(1)</script><a href="javascript:x()">x</a></div>'


async def test_versions_approval_rollback_and_usage(
    client: httpx.AsyncClient, make_user: MakeUser, db: Database, settings: Settings
) -> None:
    author, approver = await make_user(Role.OPERATOR), await make_user(Role.APPROVER)
    made = await client.post(
        "/api/canvas-components", json={"name": "total-card", "html": HTML, "css": ".card { color: #222; }"},
        headers=author.headers,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    first = made.json()["versions"][0]
    assert first["status"] == "active" and first["sanitized_changes"] is True
    for gone in ("onclick", "<script", "javascript:"):
        assert gone not in first["html"]
    assert "<h2>Total</h2>" in first["html"]
    refused = await client.post(
        "/api/canvas-components", json={"name": "bad-css", "html": "<p>x</p>", "css": "p { background: url(//evil) }"},
        headers=author.headers,
    )  # fmt: skip
    assert refused.status_code == 422 and refused.json()["error"]["details"]["field"] == "css"
    bad_name = await client.post(
        "/api/canvas-components", json={"name": "Bad Name", "html": ""}, headers=author.headers
    )
    assert bad_name.status_code == 422

    url = "/api/canvas-components/total-card"
    second = await client.post(f"{url}/versions", json={"html": "<p>v2</p>"}, headers=author.headers)
    assert second.status_code == 201 and second.json()["version"] == 2
    scripted = await client.post(
        f"{url}/versions", json={"html": "<p id='n'></p>", "js": "document.getElementById('n').textContent = 'hi';"},
        headers=author.headers,
    )  # fmt: skip
    assert scripted.json()["status"] == "pending_approval"
    detail = (await client.get(url, headers=author.headers)).json()
    assert detail["current_version"] == 2  # JavaScript becomes current only when approved

    autonomous = await make_agent(db, settings, MaturityLevel.AUTONOMOUS)
    with acting_as(settings, db, autonomous.id), pytest.raises(Forbidden) as pending:
        await call("canvas_execute_javascript", component="total-card", version=3)
    assert pending.value.code == "COMPONENT_NOT_APPROVED"
    approval = f"{url}/versions/3/approval"
    self_sign = await client.post(approval, json={"decision": "approve"}, headers=approver.headers)
    assert self_sign.status_code == 200  # the approver is not the author: allowed
    own = await client.post(f"{url}/versions", json={"html": "<p/>", "js": "1;"}, headers=approver.headers)
    denied = await client.post(
        f"{url}/versions/{own.json()['version']}/approval", json={"decision": "approve"}, headers=approver.headers
    )
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "COMPONENT_SELF_APPROVAL"
    operator_try = await client.post(f"{url}/versions/4/approval", json={"decision": "approve"}, headers=author.headers)
    assert operator_try.status_code == 403
    assert (await client.get(url, headers=author.headers)).json()["current_version"] == 3

    with acting_as(settings, db, autonomous.id):
        shown = await call("canvas_execute_javascript", component="total-card", props={"total": 7})
        with pytest.raises(InvalidInput):
            await call("present_component", component="total-card")  # it has JavaScript
        html_only = await call("present_component", component="total-card", version=2)
    assert shown["kind"] == "component" and html_only["kind"] == "component"
    rolled = await client.post(f"{url}/rollback", json={"version": 1}, headers=author.headers)
    assert rolled.status_code == 200 and rolled.json()["current_version"] == 1
    usage = {v["version"]: v["usage_count"] for v in rolled.json()["versions"]}
    assert usage == {1: 0, 2: 1, 3: 1, 4: 0} and rolled.json()["usage_count"] == 2
    not_usable = await client.post(f"{url}/rollback", json={"version": 4}, headers=author.headers)
    assert not_usable.status_code == 409


async def test_component_tools_are_governed_by_level(settings: Settings, db: Database) -> None:
    context = GovernanceContext()
    levels = {
        MaturityLevel.INTERN: (False, False),
        MaturityLevel.SUPERVISED: (True, False),
        MaturityLevel.AUTONOMOUS: (True, True),
    }
    for level, (html_ok, js_ok) in levels.items():
        agent = await make_agent(db, settings, level)
        async with db.session_scope() as s:
            html = await governance.check(
                session=s, agent_id=agent.id, action="present_component", context=context, settings=settings
            )
            js = await governance.check(
                session=s, agent_id=agent.id, action="canvas_execute_javascript", context=context, settings=settings
            )
        assert (html.allowed, js.allowed) == (html_ok, js_ok), level


async def test_the_frame_has_its_own_strict_policy(
    client: httpx.AsyncClient, web_user: MakeWebUser, db: Database, settings: Settings, make_user: MakeUser
) -> None:
    author, approver = await make_user(Role.OPERATOR), await make_user(Role.APPROVER)
    await client.post(
        "/api/canvas-components", json={"name": "clock", "html": "<p id='t'></p>", "js": "document.title = 'x';"},
        headers=author.headers,
    )  # fmt: skip
    await client.post(
        "/api/canvas-components/clock/versions/1/approval", json={"decision": "approve"}, headers=approver.headers
    )
    agent = await make_agent(db, settings, MaturityLevel.AUTONOMOUS)
    with acting_as(settings, db, agent.id):
        shown = await call(
            "canvas_execute_javascript", component="clock", props={"x": "</script><script>alert(1)</script>"}
        )
    viewer = await web_user(Role.VIEWER)
    client.headers.pop("Authorization", None)
    assert (await client.get(f"/canvases/{shown['canvas_id']}/frame")).status_code == 303  # signed out: to sign-in
    await sign_in(client, viewer)
    frame = await client.get(f"/canvases/{shown['canvas_id']}/frame")
    assert frame.status_code == 200
    policy = frame.headers["content-security-policy"]
    for directive in ("sandbox allow-scripts", "connect-src 'none'", "frame-ancestors 'self'", "form-action 'none'"):
        assert directive in policy
    assert "allow-same-origin" not in policy and "'unsafe-inline'" not in policy and "script-src 'sha256-" in policy
    assert "x-frame-options" not in frame.headers  # framed by our own page, nobody else (frame-ancestors)
    assert "</script><script>alert(1)" not in frame.text and "\\u003c/script\\u003e" in frame.text
    page = await client.get(f"/canvases/{shown['canvas_id']}")
    assert page.status_code == 200 and "frame-src 'self'" in page.headers["content-security-policy"]
    markdown = await client.get("/canvases")
    assert markdown.status_code == 200
