"""Slack Web API: `chat.postMessage` and `conversations.list` with a bot token (xoxb-...).

Slack answers HTTP 200 with `{"ok": false, "error": "<code>"}` for most failures; those codes map
to typed errors (auth, not found, rejected, transient). HTTP 429 carries Retry-After and is
honoured a bounded number of times. Idempotency: the Web API has no idempotency key, so the
step's key travels in the message `metadata` (event_type `atom_workflow_step`) where a duplicate
can be detected; the engine itself never re-runs a step whose completion was recorded.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atom.workflows.actions import ActionContext, WorkflowAction
from atom.workflows.integrations import base
from atom.workflows.integrations.errors import (
    IntegrationAuthError,
    IntegrationError,
    IntegrationNotFound,
    IntegrationRateLimited,
    IntegrationRequestError,
    IntegrationUnavailable,
)

INTEGRATION = "slack"
METADATA_EVENT_TYPE = "atom_workflow_step"
_AUTH = {
    "not_authed", "invalid_auth", "account_inactive", "token_revoked", "token_expired", "no_permission",
    "missing_scope", "not_allowed_token_type", "ekm_access_denied", "team_access_not_granted",
}  # fmt: skip
_NOT_FOUND = {"channel_not_found", "not_in_channel", "user_not_found", "thread_not_found", "message_not_found"}
_TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}


def error_for(code: str, method: str, status: int) -> IntegrationError:
    message = f"Slack {method} failed: {code}"
    details = {"slack_error": code, "method": method}
    typed = f"SLACK_{code.upper()}"
    if code in _AUTH:
        return IntegrationAuthError(message, integration=INTEGRATION, code=typed, status=status, details=details)
    if code in _NOT_FOUND:
        return IntegrationNotFound(message, integration=INTEGRATION, code=typed, status=status, details=details)
    if code == "ratelimited":
        return IntegrationRateLimited(message, integration=INTEGRATION, code=typed, status=status, details=details)
    if code in _TRANSIENT:
        return IntegrationUnavailable(message, integration=INTEGRATION, code=typed, status=status, details=details)
    return IntegrationRequestError(message, integration=INTEGRATION, code=typed, status=status, details=details)


class SlackClient:
    def __init__(self, ctx: ActionContext, token: str) -> None:
        self.ctx = ctx
        self.token = token
        self.base_url = ctx.settings.slack_api_base_url.rstrip("/")

    async def call(
        self, method: str, *, json_body: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        kwargs: dict[str, Any] = {"headers": headers, "timeout": self.ctx.settings.http_action_timeout_s}
        if json_body is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
            kwargs["json"] = json_body
            http_method = "POST"
        else:
            kwargs["params"] = params or {}
            http_method = "GET"
        response = await base.request(
            self.ctx.http,
            http_method,
            f"{self.base_url}/{method}",
            integration=INTEGRATION,
            max_retries=self.ctx.settings.integration_max_retries,
            max_retry_after_s=self.ctx.settings.integration_max_retry_after_s,
            **kwargs,
        )
        if response.status_code >= 500:
            raise IntegrationUnavailable(
                f"Slack {method}: HTTP {response.status_code}", integration=INTEGRATION, status=response.status_code
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise IntegrationUnavailable(
                f"Slack {method}: HTTP {response.status_code} without a JSON body",
                integration=INTEGRATION,
                status=response.status_code,
            ) from exc
        if not isinstance(body, dict) or not body.get("ok"):
            code = str(body.get("error", "unknown_error")) if isinstance(body, dict) else "unknown_error"
            raise error_for(code, method, response.status_code)
        if body.get("warning"):
            self.ctx.log(f"Slack {method} warning: {body['warning']}")
        return body


async def _client(ctx: ActionContext) -> SlackClient:
    token = await ctx.secret(
        ctx.settings.slack_token_secret, integration=INTEGRATION, setting="ATOM_SLACK_TOKEN_SECRET"
    )
    return SlackClient(ctx, token)


class PostMessageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=200, description="Channel id (C...) or name (#general).")
    text: str | None = Field(default=None, max_length=40_000)
    blocks: list[dict[str, Any]] | None = Field(default=None, max_length=50)
    thread_ts: str | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _has_content(self) -> PostMessageParams:
        if not self.text and not self.blocks:
            raise ValueError("give `text` or `blocks`")
        return self


class ListChannelsParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    types: str = Field(
        default="public_channel",
        pattern=r"^(public_channel|private_channel|mpim|im)(,(public_channel|private_channel|mpim|im))*$",
    )
    exclude_archived: bool = True
    limit: int = Field(default=200, ge=1, le=1000, description="Page size asked of Slack.")
    max_pages: int = Field(default=10, ge=1, le=100)


async def post_message(params: PostMessageParams, ctx: ActionContext) -> dict[str, Any]:
    client = await _client(ctx)
    payload: dict[str, Any] = {
        "channel": params.channel,
        "metadata": {"event_type": METADATA_EVENT_TYPE, "event_payload": {"idempotency_key": ctx.idempotency_key}},
    }
    for key in ("text", "blocks", "thread_ts"):
        value = getattr(params, key)
        if value is not None:
            payload[key] = value
    body = await client.call("chat.postMessage", json_body=payload)
    ctx.log(f"posted to {body.get('channel')} at {body.get('ts')}")
    return {"channel": body.get("channel"), "ts": body.get("ts"), "text": (body.get("message") or {}).get("text")}


async def list_channels(params: ListChannelsParams, ctx: ActionContext) -> dict[str, Any]:
    client = await _client(ctx)
    channels: list[dict[str, Any]] = []
    cursor = ""
    for _ in range(params.max_pages):
        query: dict[str, Any] = {
            "types": params.types,
            "exclude_archived": "true" if params.exclude_archived else "false",
            "limit": params.limit,
        }
        if cursor:
            query["cursor"] = cursor
        body = await client.call("conversations.list", params=query)
        for channel in body.get("channels", []):
            channels.append(
                {
                    "id": channel.get("id"),
                    "name": channel.get("name"),
                    "is_private": bool(channel.get("is_private")),
                    "is_archived": bool(channel.get("is_archived")),
                    "num_members": channel.get("num_members"),
                }
            )
        cursor = str((body.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor:
            break
    return {"channels": channels, "next_cursor": cursor or None}


def actions() -> list[WorkflowAction]:
    return [
        WorkflowAction("slack_post_message", 3, "Post a message to a Slack channel.", PostMessageParams, post_message),
        WorkflowAction("slack_list_channels", 1, "List Slack channels.", ListChannelsParams, list_channels),
    ]
