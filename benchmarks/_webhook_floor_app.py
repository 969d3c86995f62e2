"""The webhook floor: the least an ASGI app can do to accept a signed webhook durably.

It checks what Atom's receiver checks (timestamp window, HMAC-SHA256 of `<timestamp>.<body>` with
the secret, a replayed signature refused) and records the delivery with one INSERT and its commit on
SQLite (WAL, synchronous=NORMAL: Atom's settings, so a 202 survives kill -9 the same way) before it
answers 202. The stdlib driver is called on the event loop: no thread hop, no ORM, no framework.

Configured by environment: WEBHOOK_FLOOR_DB (the database file), WEBHOOK_FLOOR_SECRET.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import time
from typing import Any

WINDOW_S = 300
MAX_BODY = 256 * 1024
_state: dict[str, Any] = {}


def _open() -> sqlite3.Connection:
    conn = sqlite3.connect(os.environ["WEBHOOK_FLOOR_DB"], isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS deliveries (id INTEGER PRIMARY KEY, signature TEXT NOT NULL UNIQUE,"
        " body BLOB NOT NULL, received_at REAL NOT NULL)"
    )
    return conn


async def _answer(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                _state["db"] = _open()
                _state["secret"] = os.environ["WEBHOOK_FLOOR_SECRET"].encode()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                _state["db"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await _answer(send, 200, {"status": "alive"})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
        if len(body) > MAX_BODY:
            await _answer(send, 413, {"error": "too large"})
            return
    headers = dict(scope["headers"])
    timestamp = headers.get(b"x-atom-timestamp", b"")
    signature = headers.get(b"x-atom-signature", b"").decode()
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > WINDOW_S:
        await _answer(send, 401, {"error": "timestamp"})
        return
    expected = "sha256=" + hmac.new(_state["secret"], timestamp + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.strip()):
        await _answer(send, 401, {"error": "signature"})
        return
    db: sqlite3.Connection = _state["db"]
    try:
        db.execute("BEGIN")
        cursor = db.execute(
            "INSERT INTO deliveries (signature, body, received_at) VALUES (?, ?, ?)", (signature, body, time.time())
        )
        db.execute("COMMIT")
    except sqlite3.IntegrityError:
        db.execute("ROLLBACK")
        await _answer(send, 409, {"error": "replayed"})
        return
    await _answer(send, 202, {"delivery_id": cursor.lastrowid})
