"""Training scenarios as data: created, versioned, listed, shown, retired, loaded from YAML; bad input -> 422
naming the field (and line), with nothing stored."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atom.security.models import Role
from tests.conftest import MakeUser, UserWithKey
from tests.training.conftest import SideEffects

SCENARIO: dict[str, Any] = {
    "name": "create-order",
    "category": "sales",
    "task": "Create order 5 for Ann.",
    "tools": ["test_create_record", "test_read_record"],
    "expect": {
        "rules": [
            {"id": "created", "condition": "calls.exists(c, c.name == 'test_create_record')"},
            {"id": "said-so", "condition": "answer.contains('created')"},
        ],
        "reference": {"answer": "Order 5 created.", "match": "f1"},
    },
}

FILE = """\
scenarios:
  - name: greet
    category: sales
    task: Say hello to Ann.
    tools: []
    expect:
      reference: {answer: "Hello Ann", match: contains}
  - name: summarize
    category: sales
    task: Summarize the week.
    tools: [test_read_record]
    expect:
      judge: {rubric: "Short and factual."}
"""


@pytest.fixture
async def approver(make_user: MakeUser) -> UserWithKey:
    return await make_user(Role.APPROVER)


async def create(client: httpx.AsyncClient, who: UserWithKey, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/training-scenarios", json=body, headers=who.headers)


async def listed(client: httpx.AsyncClient, who: UserWithKey, query: str = "") -> list[dict[str, Any]]:
    response = await client.get(f"/api/training-scenarios{query}", headers=who.headers)
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def test_scenarios_are_versioned_listed_shown_retired_and_audited(
    client: httpx.AsyncClient, approver: UserWithKey, make_user: MakeUser, effects: SideEffects
) -> None:
    viewer, operator = await make_user(Role.VIEWER), await make_user(Role.OPERATOR)
    assert (await create(client, operator, SCENARIO)).status_code == 403
    first = await create(client, approver, SCENARIO)
    assert first.status_code == 201, first.text
    assert first.json()["version"] == 1 and first.json()["expect"]["reference"]["match"] == "f1"
    second = await create(client, approver, {**SCENARIO, "task": "Create order 6 for Ann."})
    assert second.status_code == 201 and second.json()["version"] == 2

    items = await listed(client, viewer)
    assert [(s["name"], s["version"], s["task"]) for s in items] == [("create-order", 2, "Create order 6 for Ann.")]
    assert await listed(client, viewer, "?category=support") == []
    shown = await client.get("/api/training-scenarios/create-order", headers=viewer.headers)
    assert shown.status_code == 200
    assert shown.json()["current"]["version"] == 2 and [v["version"] for v in shown.json()["versions"]] == [2, 1]
    missing = await client.get("/api/training-scenarios/nothing-here", headers=viewer.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "SCENARIO_NOT_FOUND"

    assert (await client.delete("/api/training-scenarios/create-order", headers=operator.headers)).status_code == 403
    retired = await client.delete("/api/training-scenarios/create-order", headers=approver.headers)
    assert retired.status_code == 200 and retired.json()["retired_at"] is not None
    assert await listed(client, viewer) == []
    assert [s["version"] for s in await listed(client, viewer, "?include_retired=true")] == [2]
    again = await client.delete("/api/training-scenarios/create-order", headers=approver.headers)
    assert again.status_code == 409
    assert (await create(client, approver, SCENARIO)).json()["version"] == 3  # saving it again brings it back
    assert [s["version"] for s in await listed(client, viewer)] == [3]

    trail = await client.get("/api/audit?action=training.scenario.save", headers=approver.headers)
    assert [r["details"]["version"] for r in trail.json()["items"]] == [3, 2, 1]
    assert all(r["actor_id"] == approver.id for r in trail.json()["items"])
    retires = await client.get("/api/audit?action=training.scenario.retire", headers=approver.headers)
    assert len(retires.json()["items"]) == 1


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"expect": {"rules": [{"id": "x", "condition": "answer.contains("}]}},
            "body.expect.rules.0.condition",
            "compile",
        ),
        ({"tools": ["no_such_tool"]}, "body.tools.0", "no tool or action named 'no_such_tool'"),
        ({"expect": {}}, "body.expect", "at least one of"),
        ({"name": "Has Spaces"}, "body.name", "pattern"),
        ({"task": ""}, "body.task", "at least 1 character"),
        ({"task": "x" * 8001}, "body.task", "at most 8000"),
        ({"tools": ["test_read_record", "test_read_record"]}, "body", "twice"),
        ({"expect": {"judge": {"rubric": "ok"}, "weights": 1}}, "body.expect.weights", "Extra inputs"),
        ({"expect": {"reference": {"answer": "a", "match": "fuzzy"}}}, "body.expect.reference.match", "'f1'"),
        ({"surprise": True}, "body.surprise", "Extra inputs"),
    ],
)
async def test_bad_scenarios_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    approver: UserWithKey,
    effects: SideEffects,
    change: dict[str, Any],
    field: str,
    words: str,
) -> None:
    response = await create(client, approver, {**SCENARIO, **change})
    assert response.status_code == 422, response.text
    fields = response.json()["error"]["details"]["fields"]
    assert fields[0]["field"] == field and words in fields[0]["message"], fields
    assert await listed(client, approver, "?include_retired=true") == []  # nothing stored


async def test_a_cel_error_names_its_column(
    client: httpx.AsyncClient, approver: UserWithKey, effects: SideEffects
) -> None:
    body = {**SCENARIO, "expect": {"rules": [{"id": "x", "condition": "size(calls) >"}]}}
    response = await create(client, approver, body)
    assert response.status_code == 422
    (problem,) = response.json()["error"]["details"]["fields"]
    assert problem["field"] == "body.expect.rules.0.condition" and problem["column"] == 14  # where the expression ends


async def test_a_yaml_file_loads_whole_or_not_at_all(
    client: httpx.AsyncClient, approver: UserWithKey, effects: SideEffects
) -> None:
    loaded = await client.post("/api/training-scenarios/load", json={"source": FILE}, headers=approver.headers)
    assert loaded.status_code == 201, loaded.text
    assert [(s["name"], s["version"]) for s in loaded.json()["items"]] == [("greet", 1), ("summarize", 1)]

    broken = FILE.replace("tools: [test_read_record]", "tools: [nope]").replace("name: greet", "name: greet2")
    refused = await client.post("/api/training-scenarios/load", json={"source": broken}, headers=approver.headers)
    assert refused.status_code == 422
    (problem,) = refused.json()["error"]["details"]["fields"]
    assert problem["field"] == "scenarios.1.tools.0" and problem["line"] == 8
    assert [s["name"] for s in await listed(client, approver)] == ["greet", "summarize"]  # greet2 not stored

    for source, field, words in [
        ("scenarios: [\n", "source", "not valid YAML"),
        ("base: &b {name: a}\nscenarios: [*b]\n", "source", "aliases"),
        ("scenarios: []\n", "scenarios", "at least 1 item"),
        (FILE.replace("    task: Say hello to Ann.\n", ""), "scenarios.0.task", "Field required"),
        (FILE.replace("name: summarize", "name: greet"), "scenarios.1.name", "twice"),
    ]:
        answer = await client.post("/api/training-scenarios/load", json={"source": source}, headers=approver.headers)
        assert answer.status_code == 422, source
        first = answer.json()["error"]["details"]["fields"][0]
        assert first["field"] == field and words in first["message"], (source, first)
    missing_task = await client.post(
        "/api/training-scenarios/load",
        json={"source": FILE.replace("    task: Say hello to Ann.\n", "")},
        headers=approver.headers,
    )
    assert missing_task.json()["error"]["details"]["fields"][0]["line"] == 2
