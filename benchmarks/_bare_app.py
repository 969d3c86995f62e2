"""The floor every HTTP benchmark is compared with: the least an ASGI app can do to answer 200.

A POST's body is read and parsed as JSON, and the answer is JSON: the parsed document back, padded
to `x-floor-response-bytes` when the request names a size (a floor for an endpoint that parses a
JSON request and answers a JSON document of that size).
"""

from __future__ import annotations

import json
from typing import Any

BODY = b'{"status":"alive"}'


def _json_answer(body: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    document = {"status": "alive", "received": json.loads(body), "padding": ""}
    answer = json.dumps(document, separators=(",", ":")).encode()
    wanted = next((int(value) for name, value in headers if name == b"x-floor-response-bytes"), 0)
    if wanted > len(answer):
        document["padding"] = "x" * (wanted - len(answer))
        answer = json.dumps(document, separators=(",", ":")).encode()
    return answer


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = BODY
    if scope["method"] == "POST":
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = _json_answer(b"".join(chunks), scope["headers"])
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
