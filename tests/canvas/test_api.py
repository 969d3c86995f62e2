"""Canvases over HTTP on both databases: every kind, the rendered view, bad input refused with the field
named and nothing changed, optimistic concurrency, refusals on record, privacy of chat canvases."""

from __future__ import annotations

from typing import Any

import httpx

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from atom.security.models import Role
from tests.conftest import MakeUser, UserWithKey
from tests.support.agents import make_agent

CHART = {"chart_type": "line", "labels": ["Mon", "Tue", "Wed"], "series": [{"name": "calls", "values": [3, 5, 4]}]}
FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "age": {"type": "integer", "minimum": 18, "title": "Age"},
        "email": {"type": "string", "format": "email"},
    },
    "required": ["age"],
}


async def _create(
    client: httpx.AsyncClient, user: UserWithKey, kind: str, content: dict[str, Any], **extra: Any
) -> httpx.Response:
    return await client.post("/api/canvases", json={"kind": kind, "content": content, **extra}, headers=user.headers)


def _fields(response: httpx.Response) -> list[str]:
    details = response.json()["error"]["details"]
    return [f["field"] for f in details.get("fields", [])] or [details.get("field")]


async def test_every_kind_is_stored_and_rendered(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    operator = await make_user(Role.OPERATOR)
    contents = {
        "markdown": {"text": "# Plan\n- one"},
        "chart": CHART,
        "sheet": {"rows": [[1, 2, "=A1+B1"], ["=SUM(A1:C1)", "=AVERAGE(A1:B1)", "=C1/0"]]},
        "form": {"schema": FORM_SCHEMA},
        "status": {"items": [{"label": "build", "state": "ok"}], "progress": 40},
        "email": {"to": ["ops@example.com"], "subject": "Hi", "body": "Hello"},
        "terminal": {"command": "ls", "lines": ["a", "b"], "exit_code": 0},
        "code": {"language": "python", "code": "def f():\n    return 1  # one\n"},
    }
    ids = {}
    for kind, content in contents.items():
        response = await _create(client, operator, kind, content, title=f"A {kind}")
        assert response.status_code == 201, response.text
        ids[kind] = response.json()["id"]
        assert response.json()["version"] == 1 and response.json()["status"] == "open"
    sheet = (await client.get(f"/api/canvases/{ids['sheet']}", headers=operator.headers)).json()
    assert sheet["rendered"]["values"] == [["1", "2", "3"], ["6", "1.5", "#DIV/0!"]]
    chart = (await client.get(f"/api/canvases/{ids['chart']}", headers=operator.headers)).json()["rendered"]["chart"]
    assert len(chart["lines"]) == 1 and len(chart["lines"][0].split()) == 3
    code = (await client.get(f"/api/canvases/{ids['code']}", headers=operator.headers)).json()["rendered"]["tokens"]
    assert ["tk-keyword", "def"] in code and any(c == "tk-comment" for c, _ in code)
    form = (await client.get(f"/api/canvases/{ids['form']}", headers=operator.headers)).json()["rendered"]["fields"]
    assert [(f["name"], f["required"]) for f in form] == [("age", True), ("email", False)]
    listed = (await client.get("/api/canvases?kind=chart", headers=operator.headers)).json()["items"]
    assert [c["id"] for c in listed] == [ids["chart"]]


async def test_bad_input_names_the_field_and_changes_nothing(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    operator = await make_user(Role.OPERATOR)
    bad = [
        ("chart", {**CHART, "series": [{"values": [1, 2]}]}, "content.series.0.values"),
        ("chart", {"chart_type": "scatter", "series": [{"values": [1, 2], "x": [1]}]}, "content.series.0"),
        ("chart", {"chart_type": "line", "series": [{"values": [1, float("nan")]}]}, None),
        ("form", {"schema": {"type": "object", "properties": {"a": {"type": "strng"}}}},
         "content.schema.properties.a.type"),
        ("form", {"schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": "(a+)+$"}}}},
         "content.schema.properties.a.pattern"),
        ("sheet", {"rows": [["=A1+1"]]}, "content.rows.A1"),
        ("sheet", {"rows": [["=B1", "=C1*2", "=A1"]]}, "content.rows.A1"),
        ("sheet", {"rows": [[f"=A{i + 2}"] for i in range(80)] + [[1]]}, None),
        ("email", {"to": ["not-an-address"]}, "content.to.0"),
    ]  # fmt: skip
    for kind, content, field in bad:
        try:
            response = await _create(client, operator, kind, content)
        except ValueError:  # NaN is not JSON: the client refuses to send it
            continue
        assert response.status_code == 422, (kind, response.text)
        if field is not None:
            assert field in _fields(response), (field, response.json())
    assert (await client.get("/api/canvases", headers=operator.headers)).json()["items"] == []

    made = (await _create(client, operator, "chart", CHART)).json()
    edit = {"op": "merge", "content": {"labels": ["a"]}, "expected_version": 1}
    response = await client.post(f"/api/canvases/{made['id']}/edits", json=edit, headers=operator.headers)
    assert response.status_code == 422 and "content.series.0.values" in _fields(response)
    missing = await client.get("/api/canvases/0190a0a0-0000-7000-8000-000000000000", headers=operator.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "CANVAS_NOT_FOUND"
    assert missing.json()["error"]["details"]["field"] == "canvas_id"
    after = (await client.get(f"/api/canvases/{made['id']}", headers=operator.headers)).json()
    assert after["version"] == 1 and after["content"]["labels"] == ["Mon", "Tue", "Wed"]


async def test_a_stale_version_is_refused_and_recorded(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    operator = await make_user(Role.OPERATOR)
    made = (await _create(client, operator, "terminal", {"lines": ["start"]})).json()
    url = f"/api/canvases/{made['id']}"
    first = await client.post(
        f"{url}/edits",
        json={"op": "replace", "content": {"lines": ["mine"]}, "expected_version": 1},
        headers=operator.headers,
    )
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = await client.post(
        f"{url}/edits",
        json={"op": "replace", "content": {"lines": ["theirs"]}, "expected_version": 1},
        headers=operator.headers,
    )
    assert stale.status_code == 409
    error = stale.json()["error"]
    assert error["code"] == "CANVAS_VERSION_CONFLICT" and error["details"]["field"] == "expected_version"
    assert error["details"]["current_version"] == 2 and error["details"]["current_content"]["lines"] == ["mine"]
    needs = await client.post(
        f"{url}/edits", json={"op": "replace", "content": {"lines": []}}, headers=operator.headers
    )
    assert needs.status_code == 422 and _fields(needs) == ["expected_version"]
    appended = await client.post(
        f"{url}/edits", json={"op": "append", "content": {"lines": ["more"]}}, headers=operator.headers
    )
    assert appended.status_code == 200 and appended.json()["content"]["lines"] == ["mine", "more"]
    audit = (await client.get(f"{url}/audit", headers=operator.headers)).json()["items"]
    assert [(a["action"], a["outcome"], a["version"]) for a in reversed(audit)] == [
        ("present", "ok", 1), ("update", "ok", 2), ("update", "refused", 2), ("update", "ok", 3),
    ]  # fmt: skip
    assert audit[1]["details"]["code"] == "CANVAS_VERSION_CONFLICT" and audit[1]["actor"] == f"user:{operator.id}"


async def test_form_submission_is_validated_and_governed(
    client: httpx.AsyncClient, make_user: MakeUser, db: Database, settings: Settings
) -> None:
    operator = await make_user(Role.OPERATOR)
    viewer = await make_user(Role.VIEWER)
    made = (await _create(client, operator, "form", {"schema": FORM_SCHEMA})).json()
    url = f"/api/canvases/{made['id']}/submit"
    assert (await client.post(url, json={"values": {"age": 30}}, headers=viewer.headers)).status_code == 403
    invalid = await client.post(url, json={"values": {"age": 12, "email": "nope"}}, headers=operator.headers)
    assert invalid.status_code == 422 and _fields(invalid) == ["values.age", "values.email"]
    extra = await client.post(url, json={"values": {"age": 30, "admin": True}}, headers=operator.headers)
    assert extra.status_code == 422
    still = (await client.get(f"/api/canvases/{made['id']}", headers=operator.headers)).json()
    assert still["status"] == "open" and still["submission"] is None and still["version"] == 1
    ok = await client.post(url, json={"values": {"age": 30, "email": "a@example.com"}}, headers=operator.headers)
    assert ok.status_code == 200 and ok.json()["status"] == "submitted"
    assert ok.json()["submission"] == {"age": 30, "email": "a@example.com"}
    again = await client.post(url, json={"values": {"age": 40}}, headers=operator.headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "CANVAS_NOT_OPEN"

    # A form an INTERN agent presented: acting on the submission is canvas_submit (3), SUPERVISED+.
    from atom.canvas import service as canvas_service
    from atom.canvas.coordination import Editor
    from atom.canvas.models import CanvasKind

    intern = await make_agent(db, settings, MaturityLevel.INTERN)
    async with db.session_scope() as s:
        asked = await canvas_service.create(
            session=s,
            kind=CanvasKind.FORM,
            title="",
            content={"schema": FORM_SCHEMA},
            editor=Editor(agent_id=intern.id),
        )
    denied = await client.post(
        f"/api/canvases/{asked.id}/submit", json={"values": {"age": 30}}, headers=operator.headers
    )
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "CANVAS_SUBMIT_DENIED"
    audit = (await client.get(f"/api/canvases/{asked.id}/audit", headers=operator.headers)).json()["items"]
    assert (audit[0]["action"], audit[0]["outcome"]) == ("submit", "refused")
    assert (await client.get(f"/api/canvases/{asked.id}", headers=operator.headers)).json()["status"] == "open"


async def test_a_chat_canvas_is_as_private_as_its_conversation(
    client: httpx.AsyncClient, make_user: MakeUser, db: Database, settings: Settings
) -> None:
    from atom.canvas import service as canvas_service
    from atom.canvas.coordination import Editor
    from atom.canvas.models import CanvasKind
    from atom.chat import service as chat_service

    owner, other, admin = await make_user(Role.OPERATOR), await make_user(Role.OPERATOR), await make_user(Role.ADMIN)
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    async with db.session_scope() as s:
        chat = await chat_service.create_session(session=s, agent_ref=agent.id, user_id=owner.id)
        canvas = await canvas_service.create(
            session=s, kind=CanvasKind.MARKDOWN, title="", content={"text": "x"}, editor=Editor(agent_id=agent.id),
            session_id=chat.id,
        )  # fmt: skip
    for user, status in ((owner, 200), (admin, 200), (other, 404)):
        assert (await client.get(f"/api/canvases/{canvas.id}", headers=user.headers)).status_code == status
    edit = {"op": "append", "content": {"text": "!"}}
    assert (await client.post(f"/api/canvases/{canvas.id}/edits", json=edit, headers=other.headers)).status_code == 404
    assert (await client.get("/api/canvases", headers=other.headers)).json()["items"] == []
    assert len((await client.get("/api/canvases", headers=owner.headers)).json()["items"]) == 1
