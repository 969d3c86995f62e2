"""Running an agent for a client: the run in its own task, its events through a bounded channel.

Used by the SSE routes, the WebSocket and the one-shot API alike. The run never waits for the
client (see `stream.EventChannel`); a client that falls too far behind gets CLIENT_TOO_SLOW and its
run is cancelled; a client that goes away cancels the run, which closes the upstream request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from atom.chat.llm import resolve_llm
from atom.chat.runtime import AgentRuntime, RunRequest, RunResult
from atom.chat.stream import ChannelOverflow, EventChannel
from atom.config import Settings
from atom.db.session import Database
from atom.errors import AtomError

SLOW_CLIENT = {
    "type": "error",
    "code": "CLIENT_TOO_SLOW",
    "message": "The client fell too far behind the stream; the run was cancelled.",
}


async def runtime_for(state: Any, db: Database, settings: Settings) -> AgentRuntime:
    llm = await resolve_llm(state, db, settings)
    return AgentRuntime(db=db, settings=settings, llm=llm, prices=settings.llm_prices)


class RunStream:
    """One run and the channel its events go through."""

    def __init__(self, runtime: AgentRuntime, request: RunRequest, capacity: int) -> None:
        self.channel = EventChannel(capacity)
        self.task: asyncio.Task[RunResult] = asyncio.create_task(runtime.run(request, self._emit))
        self.task.add_done_callback(lambda _: self.channel.close())

    def _emit(self, event: dict[str, Any]) -> None:
        try:
            self.channel.emit(event)
        except ChannelOverflow:
            self.task.cancel()

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event of the run, always ending with `done` (also when it could not start or was cut off)."""
        done = False
        while (event := await self.channel.get()) is not None:
            done = event.get("type") == "done"
            yield event
        if done:
            return
        if self.channel.overflowed:
            yield SLOW_CLIENT
            code = SLOW_CLIENT["code"]
        elif self.task.done() and not self.task.cancelled() and self.task.exception() is not None:
            exc = self.task.exception()
            if isinstance(exc, AtomError):
                code = exc.code
                yield {"type": "error", "code": exc.code, "message": exc.message}
            else:
                code = "INTERNAL_ERROR"
                yield {"type": "error", "code": code, "message": f"The run could not start ({type(exc).__name__})."}
        else:
            code = "RUN_CANCELLED"
            yield {"type": "error", "code": code, "message": "The run was cancelled."}
        yield {"type": "done", "execution_id": None, "status": "failed", "error_code": code}

    async def cancel(self) -> None:
        if not self.task.done():
            self.task.cancel()
        with contextlib.suppress(BaseException):
            await self.task


# `json.dumps(event, default=str)`, with the encoder built once instead of once per event (per token).
_encode = json.JSONEncoder(default=str).encode


def sse(event: dict[str, Any]) -> bytes:
    return f"event: {event.get('type', 'message')}\ndata: {_encode(event)}\n\n".encode()


async def sse_body(stream: RunStream) -> AsyncIterator[bytes]:
    try:
        async for event in stream.events():
            yield sse(event)
    finally:  # the client went away (or the stream ended): never leave the run behind
        await stream.cancel()
