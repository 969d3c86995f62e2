"""The OpenAPI document describes every answer: each operation lists its error statuses with the error
body's schema, a 405 carries `Allow`, and schemathesis, run in-process against the app (ASGI, SQLite,
a seeded admin key, fixed seed, a few examples per operation), finds no server error and no answer
the document does not describe (status, content type, body schema, headers)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from atom.db import migrate
from atom.db.session import Database
from atom.main import create_app
from atom.security import service as security
from atom.security.models import Role
from atom.security.schemas import UserCreate
from tests.conftest import make_settings

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
# A 503 is a documented answer (no LLM provider configured, a dependency down), not a server error.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
EXAMPLES_PER_OPERATION = 4
# Streams and long polls answer with a body schemathesis would wait on; they are tested in their own modules.
SKIPPED_PATHS = ("/stream", "/events")


def _documented(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    responses: dict[str, Any] = document["paths"][path][method]["responses"]
    return responses


async def test_every_operation_documents_its_error_answers_with_the_error_body(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["schemas"]["ErrorBody"]["required"] == ["error"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    operations = 0
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            expected = {"422", "431", "500"}
            if path.startswith("/api"):
                expected |= {"401", "403", "404"} | ({"409"} if method in ("post", "put", "patch", "delete") else set())
            if "requestBody" in operation:
                expected.add("413")
            assert expected <= set(responses), (method, path, sorted(responses))
            for status in expected:
                assert responses[status]["content"]["application/json"]["schema"] == ERROR_REF, (path, status)
            operations += 1
    assert operations >= 60
    agent = _documented(document, "/api/agents/{agent_id}", "get")
    assert "409" not in agent and "413" not in agent  # a read neither conflicts nor takes a body


async def test_every_api_operation_names_the_api_key_schemes_and_no_other_does(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <api key>`",
    }
    assert schemes["APIKeyHeader"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "Or `X-API-Key: <api key>`",
    }
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            expected = [{"HTTPBearer": []}, {"APIKeyHeader": []}] if path.startswith("/api") else None
            assert operation.get("security") == expected, (method, path)


async def test_a_405_lists_every_method_of_the_path_in_allow(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    for path in ("/api/workflows/{ref}", "/api/agents/{agent_id}", "/api/workflows"):
        concrete = path.replace("{ref}", "x").replace("{agent_id}", "x")
        declared = {m.upper() for m in document["paths"][path]}
        answer = await client.request("PATCH" if "PATCH" not in declared else "TRACE", concrete)
        assert answer.status_code == 405, (path, answer.text)
        assert set(answer.headers["allow"].split(", ")) == declared, (path, answer.headers["allow"])
        assert answer.json()["error"]["details"]["allowed_methods"] == sorted(declared)


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Any, str]:
    """The app on a fresh SQLite database with one admin key (its own lifespan, run by schemathesis)."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    app_settings = make_settings(data_dir, None)

    async def seed() -> str:
        db = Database(app_settings)
        await migrate.upgrade(db)
        async with db.session_scope() as s:
            user = await security.create_user(session=s, user_in=UserCreate(username="fuzz", role=Role.ADMIN))
            _, key = await security.create_key(session=s, user_id=user.id, name="fuzz")
        await db.dispose()
        return key

    key = asyncio.run(seed())
    return create_app(app_settings, configure_logs=False), key


def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(seeded: tuple[Any, str]) -> None:
    app, key = seeded
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {key}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith(SKIPPED_PATHS):
            continue
        operations += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            where = f"{case.method} {case.formatted_path} -> {response.status_code}"
            if response.status_code >= 500 and response.status_code != 503:
                failures.append(f"{where}: server error {response.text[:300]}")
            try:
                case.validate_response(response, checks=CHECKS)
            except (AssertionError, BaseExceptionGroup) as exc:  # every failure is collected, not the first only
                failures.append(f"{where}: {exc}"[:600])

        run()
    assert operations >= 50
    assert not failures, "\n\n".join(failures[:20])
