"""An app under a real uvicorn on a loopback port, inside the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Literal

import uvicorn
from fastapi import FastAPI


@contextlib.asynccontextmanager
async def serving(app: FastAPI, *, lifespan: Literal["on", "off"] = "off", port: int = 0) -> AsyncIterator[str]:
    """Yield `127.0.0.1:<port>` while the app serves. The socket is bound first, so no port race.

    `port` 0 picks a free one; pass the port of an earlier `serving` to restart a server where pages
    already point."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan=lifespan, timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(1000):  # server.started has no event to wait on
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "the server did not start"
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):  # a client that still holds a connection must not hang teardown
            await asyncio.wait_for(task, timeout=15)
        sock.close()
