"""Scripted LLM provider servers on 127.0.0.1 that speak the real streaming wire formats.

- `OpenAIServer`: `POST /v1/chat/completions` (stream or not) of the OpenAI chat completions API,
  as OpenAI, DeepSeek, Gemini's compatible endpoint and local servers speak it: SSE `data: {chunk}`
  lines with `choices[].delta` (content, `tool_calls` fragments keyed by `index`, the first one
  carrying `id`, `type` and `function.name`, later ones `function.arguments` pieces),
  `finish_reason` on the last choice chunk, a usage chunk (`choices: []`) when the request asked
  `stream_options.include_usage`, then `data: [DONE]`. Errors are `{"error": {...}}` bodies.
  Auth: `Authorization: Bearer <key>`. Point the SDK at `server.base_url` (ends in `/v1`).
- `AnthropicServer`: `POST /v1/messages` (stream or not) of the Anthropic Messages API: SSE
  `event:`/`data:` pairs `message_start` (input usage), `content_block_start` (text or tool_use),
  `ping`, `content_block_delta` (`text_delta`, `input_json_delta`), `content_block_stop`,
  `message_delta` (stop_reason, output usage), `message_stop`. Errors are
  `{"type": "error", "error": {"type", "message"}}`. Auth: `x-api-key`. `server.base_url` has no `/v1`.

Both are one `ScriptedLLMServer`: a test queues `Reply`s (`server.queue(text_reply("Hel", "lo"))`);
each request takes the next one (or `server.default` when the queue is empty). A `Reply` scripts
text pieces (one chunk each), tool calls whose JSON arguments arrive in pieces, usage, the HTTP
status and error, a delay before the response, a delay between chunks, a stall, a malformed chunk
or a dropped connection after N chunks. `server.requests` lists what was received (path, headers,
JSON body). If `api_key` is set, any other key gets the provider's real 401 answer.

The HTTP/1.1 server is plain asyncio, so a disconnect is a real one: the chunked body is cut off
without its final chunk. Every response says `Connection: close`.

    async with OpenAIServer(api_key="sk-test") as server:
        server.queue(text_reply("Hello", " world"), tool_reply(ScriptedToolCall("get_time", ['{"tz":', ' "UTC"}'])))
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

# --- scripts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptedToolCall:
    """A tool call the model makes; `arguments` is the JSON text split in pieces (one chunk each)."""

    name: str
    arguments: Sequence[str] = ("{}",)
    id: str | None = None  # default: call_<n> (OpenAI) / toolu_<n> (Anthropic)


@dataclass(frozen=True)
class Reply:
    """One scripted response.

    `status` != 200 answers with the provider's error body (`error_type`, `error_message`) and
    `headers` (e.g. `{"retry-after": "0"}`). Otherwise a stream (or one JSON body when the request
    did not ask to stream) of `text` pieces then `tool_calls`, with `usage` (input, output tokens)
    and `finish_reason` (default: `stop`/`end_turn`, or `tool_calls`/`tool_use` with tool calls).

    Faults, counted in data chunks (SSE events) sent: `delay_before` seconds before the response
    headers; `delay_between` seconds between chunks; `stall_after`/`stall_for`: stop sending for
    `stall_for` seconds after N chunks; `malformed_after`: send a chunk that is not JSON after N
    chunks, then continue; `disconnect_after`: drop the connection after N chunks (no end).
    `midstream_error` (Anthropic): an `event: error` of that type instead of the end of the message.
    """

    text: Sequence[str] = ()
    tool_calls: Sequence[ScriptedToolCall] = ()
    usage: tuple[int, int] | None = (12, 7)
    finish_reason: str | None = None
    status: int = 200
    error_type: str | None = None
    error_message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_before: float = 0.0
    delay_between: float = 0.0
    stall_after: int | None = None
    stall_for: float = 0.0
    malformed_after: int | None = None
    disconnect_after: int | None = None
    midstream_error: str | None = None


def text_reply(*pieces: str, usage: tuple[int, int] | None = (12, 7), **options: Any) -> Reply:
    """A streamed text answer, one chunk per piece."""
    return Reply(text=pieces, usage=usage, **options)


def tool_reply(*calls: ScriptedToolCall, text: Sequence[str] = (), **options: Any) -> Reply:
    """An answer that calls tools (optionally after some text)."""
    return Reply(text=text, tool_calls=calls, **options)


def error_reply(
    status: int,
    message: str = "scripted failure",
    *,
    error_type: str | None = None,
    retry_after: float | None = None,
    **options: Any,
) -> Reply:
    """An HTTP error answer in the provider's format (`retry_after` adds a `retry-after` header)."""
    headers = dict(options.pop("headers", {}))
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return Reply(status=status, error_type=error_type, error_message=message, headers=headers, **options)


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON (None when the body was not JSON)
    at: float  # time.monotonic() when it arrived


