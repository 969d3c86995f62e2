"""`http_request` (any method; governed by the method) and `webhook_call` (signed JSON POST).

Non-GET requests carry the step's `Idempotency-Key` header (the convention of Stripe, the IETF
draft and many APIs), unless the step sets one itself. Responses: 2xx is success; 408/429/5xx
and network errors are retryable failures; any other 4xx is a non-retryable failure.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from atom.workflows.actions import ActionContext, WorkflowAction
from atom.workflows.integrations import base
from atom.workflows.integrations.errors import IntegrationRequestError, IntegrationUnavailable
from atom.workflows.signing import headers as signature_headers

MAX_TEXT = 65_536
IDEMPOTENCY_HEADER = "Idempotency-Key"
METHOD_COMPLEXITY = {"GET": 1, "HEAD": 1, "POST": 3, "PUT": 3, "PATCH": 3, "DELETE": 4}


def _check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return url


class HttpRequestParams(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: str = Field(min_length=8, max_length=4096)
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    query: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=100)
    json_body: Any = Field(default=None, alias="json")
    body: str | None = Field(default=None, max_length=1_000_000)
    timeout: float | None = Field(
        default=None, gt=0, le=600, description="Seconds; default ATOM_HTTP_ACTION_TIMEOUT_S."
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return _check_url(value)


class WebhookCallParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=4096)
    payload: Any = None
    secret: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9_.:/-]{1,200}$", description="Secret name: sign with X-Atom-Signature."
    )
    headers: dict[str, str] = Field(default_factory=dict, max_length=50)
    timeout: float | None = Field(default=None, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return _check_url(value)


def _response_output(response: Any) -> dict[str, Any]:
    text = response.text
    output: dict[str, Any] = {
        "status": response.status_code,
        "headers": {k.lower(): v for k, v in response.headers.items()},
        "text": text[:MAX_TEXT],
    }
    if "json" in response.headers.get("content-type", ""):
        try:
            output["json"] = response.json()
        except ValueError:
            output["json"] = None
    return output


def _raise_for_status(response: Any, integration: str) -> None:
    status = response.status_code
    if status < 400:
        return
    snippet = response.text[:300]
    message = f"{integration}: HTTP {status} from {response.request.url.host}: {snippet}"
    if status in (408, 425) or status >= 500:
        raise IntegrationUnavailable(message, integration=integration, status=status)
    raise IntegrationRequestError(message, integration=integration, status=status)


async def http_request(params: HttpRequestParams, ctx: ActionContext) -> dict[str, Any]:
    headers = dict(params.headers)
    if params.method not in ("GET", "HEAD") and not any(k.lower() == "idempotency-key" for k in headers):
        headers[IDEMPOTENCY_HEADER] = ctx.idempotency_key
    kwargs: dict[str, Any] = {"headers": headers, "params": params.query or None}
    if params.json_body is not None:
        kwargs["json"] = params.json_body
    elif params.body is not None:
        kwargs["content"] = params.body.encode()
    kwargs["timeout"] = params.timeout or ctx.settings.http_action_timeout_s
    response = await base.request(
        ctx.http,
        params.method,
        params.url,
        integration="http",
        max_retries=ctx.settings.integration_max_retries,
        max_retry_after_s=ctx.settings.integration_max_retry_after_s,
        **kwargs,
    )
    ctx.log(f"{params.method} {params.url} -> {response.status_code}")
    _raise_for_status(response, "http")
    return _response_output(response)


async def webhook_call(params: WebhookCallParams, ctx: ActionContext) -> dict[str, Any]:
    body = json.dumps(params.payload, separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", IDEMPOTENCY_HEADER: ctx.idempotency_key, **params.headers}
    if params.secret is not None:
        secret = await ctx.secret(params.secret, integration="webhook", setting="the step's `secret`")
        headers.update(signature_headers(secret, str(int(time.time())), body))
    response = await base.request(
        ctx.http,
        "POST",
        params.url,
        integration="webhook",
        max_retries=ctx.settings.integration_max_retries,
        max_retry_after_s=ctx.settings.integration_max_retry_after_s,
        headers=headers,
        content=body,
        timeout=params.timeout or ctx.settings.http_action_timeout_s,
    )
    ctx.log(f"POST {params.url} -> {response.status_code}")
    _raise_for_status(response, "webhook")
    return _response_output(response)


def actions() -> list[WorkflowAction]:
    return [
        WorkflowAction(
            "http_request",
            3,
            "Call an HTTP API (governed as http_get 1, http_post/put/patch 3, http_delete 4).",
            HttpRequestParams,
            http_request,
            governed_as=lambda p: f"http_{p.method.lower()}",
            governed_names={f"http_{m.lower()}": c for m, c in METHOD_COMPLEXITY.items()},
        ),
        WorkflowAction(
            "webhook_call", 3, "POST a JSON payload to a webhook, optionally signed.", WebhookCallParams, webhook_call
        ),
    ]
