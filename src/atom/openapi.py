"""The OpenAPI document describes the error answers too, once for every route.

Every error is `{"error": {"code", "message", "details"}}` (`ErrorBody`), mapped in one place
(`create_app`), so the statuses an operation can answer follow from where it sits, not from each
route: 422 everywhere (the edge refuses control characters in any path or query), 431 and 500
everywhere; under `/api`, 401 (no or a bad key), 403 (role), 404 (a resource named in the path or
body), 503 (a dependency down or not configured); 409 on writes; 413 where a body is read; the
signed webhooks (`/hooks`) answer 401, 404, 409, 413, 502 (`respond: on_finish`: the run failed) and
503. FastAPI's own 422 shape is replaced by ours, because ours is what is sent. Every `/api`
operation names the API key schemes (a bearer token or `X-API-Key`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.security.base import SecurityBase
from pydantic import BaseModel, Field


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable machine code, e.g. `AGENT_NOT_FOUND`.")
    message: str = Field(description="What went wrong, for a person.")
    details: dict[str, Any] = Field(description="Structured context (fields, limits, ids).")


class ErrorBody(BaseModel):
    error: ErrorDetail


_REF = {"$ref": "#/components/schemas/ErrorBody"}
_DESCRIPTIONS = {
    "401": "No API key, or the key is unknown, revoked or expired.",
    "403": "The caller's role does not allow this.",
    "404": "A resource named in the path or body does not exist.",
    "409": "The request conflicts with the current state.",
    "413": "The request body is larger than ATOM_MAX_BODY_BYTES.",
    "422": "The request is invalid: see `error.details.fields` (or the domain's details).",
    "431": "The request headers are too large or too many.",
    "500": "An unexpected error; the request id in `error.details` identifies it in the logs.",
    "502": "The workflow run the request waited for failed or was cancelled (`error.details.run_id`).",
    "503": "A service it depends on is unavailable or not configured (database, Redis, an LLM provider).",
}
_WRITES = {"post", "put", "patch", "delete"}


def error_statuses(path: str, method: str, has_body: bool) -> list[str]:
    statuses = ["422", "431", "500"]
    if path.startswith("/api"):
        statuses += ["401", "403", "404", "503"]
        if method in _WRITES:
            statuses.append("409")
    elif path.startswith("/hooks"):  # signed deliveries: signature, unknown hook, replay, raw body limit
        statuses += ["401", "404", "409", "413", "502", "503"]
    if has_body and "413" not in statuses:
        statuses.append("413")
    return sorted(statuses)


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error answers to every operation of a generated document (in place; returned)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update(ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}").pop("$defs"))
    components["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    components["ErrorBody"].pop("$defs", None)
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in error_statuses(path, method, "requestBody" in operation):
                existing = responses.get(status, {})
                responses[status] = {
                    "description": existing.get("description") or _DESCRIPTIONS[status],
                    "content": {"application/json": {"schema": _REF}},
                }
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    return schema


def document_api_security(schema: dict[str, Any], schemes: Sequence[SecurityBase]) -> dict[str, Any]:
    """Every `/api` operation accepts any one of `schemes` (in place; returned). Authentication is
    attached to every /api router in one place (`atom.api`) and reads the key itself, so FastAPI
    sees no security dependency to document."""
    if not schemes:
        return schema
    components = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    for scheme in schemes:
        components[scheme.scheme_name] = jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
    requirement: list[dict[str, list[str]]] = [{scheme.scheme_name: []} for scheme in schemes]
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api"):
            continue
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["security"] = [dict(entry) for entry in requirement]
    return schema


def install(app: FastAPI, *, api_security: Sequence[SecurityBase] = ()) -> None:
    """Serve the document with the error answers and the API key schemes (FastAPI builds and caches
    it on first use)."""

    def openapi() -> dict[str, Any]:
        schema = FastAPI.openapi(app)
        if "ErrorBody" not in schema.get("components", {}).get("schemas", {}):
            document_errors(schema)
            document_api_security(schema, api_security)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
