"""Asana REST API 1.0: create a task, list projects; personal access token.

Requests and answers use Asana's `{"data": ...}` envelope; failures use `{"errors": [{"message":
..., "help": ...}]}` with 400/401/402/403/404/429/5xx, mapped to typed errors. 429 carries
Retry-After. Idempotency: Asana has no idempotency key for personal access tokens (its `external`
id field needs OAuth), so duplicates are prevented by the engine never re-running a step whose
completion was recorded; the step's key is logged with the call.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, model_validator

from atom.workflows.actions import ActionContext, WorkflowAction
from atom.workflows.integrations import base
from atom.workflows.integrations.errors import (
    IntegrationAuthError,
    IntegrationError,
    IntegrationNotFound,
    IntegrationRequestError,
    IntegrationUnavailable,
)

INTEGRATION = "asana"
GID = r"^[0-9]{1,30}$"


def error_for(response: httpx.Response, what: str) -> IntegrationError:
    status = response.status_code
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
    text = "; ".join(m for m in messages if m) or response.text[:200] or f"HTTP {status}"
    message = f"Asana {what} failed (HTTP {status}): {text}"
    details = {"asana_errors": messages}
    if status in (401, 403):
        return IntegrationAuthError(message, integration=INTEGRATION, status=status, details=details)
    if status == 404:
        return IntegrationNotFound(message, integration=INTEGRATION, status=status, details=details)
    if status >= 500:
        return IntegrationUnavailable(message, integration=INTEGRATION, status=status, details=details)
    return IntegrationRequestError(message, integration=INTEGRATION, status=status, details=details)


async def _call(ctx: ActionContext, method: str, path: str, what: str, **kwargs: Any) -> dict[str, Any]:
    token = await ctx.secret(
        ctx.settings.asana_token_secret, integration=INTEGRATION, setting="ATOM_ASANA_TOKEN_SECRET"
    )
    response = await base.request(
        ctx.http,
        method,
        ctx.settings.asana_api_base_url.rstrip("/") + path,
        integration=INTEGRATION,
        max_retries=ctx.settings.integration_max_retries,
        max_retry_after_s=ctx.settings.integration_max_retry_after_s,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        timeout=ctx.settings.http_action_timeout_s,
        **kwargs,
    )
    if response.status_code >= 400:
        raise error_for(response, what)
    try:
        body = response.json()
    except ValueError as exc:
        raise IntegrationUnavailable(f"Asana {what}: the answer is not JSON", integration=INTEGRATION) from exc
    if not isinstance(body, dict) or "data" not in body:
        raise IntegrationUnavailable(f"Asana {what}: the answer has no `data`", integration=INTEGRATION)
    return body


class CreateTaskParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=1024)
    notes: str | None = Field(default=None, max_length=65_000)
    projects: list[str] = Field(default_factory=list, max_length=20)
    workspace: str | None = Field(default=None, pattern=GID)
    assignee: str | None = Field(default=None, max_length=200, description="A user gid, an email or `me`.")
    due_on: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")

    @model_validator(mode="after")
    def _placed(self) -> CreateTaskParams:
        if not self.projects and self.workspace is None:
            raise ValueError("give `projects` or `workspace` (Asana needs to know where the task goes)")
        return self


class ListProjectsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace: str = Field(pattern=GID)
    archived: bool = False
    limit: int = Field(default=100, ge=1, le=100, description="Page size asked of Asana.")
    max_pages: int = Field(default=10, ge=1, le=100)


async def create_task(params: CreateTaskParams, ctx: ActionContext) -> dict[str, Any]:
    data: dict[str, Any] = {"name": params.name}
    for key in ("notes", "workspace", "assignee", "due_on"):
        value = getattr(params, key)
        if value is not None:
            data[key] = value
    if params.projects:
        data["projects"] = params.projects
    ctx.log("creating Asana task", idempotency_key=ctx.idempotency_key)
    body = await _call(ctx, "POST", "/tasks", "create task", json={"data": data})
    task = body["data"]
    return {
        "gid": task.get("gid"),
        "name": task.get("name"),
        "permalink_url": task.get("permalink_url"),
        "projects": [p.get("gid") for p in task.get("projects") or [] if isinstance(p, dict)],
    }


async def list_projects(params: ListProjectsParams, ctx: ActionContext) -> dict[str, Any]:
    projects: list[dict[str, Any]] = []
    offset: str | None = None
    for _ in range(params.max_pages):
        query: dict[str, Any] = {
            "workspace": params.workspace,
            "archived": "true" if params.archived else "false",
            "limit": params.limit,
            "opt_fields": "name,archived",
        }
        if offset:
            query["offset"] = offset
        body = await _call(ctx, "GET", "/projects", "list projects", params=query)
        for project in body["data"]:
            projects.append(
                {"gid": project.get("gid"), "name": project.get("name"), "archived": project.get("archived")}
            )
        offset = ((body.get("next_page") or {}) or {}).get("offset")
        if not offset:
            break
    return {"projects": projects, "next_offset": offset}


def actions() -> list[WorkflowAction]:
    return [
        WorkflowAction("asana_create_task", 3, "Create an Asana task.", CreateTaskParams, create_task),
        WorkflowAction(
            "asana_list_projects", 1, "List the projects of an Asana workspace.", ListProjectsParams, list_projects
        ),
    ]
