"""A minimal OpenAI-compatible streaming provider for the streaming benchmark (run as a subprocess).

`POST /v1/chat/completions` with `stream: true` answers with chat-completion chunks over SSE. The
last user message says what to send: `chunks=N gap_ms=G`. Each content chunk is the
`time.monotonic_ns()` at which it was written, followed by `;` (CLOCK_MONOTONIC is shared by every
process on the machine), so a client computes each chunk's travel time.

    python _llm_provider.py PORT
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from typing import Any

_SPEC = re.compile(r"chunks=(\d+)\s+gap_ms=([\d.]+)")


def _chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None, choices: bool = True) -> bytes:
    body: dict[str, Any] = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if choices else [],
    }
    if usage is not None:
        body["usage"] = usage
    data = b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        body = json.loads(await reader.readexactly(length)) if length else {}
        prompt = next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")
        match = _SPEC.search(str(prompt))
        chunks, gap = (int(match.group(1)), float(match.group(2)) / 1000) if match else (10, 0.001)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
            b"connection: close\r\n\r\n"
        )
        writer.write(_chunk({"role": "assistant", "content": ""}))
        await writer.drain()
        for _ in range(chunks):
            await asyncio.sleep(gap)
            writer.write(_chunk({"content": f"{time.monotonic_ns()};"}))
            await writer.drain()
        writer.write(_chunk({}, "stop"))
        usage = {"prompt_tokens": 10, "completion_tokens": chunks, "total_tokens": 10 + chunks}
        writer.write(_chunk({}, usage=usage, choices=False))
        data = b"data: [DONE]\n\n"
        writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n")
        await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
