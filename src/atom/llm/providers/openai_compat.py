"""Adapter over the official `openai` SDK for every OpenAI-compatible chat completions endpoint.

Serves OpenAI, DeepSeek, Gemini's OpenAI-compatible endpoint and local servers (Ollama, llama.cpp,
vLLM) by base URL. Streams with `stream_options.include_usage` so the final chunk carries usage;
a server that ignores it gets an estimated `Usage` (`estimated=True`). The SDK never retries
(`max_retries=0`): retries and fallback belong to the router. `timeout` bounds connecting and
each read, so a provider that stops sending mid-stream times out too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any

import openai
import pydantic

from atom.llm.providers.base import (
    ChatRequest,
    Done,
    Message,
    ProviderBadResponse,
    ProviderError,
    ProviderRequestRejected,
    ProviderUnavailable,
    StreamEvent,
    TextDelta,
    ToolCallAssembler,
    Usage,
    estimate_request_tokens,
    estimate_text_tokens,
    key_rejected,
    rate_limited,
    scrub,
    timed_out,
    transport_failure_kind,
    unreachable,
)


def _message(message: Message) -> dict[str, Any]:
    if message.role == "tool":
        out: dict[str, Any] = {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content}
        if message.name:
            out["name"] = message.name
        return out
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def build_payload(request: ChatRequest) -> dict[str, Any]:
    """The chat completions request body (without `stream`), as the OpenAI API documents it."""
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
        "max_tokens": request.max_tokens,
    }
    if request.temperature is not None:
        payload["temperature"] = request.temperature
    if request.tools:
        payload["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools
        ]
    return payload


class OpenAICompatProvider:
    """`ChatProvider` for OpenAI-compatible endpoints. `name` is what errors and logs show (never the key)."""

    kind = "openai"

    def __init__(self, *, name: str, base_url: str, api_key: str, timeout: float = 60.0):
        self.name = name
        self._key = api_key
        # A local server may need no key; the SDK insists on one, so send a placeholder.
        self._client = openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key or "unused", max_retries=0, timeout=timeout
        )

    def __repr__(self) -> str:
        return f"OpenAICompatProvider(name={self.name!r})"

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
        stream = await self._client.chat.completions.create(
            **build_payload(request), stream=True, stream_options={"include_usage": True}
        )
        calls = ToolCallAssembler(self.name)
        finish_reason: str | None = None
        usage: Usage | None = None
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = Usage(
                        input_tokens=chunk.usage.prompt_tokens or 0, output_tokens=chunk.usage.completion_tokens or 0
                    )
                for choice in chunk.choices or []:
                    if choice.index != 0:
                        continue
                    delta = choice.delta
                    if delta is not None and delta.content:
                        text.append(delta.content)
                        yield TextDelta(delta.content)
                    fragments = (delta.tool_calls if delta is not None else None) or []
                    for position, fragment in enumerate(fragments):
                        function = fragment.function
                        # Some compatible servers omit `index`: then the position in the chunk is used.
                        index = fragment.index if isinstance(fragment.index, int) else position
                        calls.add(
                            index,
                            id=fragment.id,
                            name=function.name if function is not None else None,
                            arguments=function.arguments if function is not None else None,
                        )
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
                        for call in calls.pop_all(partial_text="".join(text)):
                            yield call
        if finish_reason is None:
            raise ProviderUnavailable(
                f"{self.name} ended the stream before the model finished",
                provider=self.name,
                partial_text="".join(text),
            )
        if usage is None:
            usage = Usage(
                input_tokens=estimate_request_tokens(request),
                output_tokens=estimate_text_tokens("".join(text)),
                estimated=True,
            )
        yield usage
        yield Done(finish_reason)

    def _translate(self, exc: Exception, partial: str) -> ProviderError | None:
        name = self.name
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return key_rejected(name, exc.status_code, partial)
        if isinstance(exc, openai.RateLimitError):
            return rate_limited(name, exc.response.headers, partial)
        if isinstance(exc, openai.APITimeoutError) or transport_failure_kind(exc) == "timeout":
            return timed_out(name, partial)
        if isinstance(exc, openai.APIConnectionError) or transport_failure_kind(exc) == "transport":
            return unreachable(name, partial)
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            if status >= 500 or status == 408:
                return ProviderUnavailable(
                    f"LLM provider {name!r} failed with HTTP {status}",
                    provider=name,
                    partial_text=partial,
                    details={"status": status},
                )
            return ProviderRequestRejected(
                f"LLM provider {name!r} refused the request (HTTP {status}): {scrub(exc.message, self._key)}",
                provider=name,
                partial_text=partial,
                details={"status": status},
            )
        if isinstance(exc, openai.APIError):
            # An `error` object inside the stream: the server failed after it had started answering.
            return ProviderUnavailable(
                f"LLM provider {name!r} reported an error mid-stream: {scrub(exc.message, self._key)}",
                provider=name,
                partial_text=partial,
            )
        if isinstance(exc, ValueError | pydantic.ValidationError | AttributeError | TypeError | KeyError):
            # json.JSONDecodeError is a ValueError: a chunk that is not JSON, or JSON of the wrong shape.
            return ProviderBadResponse(
                f"LLM provider {name!r} sent a malformed stream chunk", provider=name, partial_text=partial
            )
        return None
