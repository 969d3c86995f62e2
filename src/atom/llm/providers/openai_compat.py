"""Adapter over the official `openai` SDK for every OpenAI-compatible chat completions endpoint.

Serves OpenAI, DeepSeek, Gemini's OpenAI-compatible endpoint and local servers (Ollama, llama.cpp,
vLLM) by base URL. Streams with `stream_options.include_usage` so the final chunk carries usage;
a server that ignores it gets an estimated `Usage` (`estimated=True`). The SDK never retries
(`max_retries=0`): retries and fallback belong to the router. `timeout` bounds connecting and
each read, so a provider that stops sending mid-stream times out too.

The SDK sends the request and raises its typed errors for HTTP statuses; the streamed body is then
read raw (`with_streaming_response`): SSE `data:` lines decoded as JSON chunks here, as the SDK
would, without building its pydantic models per chunk (the largest per-token cost of streaming).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
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
    SSEDataDecoder,
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
        reader = _ChunkReader(self.name, self._key)
        try:
            async with self._client.chat.completions.with_streaming_response.create(
                **build_payload(request), stream=True, stream_options={"include_usage": True}
            ) as api_response:
                response = api_response.http_response
                body = response.aiter_bytes()
                decoder = SSEDataDecoder()
                done = False
                async for raw in body:
                    for _name, data in decoder.feed(raw):
                        if data.startswith(b"[DONE]"):
                            done = True
                            break
                        for event in reader.read(data):
                            yield event
                    if done:
                        break
                if done and response.http_version == "HTTP/1.1":
                    await _drain(body)  # what follows `[DONE]`, so the connection can be reused
            for event in reader.finish(request):
                yield event
        except ProviderError:
            raise
        except Exception as exc:
            error = self._translate(exc, reader.partial_text())
            if error is None:
                raise
            raise error from None

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
            # Any other SDK failure (an `error` object inside the stream is read by `_ChunkReader`).
            return ProviderUnavailable(
                f"LLM provider {name!r} failed: {scrub(exc.message, self._key)}",
                provider=name,
                partial_text=partial,
            )
        if isinstance(exc, ValueError | pydantic.ValidationError | AttributeError | TypeError | KeyError):
            # json.JSONDecodeError is a ValueError: a chunk that is not JSON, or JSON of the wrong shape.
            return ProviderBadResponse(
                f"LLM provider {name!r} sent a malformed stream chunk", provider=name, partial_text=partial
            )
        return None


class _ChunkReader:
    """The events of one streamed answer, from its chunks' SSE data (`read`), then at the end (`finish`).

    A chunk of the wrong shape raises AttributeError/TypeError (`_translate`: a bad response).
    """

    def __init__(self, provider: str, key: str) -> None:
        self.provider = provider
        self._key = key
        self.text: list[str] = []
        self.calls = ToolCallAssembler(provider)
        self.usage: Usage | None = None
        self.finish_reason: str | None = None

    def partial_text(self) -> str:
        return "".join(self.text)

    def read(self, data: bytes) -> Iterator[StreamEvent]:
        """The events of one chunk, each as soon as it is read (a failure later in the chunk comes after them)."""
        chunk = json.loads(data)  # not JSON: a ValueError, a bad response
        if not isinstance(chunk, dict):
            raise self._malformed()
        if chunk.get("error"):
            raise self._error(chunk["error"])
        reported = chunk.get("usage")
        if reported is not None:
            prompt, completion = reported.get("prompt_tokens") or 0, reported.get("completion_tokens") or 0
            if type(prompt) is not int or type(completion) is not int:
                raise self._malformed()
            self.usage = Usage(input_tokens=prompt, output_tokens=completion)
        for choice in chunk.get("choices") or ():
            if choice.get("index") != 0:
                continue
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if content:
                    if type(content) is not str:
                        raise self._malformed()
                    self.text.append(content)
                    yield TextDelta(content)
                fragments = delta.get("tool_calls")
                if fragments:
                    self._add_fragments(fragments)
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
                yield from self.calls.pop_all(partial_text=self.partial_text())

    def finish(self, request: ChatRequest) -> list[StreamEvent]:
        """`Usage` (estimated when the server sent none) and `Done`; the stream must have finished."""
        if self.finish_reason is None:
            raise ProviderUnavailable(
                f"{self.provider} ended the stream before the model finished",
                provider=self.provider,
                partial_text=self.partial_text(),
            )
        usage = self.usage or Usage(
            input_tokens=estimate_request_tokens(request),
            output_tokens=estimate_text_tokens(self.partial_text()),
            estimated=True,
        )
        return [usage, Done(self.finish_reason)]

    def _add_fragments(self, fragments: list[Any]) -> None:
        for position, fragment in enumerate(fragments):
            function = fragment.get("function") or {}
            index = fragment.get("index")
            # Some compatible servers omit `index`: then the position in the chunk is used.
            self.calls.add(
                index if type(index) is int else position,
                id=fragment.get("id"),
                name=function.get("name"),
                arguments=function.get("arguments"),
            )

    def _error(self, error: Any) -> ProviderUnavailable:
        """An `{"error": ...}` object in the stream: the server failed after it had started answering."""
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or not message:
            message = "An error occurred during streaming"
        return ProviderUnavailable(
            f"LLM provider {self.provider!r} reported an error mid-stream: {scrub(message, self._key)}",
            provider=self.provider,
            partial_text=self.partial_text(),
        )

    def _malformed(self) -> ProviderBadResponse:
        return ProviderBadResponse(
            f"LLM provider {self.provider!r} sent a malformed stream chunk",
            provider=self.provider,
            partial_text=self.partial_text(),
        )


async def _drain(body: AsyncIterator[bytes], seconds: float = 0.1) -> None:
    """Read what is left of a finished body, briefly; cleanup never turns a complete answer into an error."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(seconds):
            async for _ in body:
                pass
