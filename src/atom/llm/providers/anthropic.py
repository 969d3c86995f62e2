"""Adapter over the official `anthropic` SDK: Messages API streaming.

Raw stream events handled: `message_start` (input usage), `content_block_start` (text or
`tool_use`), `content_block_delta` (`text_delta`, `input_json_delta`), `content_block_stop`
(a tool call is complete), `message_delta` (stop reason, output usage), `message_stop`.
System messages become the `system` parameter; tool results become `tool_result` blocks.

The SDK sends the request and raises its typed errors for HTTP statuses; the streamed body is then
read raw (`with_streaming_response`): the SSE events decoded as JSON here, as the SDK would, without
building its pydantic event models per event. An `error` event is mapped as the SDK's status error.
"""

from __future__ import annotations

import json
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
    SSEDataDecoder,
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
        reader = _EventReader(self.name)
        try:
            async with self._client.messages.with_streaming_response.create(
                **build_payload(request), stream=True
            ) as api_response:
                decoder = SSEDataDecoder()
                async for raw in api_response.http_response.aiter_bytes():
                    for name, data in decoder.feed(raw):
                        if not name or name == b"ping":  # as the SDK: unnamed events and pings are skipped
                            continue
                        if name == b"error":
                            raise self._stream_error(data, reader.partial_text())
                        for event in reader.read(data):
                            yield event
            for event in reader.finish():
                yield event
        except ProviderError:
            raise
        except Exception as exc:
            error = self._translate(exc, reader.partial_text())
            if error is None:
                raise
            raise error from None

    def _stream_error(self, data: bytes, partial: str) -> ProviderError:
        """An `error` event: the server failed after it had started answering (the SDK's status error)."""
        body: object
        try:
            body = json.loads(data)
        except ValueError:
            body = data.decode("utf-8", "replace")
        return self._status_failure(200, _error_type(body), str(body), partial)

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
            return self._status_failure(exc.status_code, _error_type(exc.body), exc.message, partial)
        if isinstance(exc, ValueError | pydantic.ValidationError | AttributeError | TypeError | KeyError):
            # json.JSONDecodeError is a ValueError: an event that is not JSON, or JSON of the wrong shape.
            return _malformed(name, partial)
        return None

    def _status_failure(self, status: int, error_type: str | None, message: str, partial: str) -> ProviderError:
        name = self.name
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
            f"LLM provider {name!r} refused the request (HTTP {status}): {scrub(message, self._key)}",
            provider=name,
            partial_text=partial,
            details={"status": status},
        )


class _EventReader:
    """The events of one streamed message, from its SSE events' data (`read`), then at the end (`finish`).

    An event of the wrong shape raises KeyError/TypeError/AttributeError (`_translate`: a bad response).
    """

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.text: list[str] = []
        self.calls = ToolCallAssembler(provider)
        self.input_tokens: Any = 0
        self.output_tokens: Any = 0
        self.stop_reason: str | None = None
        self.finished = False

    def partial_text(self) -> str:
        return "".join(self.text)

    def read(self, data: bytes) -> list[StreamEvent]:
        event = json.loads(data)
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event["delta"]
            delta_type = delta.get("type")
            if delta_type == "text_delta":
                return self._text(delta.get("text"))
            if delta_type == "input_json_delta":
                self.calls.add(event["index"], arguments=delta.get("partial_json"))
        elif kind == "message_start":
            usage = event["message"]["usage"]
            self.input_tokens = usage.get("input_tokens") or 0
            self.output_tokens = usage.get("output_tokens") or 0
        elif kind == "content_block_start":
            block = event["content_block"]
            if block.get("type") == "text":
                return self._text(block.get("text"))
            if block.get("type") == "tool_use":
                self.calls.add(event["index"], id=block.get("id"), name=block.get("name"))
        elif kind == "content_block_stop":
            if self.calls.has(event["index"]):
                return [self.calls.pop(event["index"], partial_text=self.partial_text())]
        elif kind == "message_delta":
            self.stop_reason = event["delta"].get("stop_reason") or self.stop_reason
            usage = event.get("usage")
            if usage is not None and usage.get("output_tokens") is not None:
                self.output_tokens = usage["output_tokens"]
            if usage is not None and usage.get("input_tokens"):
                self.input_tokens = usage["input_tokens"]
        elif kind == "message_stop":
            self.finished = True
        return []

    def finish(self) -> list[StreamEvent]:
        """The tool calls not closed yet, `Usage` and `Done`; the message must have been complete."""
        partial = self.partial_text()
        if not self.finished:
            raise ProviderUnavailable(
                f"{self.provider} ended the stream before the message was complete",
                provider=self.provider,
                partial_text=partial,
            )
        if type(self.input_tokens) is not int or type(self.output_tokens) is not int:
            raise _malformed(self.provider, partial)
        events: list[StreamEvent] = list(self.calls.pop_all(partial_text=partial))
        events.append(Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens))
        stop = self.stop_reason
        events.append(Done(_FINISH.get(stop or "end_turn", stop or "stop")))
        return events

    def _text(self, text: Any) -> list[StreamEvent]:
        if not text:
            return []
        if type(text) is not str:
            raise _malformed(self.provider, self.partial_text())
        self.text.append(text)
        return [TextDelta(text)]


def _malformed(provider: str, partial: str) -> ProviderBadResponse:
    return ProviderBadResponse(
        f"LLM provider {provider!r} sent a malformed stream event", provider=provider, partial_text=partial
    )


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