# --- the server -------------------------------------------------------------------------------

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    529: "Overloaded",
}


class _Disconnect(Exception):
    pass


class _Writer:
    """Writes a chunked HTTP/1.1 body and applies a Reply's faults, counting data chunks."""

    def __init__(self, writer: asyncio.StreamWriter, reply: Reply, malformed: bytes):
        self.writer = writer
        self.reply = reply
        self.malformed = malformed
        self.sent = 0

    async def start(self, status: int, content_type: str, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"content-type: {content_type}"]
        lines += ["transfer-encoding: chunked", "connection: close", "x-request-id: req_scripted"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await self.writer.drain()

    async def raw(self, data: bytes) -> None:
        self.writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        await self.writer.drain()

    async def event(self, data: bytes) -> None:
        """One SSE event (a data chunk), with the reply's faults applied before it."""
        reply = self.reply
        if reply.disconnect_after is not None and self.sent >= reply.disconnect_after:
            raise _Disconnect
        if reply.malformed_after is not None and self.sent == reply.malformed_after:
            await self.raw(self.malformed)
        if reply.stall_after is not None and self.sent == reply.stall_after:
            await asyncio.sleep(reply.stall_for)
        if self.sent and reply.delay_between:
            await asyncio.sleep(reply.delay_between)
        await self.raw(data)
        self.sent += 1

    async def end(self) -> None:
        self.writer.write(b"0\r\n\r\n")
        await self.writer.drain()


class ScriptedLLMServer:
    """Base of the provider servers: queue, request log, HTTP plumbing. Use as `async with`."""

    path = ""
    malformed_chunk = b""  # an SSE event whose data is not JSON, in the format's framing

    def __init__(self, *, api_key: str | None = None, default: Reply | None = None):
        self.api_key = api_key
        self.default = default if default is not None else text_reply("ok")
        self.requests: list[ReceivedRequest] = []
        self._queue: deque[Reply] = deque()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""

    # -- scripting
    def queue(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """Replies queued and not yet used."""
        return len(self._queue)

    @property
    def base_url(self) -> str:
        return self.url

    @property
    def last_request(self) -> ReceivedRequest:
        return self.requests[-1]

    # -- lifecycle
    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            for task in list(self._tasks):
                with contextlib.suppress(BaseException):
                    await task
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- HTTP
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            await self._handle(reader, writer)
        except (_Disconnect, ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            writer.transport.abort()
            return
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
        with contextlib.suppress(Exception):
            writer.close()
            await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or 0)
        raw = await reader.readexactly(length) if length else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = target.split("?", 1)[0]
        self.requests.append(ReceivedRequest(method, path, headers, body, time.monotonic()))
        reply = self._queue.popleft() if self._queue else self.default
        if reply.delay_before:
            await asyncio.sleep(reply.delay_before)
        out = _Writer(writer, reply, self.malformed_chunk)
        if method != "POST" or path != self.path:
            await self._json(out, 404, self.error_body(404, "not_found", f"No route {method} {path}"), {})
        elif not self.authorized(headers):
            await self._json(out, 401, self.auth_error(headers), {})
        elif reply.status != 200:
            message = reply.error_message or "scripted failure"
            await self._json(out, reply.status, self.error_body(reply.status, reply.error_type, message), reply.headers)
        elif isinstance(body, dict) and body.get("stream"):
            await out.start(200, "text/event-stream; charset=utf-8", reply.headers)
            await self.stream(out, body, reply)
            await out.end()
        else:
            await self._json(out, 200, self.complete(body if isinstance(body, dict) else {}, reply), reply.headers)

    async def _json(self, out: _Writer, status: int, payload: Any, headers: dict[str, str]) -> None:
        await out.start(status, "application/json", headers)
        await out.raw(json.dumps(payload).encode())
        await out.end()

    # -- per-format hooks
    def authorized(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def auth_error(self, headers: dict[str, str]) -> Any:
        raise NotImplementedError

    def error_body(self, status: int, error_type: str | None, message: str) -> Any:
        raise NotImplementedError

    async def stream(self, out: _Writer, body: dict[str, Any], reply: Reply) -> None:
        raise NotImplementedError

    def complete(self, body: dict[str, Any], reply: Reply) -> Any:
        raise NotImplementedError


# --- OpenAI chat completions ----------------------------------------------------------------------

_OPENAI_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "server_error",
}


def _sse_data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class OpenAIServer(ScriptedLLMServer):
    path = "/v1/chat/completions"
    malformed_chunk = b'data: {"id": "chatcmpl-broken", "choices": [{"delta": {"content": "x"\n\n'

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def authorized(self, headers: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        return headers.get("authorization", "") == f"Bearer {self.api_key}"

    def auth_error(self, headers: dict[str, str]) -> Any:
        presented = headers.get("authorization", "")[7:]
        # Like the real API, the message mentions the key presented (unmasked here, to prove we scrub it).
        return {
            "error": {
                "message": f"Incorrect API key provided: {presented}. You can find your API key in your account.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }

    def error_body(self, status: int, error_type: str | None, message: str) -> Any:
        kind = error_type or _OPENAI_ERROR_TYPES.get(status, "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    def _chunk(self, model: str, choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_scripted",
            "choices": choices,
        }
        if usage is not None or not choices:
            chunk["usage"] = usage
        return chunk

    def _usage(self, reply: Reply) -> dict[str, int] | None:
        if reply.usage is None:
            return None
        prompt, completion = reply.usage
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _finish(self, reply: Reply) -> str:
        return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    def _call_id(self, index: int, call: ScriptedToolCall) -> str:
        return call.id or f"call_{index + 1}"

    async def stream(self, out: _Writer, body: dict[str, Any], reply: Reply) -> None:
        model = str(body.get("model", ""))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

        def choice(delta: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
            return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

        await out.event(_sse_data(self._chunk(model, choice({"role": "assistant", "content": ""}))))
        for piece in reply.text:
            await out.event(_sse_data(self._chunk(model, choice({"content": piece}))))
        for index, call in enumerate(reply.tool_calls):
            first = {
                "index": index,
                "id": self._call_id(index, call),
                "type": "function",
                "function": {"name": call.name, "arguments": ""},
            }
            await out.event(_sse_data(self._chunk(model, choice({"tool_calls": [first]}))))
            for piece in call.arguments:
                fragment = {"index": index, "function": {"arguments": piece}}
                await out.event(_sse_data(self._chunk(model, choice({"tool_calls": [fragment]}))))
        await out.event(_sse_data(self._chunk(model, choice({}, self._finish(reply)))))
        if include_usage and reply.usage is not None:
            await out.event(_sse_data(self._chunk(model, [], self._usage(reply))))
        await out.event(b"data: [DONE]\n\n")

    def complete(self, body: dict[str, Any], reply: Reply) -> Any:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.text) or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": self._call_id(i, c),
                    "type": "function",
                    "function": {"name": c.name, "arguments": "".join(c.arguments)},
                }
                for i, c in enumerate(reply.tool_calls)
            ]
        return {
            "id": "chatcmpl-scripted",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self._finish(reply)}],
            "usage": self._usage(reply),
        }


# --- Anthropic messages -------------------------------------------------------------------------

_ANTHROPIC_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def _sse_event(name: str, payload: Any) -> bytes:
    return f"event: {name}\n".encode() + b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class AnthropicServer(ScriptedLLMServer):
    path = "/v1/messages"
    malformed_chunk = b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'

    def authorized(self, headers: dict[str, str]) -> bool:
        if self.api_key is None:
            return True
        # `x-api-key` is the documented header; SDK versions also send `Authorization: Bearer`.
        bearer = headers.get("authorization", "")
        return self.api_key in (headers.get("x-api-key"), bearer[7:] if bearer.lower().startswith("bearer ") else None)

    def auth_error(self, headers: dict[str, str]) -> Any:
        return self.error_body(401, "authentication_error", "invalid x-api-key")

    def error_body(self, status: int, error_type: str | None, message: str) -> Any:
        kind = error_type or _ANTHROPIC_ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_scripted"}

    def _stop(self, reply: Reply) -> str:
        return reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")

    def _call_id(self, index: int, call: ScriptedToolCall) -> str:
        return call.id or f"toolu_{index + 1:02d}"

    async def stream(self, out: _Writer, body: dict[str, Any], reply: Reply) -> None:
        input_tokens, output_tokens = reply.usage or (0, 0)
        message = {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 1},
        }
        await out.event(_sse_event("message_start", {"type": "message_start", "message": message}))
        index = 0
        if reply.text:
            block = {"type": "text", "text": ""}
            await out.event(
                _sse_event("content_block_start", {"type": "content_block_start", "index": 0, "content_block": block})
            )
            await out.event(_sse_event("ping", {"type": "ping"}))
            for piece in reply.text:
                delta = {"type": "text_delta", "text": piece}
                await out.event(
                    _sse_event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
                )
            await out.event(_sse_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
            index = 1
        for offset, call in enumerate(reply.tool_calls):
            position = index + offset
            block = {"type": "tool_use", "id": self._call_id(offset, call), "name": call.name, "input": {}}
            await out.event(
                _sse_event(
                    "content_block_start", {"type": "content_block_start", "index": position, "content_block": block}
                )
            )
            for piece in call.arguments:
                delta = {"type": "input_json_delta", "partial_json": piece}
                await out.event(
                    _sse_event(
                        "content_block_delta", {"type": "content_block_delta", "index": position, "delta": delta}
                    )
                )
            await out.event(_sse_event("content_block_stop", {"type": "content_block_stop", "index": position}))
        if reply.midstream_error:
            error = {"type": "error", "error": {"type": reply.midstream_error, "message": "scripted mid-stream error"}}
            await out.event(_sse_event("error", error))
            return
        delta_event: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": self._stop(reply), "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
        await out.event(_sse_event("message_delta", delta_event))
        await out.event(_sse_event("message_stop", {"type": "message_stop"}))

    def complete(self, body: dict[str, Any], reply: Reply) -> Any:
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": "".join(reply.text)})
        for i, call in enumerate(reply.tool_calls):
            content.append(
                {
                    "type": "tool_use",
                    "id": self._call_id(i, call),
                    "name": call.name,
                    "input": _loads("".join(call.arguments)),
                }
            )
        input_tokens, output_tokens = reply.usage or (0, 0)
        return {
            "id": "msg_scripted",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": content,
            "stop_reason": self._stop(reply),
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }


def _loads(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}


def iter_texts(requests: Sequence[ReceivedRequest]) -> Iterator[str]:
    """Every message content string of the received request bodies (to check what was sent)."""
    for request in requests:
        body = request.body if isinstance(request.body, dict) else {}
        for message in body.get("messages", []):
            content = message.get("content")
            if isinstance(content, str):
                yield content
            elif isinstance(content, list):
                for block in content:
                    if isinstance(block, dict) and isinstance(block.get("text"), str):
                        yield block["text"]
