"""Adapter over the official `anthropic` SDK: Messages API streaming.

Raw stream events handled: `message_start` (input usage), `content_block_start` (text or
`tool_use`), `content_block_delta` (`text_delta`, `input_json_delta`), `content_block_stop`
(a tool call is complete), `message_delta` (stop reason, output usage), `message_stop`.
System messages become the `system` parameter; tool results become `tool_result` blocks.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import anthropic
import pydantic

from atom.llm.providers.base import (
    ChatRequest,
    Done,
    Message,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderRequestRejected,
    ProviderUnavailable,
    StreamEvent,
    TextDelta,
    ToolCallAssembler,
    Usage,
    estimate_request_tokens,
    key_rejected,
    rate_limited,
    scrub,
    timed_out,
    transport_failure_kind,
    unreachable,
)


def _content(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id or "", "content": message.content}]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    return blocks


def build_payload(request: ChatRequest) -> dict[str, Any]:
    """The Messages API request body (without `stream`). Consecutive same-role turns are merged."""
    system = "\n\n".join(m.content for m in request.messages if m.role == "system" and m.content)
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _content(message)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    payload: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
    if system:
        payload["system"] = system
    if request.temperature is not None:
        payload["temperature"] = request.temperature
    if request.tools:
        payload["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters} for t in request.tools
        ]
    return payload


class AnthropicProvider:
    """`ChatProvider` for the Anthropic Messages API. `name` is what errors and logs show (never the key)."""

    kind = "anthropic"

    def __init__(self, *, name: str, base_url: str, api_key: str, timeout: float = 60.0):
        self.name = name
        self._key = api_key
        self._client = anthropic.AsyncAnthropic(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)

    def __repr__(self) -> str:
        return f"AnthropicProvider(name={self.name!r})"

    async def aclose(self) -> None:
        await self._client.close()

    def count_tokens(self, request: ChatRequest) -> int:
        return estimate_request_tokens(request)

    async def stream_chat(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        text: list[str] = []
        try:
            async for event in self._stream(request, text):
                yield event
        except ProviderError:
            raise
        except Exception as exc:
            error = self._translate(exc, "".join(text))
            if error is None:
                raise
            raise error from None

    async def _stream(self, request: ChatRequest, text: list[str]) -> AsyncGenerator[StreamEvent, None]:
        stream = await self._client.messages.create(**build_payload(request), stream=True)
        calls = ToolCallAssembler(self.name)
        input_tokens = output_tokens = 0
        stop_reason: str | None = None
        finished = False
        async with stream:
            async for event in stream:
                kind = event.type
                if kind == "message_start":
                    input_tokens = event.message.usage.input_tokens or 0
                    output_tokens = event.message.usage.output_tokens or 0
                elif kind == "content_block_start":
                    block = event.content_block
                    if block.type == "text" and block.text:
                        text.append(block.text)
                        yield TextDelta(block.text)
                    elif block.type == "tool_use":
                        calls.add(event.index, id=block.id, name=block.name)
                elif kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        text.append(delta.text)
                        yield TextDelta(delta.text)
                    elif delta.type == "input_json_delta":
                        calls.add(event.index, arguments=delta.partial_json)
                elif kind == "content_block_stop":
                    if calls.has(event.index):
                        yield calls.pop(event.index, partial_text="".join(text))
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    if event.usage is not None and event.usage.output_tokens is not None:
                        output_tokens = event.usage.output_tokens
                    if event.usage is not None and getattr(event.usage, "input_tokens", None):
                        input_tokens = event.usage.input_tokens or input_tokens
                elif kind == "message_stop":
                    finished = True
        if not finished:
            raise ProviderUnavailable(
                f"{self.name} ended the stream before the message was complete",
                provider=self.name,
                partial_text="".join(text),
            )
        for call in calls.pop_all(partial_text="".join(text)):
            yield call
        yield Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        yield Done(_FINISH.get(stop_reason or "end_turn", stop_reason or "stop"))

    def _translate(self, exc: Exception, partial: str) -> ProviderError | None:
        name = self.name
        if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
            return key_rejected(name, exc.status_code, partial)
        if isinstance(exc, anthropic.RateLimitError):
            return rate_limited(name, exc.response.headers, partial)
        if isinstance(exc, anthropic.APITimeoutError) or transport_failure_kind(exc) == "timeout":
            return timed_out(name, partial)
        if isinstance(exc, anthropic.APIConnectionError) or transport_failure_kind(exc) == "transport":
            return unreachable(name, partial)
        if isinstance(exc, anthropic.APIStatusError):
            status = exc.status_code
            error_type = _error_type(exc.body)
            if status >= 500 or status == 408 or error_type in {"overloaded_error", "api_error"}:
                return ProviderUnavailable(
                    f"LLM provider {name!r} failed ({error_type or f'HTTP {status}'})",
                    provider=name,
                    partial_text=partial,
                    details={"status": status},
                )
            if error_type == "rate_limit_error":
                return ProviderRateLimited(
                    f"LLM provider {name!r} is rate limiting requests", provider=name, partial_text=partial
                )
            return ProviderRequestRejected(
                f"LLM provider {name!r} refused the request (HTTP {status}): {scrub(exc.message, self._key)}",
                provider=name,
                partial_text=partial,
                details={"status": status},
            )
        if isinstance(exc, ValueError | pydantic.ValidationError | AttributeError | TypeError | KeyError):
            return ProviderBadResponse(
                f"LLM provider {name!r} sent a malformed stream event", provider=name, partial_text=partial
            )
        return None


_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
}


def _error_type(body: object) -> str | None:
    """`error.type` of an Anthropic error body (`{"type": "error", "error": {"type": ..., "message": ...}}`)."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return None
