"""Text no database can store is refused at the edge: a NUL (or another control character) in any
path parameter, query value or JSON string answers 422 naming the field, on SQLite and PostgreSQL
alike; a cursor that is not an id from a previous page answers 422 naming `cursor`."""

from __future__ import annotations

import json
import re

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from atom.validation import text_problem
from tests.conftest import UserWithKey

_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
_UUID = "0190c3a8-0000-7000-8000-000000000000"


def _get_routes(app: FastAPI) -> list[RouteContext]:
    return [
        r
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute) and str(r.path).startswith("/api") and "GET" in (r.methods or ())
    ]


def _fill(path: str, bad: str | None = None) -> str:
    """The route's path with each parameter set to an id, or the parameter `bad` set to a NUL."""
    return _PARAM.sub(lambda m: "a%00b" if m.group(1) == bad else _UUID, path)


async def test_a_nul_in_any_path_parameter_is_a_422_naming_it(
    app: FastAPI, client: httpx.AsyncClient, admin: UserWithKey
) -> None:
    checked = 0
    for route in _get_routes(app):
        for name in _PARAM.findall(str(route.path)):
            answer = await client.get(_fill(str(route.path), name), headers=admin.headers)
            assert answer.status_code == 422, (route.path, answer.status_code, answer.text)
            fields = answer.json()["error"]["details"]["fields"]
            assert fields[0]["field"] == f"path.{name}", (route.path, fields)
            assert "U+0000" in fields[0]["message"]
            checked += 1
    assert checked >= 15


async def test_a_nul_or_control_character_in_any_query_value_is_a_422_naming_it(
    app: FastAPI, client: httpx.AsyncClient, admin: UserWithKey
) -> None:
    checked = 0
    for route in _get_routes(app):
        for param in route.dependant.query_params:
            for bad in ("%00", "a%01b", "%7F", "%C2%85"):
                answer = await client.get(f"{_fill(str(route.path))}?{param.alias}={bad}", headers=admin.headers)
                assert answer.status_code == 422, (route.path, param.alias, answer.text)
                assert answer.json()["error"]["details"]["fields"][0]["field"] == f"query.{param.alias}"
            checked += 1
    assert checked >= 30
    # an unknown parameter is checked too (routes that ignore it must not see it either)
    answer = await client.get("/api/agents?whatever=%00", headers=admin.headers)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"]["fields"][0]["field"] == "query.whatever"


async def test_a_cursor_that_is_not_an_id_is_a_422_naming_cursor(
    app: FastAPI, client: httpx.AsyncClient, admin: UserWithKey
) -> None:
    listed = [r for r in _get_routes(app) if any(p.alias == "cursor" for p in r.dependant.query_params)]
    assert len(listed) >= 10
    for route in listed:
        for bad in ("not-a-cursor", "0", "'; drop table agents; --", _UUID.upper(), _UUID + "0"):
            answer = await client.get(_fill(str(route.path)), params={"cursor": bad}, headers=admin.headers)
            assert answer.status_code == 422, (route.path, bad, answer.text)
            assert answer.json()["error"]["details"]["fields"][0]["field"] == "query.cursor"
    first = await client.post("/api/agents", json={"name": "one"}, headers=admin.headers)
    await client.post("/api/agents", json={"name": "two"}, headers=admin.headers)
    page = (await client.get("/api/agents", params={"limit": 1}, headers=admin.headers)).json()
    following = await client.get(
        "/api/agents", params={"limit": 1, "cursor": page["next_cursor"]}, headers=admin.headers
    )
    assert following.status_code == 200
    assert [a["id"] for a in following.json()["items"]] == [first.json()["id"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "a\u0000b"}, "body.name"),
        ({"name": "ok", "description": "bell\u0007"}, "body.description"),
        ({"name": "ok", "description": "half \ud800 a pair"}, "body.description"),
        ({"name": "ok", "capabilities": ["fine", "esc\u001b[31m"]}, "body.capabilities.1"),
        ({"name": "ok", "configuration": {"k\u0000": 1}}, "body.configuration.k\\x00"),
    ],
)
async def test_a_json_string_with_a_nul_or_control_character_is_a_422_naming_it(
    client: httpx.AsyncClient, admin: UserWithKey, body: dict[str, object], field: str
) -> None:
    raw = json.dumps(body)  # escapes every control character and surrogate, as a JSON client must
    headers = {**admin.headers, "Content-Type": "application/json"}
    answer = await client.post("/api/agents", content=raw, headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"]["fields"][0]["field"] == field
    listed = (await client.get("/api/agents", headers=admin.headers)).json()
    assert listed["items"] == []  # nothing stored


async def test_text_with_tabs_and_new_lines_and_escaped_backslashes_is_accepted(
    client: httpx.AsyncClient, admin: UserWithKey
) -> None:
    body = {"name": "fine", "description": "line one\n\tline two\r\nC:\\u0000 is only text"}
    answer = await client.post("/api/agents", json=body, headers=admin.headers)
    assert answer.status_code == 201, answer.text
    assert answer.json()["description"] == body["description"]


async def test_the_check_comes_before_authentication_and_covers_every_route(client: httpx.AsyncClient) -> None:
    for path in ("/api/agents/%00", "/health/ready?x=%00", "/hooks/a%00b", "/nowhere/%01"):
        answer = await client.get(path)
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["code"] == "VALIDATION_ERROR"


def test_text_problem_names_the_character_and_its_position() -> None:
    assert text_problem("fine\ttext\n") is None
    assert text_problem("fine\ttext", multiline=False) is not None
    problem = text_problem("ab\x00")
    assert problem is not None and "U+0000 at position 2" in problem
