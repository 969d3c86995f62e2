"""Server-sent events for pages: a value recomputed whenever the bus says it may have changed.

`watch(request, key, topics, compute)` streams `event: update` with `compute()`'s JSON each time it
differs from the last one sent: after any event on `topics` that `relevant` accepts (bursts coalesced),
and at least every `ATOM_WEB_LIVE_RECHECK_S` seconds (for changes no event announces).

Every stream watching the same `key` shares one `View`: the value is computed once per change for
all of them, not once per open page, so a hundred pages on one run cost one query per change. The
browser's EventSource reconnects by itself after a restart and receives the current value first, so
nothing is lost or doubled: each message is the whole state, not a delta. Each stream checks its own
sign-in session before its first message and then every `SESSION_CHECK_S`; it ends (`signed_out`)
when the session does, or after `MAX_STREAM_S`, after which the browser reconnects and is
authenticated again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from atom.db.session import Database
from atom.events.bus import get_bus
from atom.security import sessions as web_sessions
from atom.web.ui import secure_headers

COALESCE_S = 0.2
SESSION_CHECK_S = 5.0
MAX_STREAM_S = 600.0
RETRY_MS = 2000

Compute = Callable[[AsyncSession], Awaitable[dict[str, Any]]]
Relevant = Callable[[dict[str, Any]], bool]

log = logging.getLogger(__name__)


def sse(event: str, data: dict[str, Any], *, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str, separators=(',', ':'))}\n\n".encode()


def _everything(payload: dict[str, Any]) -> bool:
    return True


class View:
    """One live value and the task that keeps it current while anyone watches it."""

    def __init__(self, db: Database, topics: tuple[str, ...], compute: Compute, relevant: Relevant, recheck_s: float):
        self.value: dict[str, Any] | None = None
        self.version = 0
        self.failed = False
        self.watchers = 0
        self._db, self._topics, self._compute, self._relevant = db, topics, compute, relevant
        self._recheck_s = recheck_s
        self._changed = asyncio.Event()
        self._published = asyncio.Condition()
        self.task = asyncio.create_task(self._run())

    async def newer_than(self, version: int, timeout: float) -> bool:
        """Wait up to `timeout` for a value newer than `version` (or a failure); say whether there is one."""
        async with self._published:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._published.wait_for(lambda: self.version > version or self.failed), timeout)
            return self.version > version or self.failed

    async def _flag(self, events: AsyncIterator[dict[str, Any]]) -> None:
        async for payload in events:
            if self._relevant(payload):
                self._changed.set()

    async def _run(self) -> None:
        tasks: list[asyncio.Task[None]] = []
        try:
            async with AsyncExitStack() as stack:
                for topic in self._topics:
                    events = await stack.enter_async_context(get_bus().subscribe(topic))
                    tasks.append(asyncio.create_task(self._flag(events)))
                while True:
                    self._changed.clear()
                    computed_at = time.monotonic()
                    async with self._db.session_scope() as session:
                        value = await self._compute(session)
                    if value != self.value:
                        async with self._published:
                            self.value, self.version = value, self.version + 1
                            self._published.notify_all()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), timeout=self._recheck_s)
                    # A change after a quiet spell is computed at once; a burst is coalesced into at
                    # most one computation per COALESCE_S.
                    await asyncio.sleep(max(0.0, COALESCE_S - (time.monotonic() - computed_at)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live value failed; its streams end and the pages reconnect")
            async with self._published:
                self.failed = True
                self._published.notify_all()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task


class Views:
    """The app's shared views by key; a view stops when its last stream leaves."""

    def __init__(self) -> None:
        self._views: dict[str, View] = {}

    def join(self, key: str, make: Callable[[], View]) -> View:
        view = self._views.get(key)
        if view is None or view.failed:
            view = self._views[key] = make()
        view.watchers += 1
        return view

    def leave(self, key: str, view: View) -> None:
        view.watchers -= 1
        if view.watchers == 0:
            view.task.cancel()
            if self._views.get(key) is view:
                del self._views[key]


def _views(app: FastAPI) -> Views:
    views: Views | None = getattr(app.state, "live_views", None)
    if views is None:
        views = app.state.live_views = Views()
    return views


def watch(
    request: Request, key: str, topics: tuple[str, ...], compute: Compute, relevant: Relevant = _everything
) -> StreamingResponse:
    """Stream the shared value `key` (computed by `compute`, recomputed after relevant `topics` events)."""
    db: Database = request.app.state.db
    settings = request.app.state.settings
    token = request.cookies.get(web_sessions.SESSION_COOKIE, "")
    views = _views(request.app)

    async def signed_in() -> bool:
        async with db.session_scope() as session:
            try:
                await web_sessions.resolve(session=session, token=token, settings=settings)
            except web_sessions.SessionExpired:
                return False
        return True

    async def stream() -> AsyncIterator[bytes]:
        if not await signed_in():
            yield sse("signed_out", {})
            return
        view = views.join(key, lambda: View(db, topics, compute, relevant, settings.web_live_recheck_s))
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            sent = 0
            checked_at = time.monotonic()
            ends = checked_at + MAX_STREAM_S
            while time.monotonic() < ends:
                if await view.newer_than(sent, timeout=SESSION_CHECK_S):
                    if view.failed:
                        return
                    assert view.value is not None
                    sent = view.version
                    yield sse("update", view.value, event_id=sent)
                else:
                    yield b": keep-alive\n\n"
                if time.monotonic() - checked_at >= SESSION_CHECK_S:
                    if not await signed_in():
                        yield sse("signed_out", {})
                        return
                    checked_at = time.monotonic()
                if await request.is_disconnected():
                    return
        finally:
            views.leave(key, view)

    response = StreamingResponse(stream(), media_type="text/event-stream")
    secure_headers(response)
    response.headers["X-Accel-Buffering"] = "no"
    return response
