"""Server-sent events for pages: a value recomputed whenever the bus says it may have changed.

`watch(request, topics, compute)` streams `event: update` with `compute()`'s JSON each time it
differs from the last one sent: after any event on `topics` (bursts coalesced), and at least every
`ATOM_WEB_LIVE_RECHECK_S` seconds (for changes no event announces). The browser's EventSource reconnects by
itself after a restart and receives the current value first, so nothing is lost or doubled: each
message is the whole state, not a delta. The stream ends when the session ends (checked on every
recompute) or after `MAX_STREAM_S`, after which the browser reconnects and is authenticated again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from atom.db.session import Database
from atom.events.bus import get_bus
from atom.security import sessions as web_sessions
from atom.web.ui import secure_headers

COALESCE_S = 0.2
MAX_STREAM_S = 600.0
RETRY_MS = 2000

Compute = Callable[[AsyncSession], Awaitable[dict[str, Any]]]


def sse(event: str, data: dict[str, Any], *, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str, separators=(',', ':'))}\n\n".encode()


async def _flag(events: AsyncIterator[dict[str, Any]], changed: asyncio.Event) -> None:
    async for _ in events:
        changed.set()


def watch(request: Request, topics: tuple[str, ...], compute: Compute) -> StreamingResponse:
    db: Database = request.app.state.db
    settings = request.app.state.settings
    token = request.cookies.get(web_sessions.SESSION_COOKIE, "")

    async def stream() -> AsyncIterator[bytes]:
        changed = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        async with AsyncExitStack() as stack:
            for topic in topics:
                events = await stack.enter_async_context(get_bus().subscribe(topic))
                tasks.append(asyncio.create_task(_flag(events, changed)))
            try:
                yield f"retry: {RETRY_MS}\n\n".encode()
                last: dict[str, Any] | None = None
                sent = 0
                ends = time.monotonic() + MAX_STREAM_S
                while time.monotonic() < ends:
                    changed.clear()
                    computed_at = time.monotonic()
                    async with db.session_scope() as session:
                        try:
                            await web_sessions.resolve(session=session, token=token, settings=settings)
                        except web_sessions.SessionExpired:
                            yield sse("signed_out", {})
                            return
                        value = await compute(session)
                    if value != last:
                        sent += 1
                        yield sse("update", value, event_id=sent)
                        last = value
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), timeout=settings.web_live_recheck_s)
                    if not changed.is_set():
                        yield b": keep-alive\n\n"
                    # A change after a quiet spell is sent at once; a burst is coalesced into at most
                    # one recomputation per COALESCE_S.
                    await asyncio.sleep(max(0.0, COALESCE_S - (time.monotonic() - computed_at)))
                    if await request.is_disconnected():
                        return
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    response = StreamingResponse(stream(), media_type="text/event-stream")
    secure_headers(response)
    response.headers["X-Accel-Buffering"] = "no"
    return response
