"""The adapters read the SSE body themselves: framing, in-stream errors, odd chunks, connection reuse.

A raw HTTP/1.1 server on 127.0.0.1 writes exactly the bytes a test gives it (one write each), so
the framing the adapter sees is the one on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from typing import Any

import pytest

from atom.llm.providers.anthropic import AnthropicProvider
from atom.llm.providers.base import (
    ChatProvider,
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
    ToolCall,
    Usage,
)
from atom.llm.providers.openai_compat import OpenAICompatProvider

KEY = "sk-wire-test-8d1f3a5c7e9b"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "c1", "object": "chat.completion.chunk", "model": "m"}
    body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}]
    body.update(extra)
    return body


def data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


USAGE = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


class RawServer:
    """Answers every request on a connection with the next scripted body, sent chunked, one piece per write."""

    def __init__(self, bodies: Sequence[Sequence[bytes]], *, keep_alive: bool = False) -> None:
        self.bodies = list(bodies)
        self.keep_alive = keep_alive
        self.connections = 0
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while self.bodies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                self.requests += 1
                pieces = self.bodies.pop(0)
                connection = b"keep-alive" if self.keep_alive else b"close"
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                    b"connection: " + connection + b"\r\n\r\n"
                )
                for piece in pieces:
                    writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
                if not self.keep_alive:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def provider_for(server: RawServer) -> OpenAICompatProvider:
    return OpenAICompatProvider(name="wire", base_url=f"{server.url}/v1", api_key=KEY, timeout=2.0)


REQUEST = ChatRequest(model="m", messages=(Message("user", "hi"),))


async def collect(provider: ChatProvider) -> list[StreamEvent]:
    try:
        return [event async for event in provider.stream_chat(REQUEST)]
    finally:
        await provider.aclose()


async def failure(provider: ChatProvider) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await collect(provider)
    return caught.value


def test_decoder_handles_every_line_ending_and_every_split_point() -> None:
    stream = (
        b": a comment\r\n"
        b"event: chunk\r\ndata: one\r\n\r\n"
        b"data: two-a\rdata:two-b\r\r"
        b"id: 7\nretry: 10\ndata\ndata: three\n\n"
        b"event: empty\n\n"
        b"data: cut off at the end"
    )
    expected = [(b"chunk", b"one"), (b"", b"two-a\ntwo-b"), (b"", b"\nthree")]
    whole = SSEDataDecoder().feed(stream)
    assert whole == expected
    for split in range(1, len(stream)):
        decoder = SSEDataDecoder()
        assert decoder.feed(stream[:split]) + decoder.feed(stream[split:]) == expected, split
    decoder = SSEDataDecoder()
    assert [event for i in range(len(stream)) for event in decoder.feed(stream[i : i + 1])] == expected


async def test_text_and_tool_calls_arrive_whatever_the_framing() -> None:
    first = json.dumps(chunk({"content": "Hel"})).encode()
    body = [
        b": keep-alive comment\r\n\r\n",
        b"data: " + first[:10],
        first[10:] + b"\r",
        b"\n\r\n",
        b'data: {"id": "c1", "choices": [{"index": 0,\ndata: "delta": {"content": "lo"}}]}\n\n',
        data(chunk({"tool_calls": [{"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}]})),
        data(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a": '}}]})),
        data(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})),
        data(chunk({}, "tool_calls")) + data(USAGE) + b"data: [DONE]\n\n",
    ]
    async with RawServer([body]) as server:
        events = await collect(provider_for(server))
    assert events == [
        TextDelta("Hel"),
        TextDelta("lo"),
        ToolCall(id="call_1", name="f", arguments={"a": 1}),
        Usage(input_tokens=5, output_tokens=2),
        Done("tool_calls"),
    ]


async def test_error_object_mid_stream_is_unavailable_without_the_key() -> None:
    error = {"error": {"message": f"The server had an error (key {KEY})", "type": "server_error"}}
    async with RawServer([[data(chunk({"content": "Part"})), data(error)]]) as server:
        failed = await failure(provider_for(server))
    assert isinstance(failed, ProviderUnavailable) and failed.retryable
    assert failed.partial_text == "Part"
    assert "The server had an error" in failed.message and KEY not in failed.message


@pytest.mark.parametrize(
    "bad",
    [
        b"data: [1, 2]\n\n",
        b"data: " + json.dumps(chunk({"content": 5})).encode() + b"\n\n",
        b"data: " + json.dumps({"choices": "none"}).encode() + b"\n\n",
        b"data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": "many"}}).encode() + b"\n\n",
        b"data: \xff\xfe\n\n",
    ],
)
async def test_chunk_of_the_wrong_shape_is_a_bad_response(bad: bytes) -> None:
    async with RawServer([[data(chunk({"content": "Par"})), bad]]) as server:
        failed = await failure(provider_for(server))
    assert isinstance(failed, ProviderBadResponse) and failed.partial_text == "Par"
    assert "wire" in failed.message


async def test_stream_cut_before_the_finish_is_unavailable() -> None:
    async with RawServer([[data(chunk({"content": "Part"})), b"data: [DONE]\n\n"]]) as server:
        failed = await failure(provider_for(server))
    assert isinstance(failed, ProviderUnavailable) and failed.partial_text == "Part"


async def test_connection_is_reused_after_a_complete_stream() -> None:
    body = [data(chunk({"content": "ok"})), data(chunk({}, "stop")), data(USAGE), b"data: [DONE]\n\n"]
    async with RawServer([body, body], keep_alive=True) as server:
        provider = provider_for(server)
        try:
            first = [event async for event in provider.stream_chat(REQUEST)]
            second = [event async for event in provider.stream_chat(REQUEST)]
        finally:
            await provider.aclose()
    assert first == second == [TextDelta("ok"), Usage(5, 2), Done("stop")]
    assert server.requests == 2 and server.connections == 1


# --- Anthropic -------------------------------------------------------------------------------------


def claude(server: RawServer) -> AnthropicProvider:
    return AnthropicProvider(name="claude-wire", base_url=server.url, api_key=KEY, timeout=2.0)


def event(name: str, payload: dict[str, Any], *, newline: bytes = b"\n") -> bytes:
    return b"event: " + name.encode() + newline + b"data: " + json.dumps(payload).encode() + newline + newline


MESSAGE_START = {"type": "message_start", "message": {"usage": {"input_tokens": 9, "output_tokens": 1}}}


async def test_anthropic_events_arrive_whatever_the_framing() -> None:
    text_block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    tool_block = {
        "type": "content_block_start",
        "index": 1,
        "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
    }
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
    whole = event("content_block_delta", delta, newline=b"\r\n")
    body = [
        event("message_start", MESSAGE_START, newline=b"\r\n"),
        event("content_block_start", text_block) + b"event: ping\ndata: {}\n\n",
        whole[:20],
        whole[20:],
        # An event without a name is skipped, as the SDK does.
        b'data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "no"}}\n\n',
        event("content_block_stop", {"type": "content_block_stop", "index": 0}),
        event("content_block_start", tool_block),
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"a":'}},
        ),
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": " 2}"}},
        ),
        event("content_block_stop", {"type": "content_block_stop", "index": 1}),
        event(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}},
        ),
        event("message_stop", {"type": "message_stop"}),
    ]
    async with RawServer([body]) as server:
        events = await collect(claude(server))
    assert events == [
        TextDelta("Hi"),
        ToolCall(id="toolu_1", name="f", arguments={"a": 2}),
        Usage(input_tokens=9, output_tokens=4),
        Done("tool_calls"),
    ]


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("overloaded_error", ProviderUnavailable),
        ("rate_limit_error", ProviderRateLimited),
        ("invalid_request_error", ProviderRequestRejected),
    ],
)
async def test_anthropic_error_event_is_mapped_like_the_sdk_status_error(
    error_type: str, expected: type[ProviderError]
) -> None:
    error = {"type": "error", "error": {"type": error_type, "message": f"failed for {KEY}"}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Part"}}
    body = [event("message_start", MESSAGE_START), event("content_block_delta", delta), event("error", error)]
    async with RawServer([body]) as server:
        failed = await failure(claude(server))
    assert type(failed) is expected and failed.partial_text == "Part"
    assert KEY not in f"{failed.message} {failed.details}"


@pytest.mark.parametrize(
    "bad",
    [
        event("message_start", {"type": "message_start", "message": {}}),
        b"event: content_block_delta\ndata: [1]\n\n",
        event(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 3}},
        ),
    ],
)
async def test_anthropic_event_of_the_wrong_shape_is_a_bad_response(bad: bytes) -> None:
    async with RawServer([[event("message_start", MESSAGE_START), bad]]) as server:
        failed = await failure(claude(server))
    assert isinstance(failed, ProviderBadResponse) and "claude-wire" in failed.message
