"""Request heads are bounded at the server (`atom-os serve`'s uvicorn set-up): 431 with the error body."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator

import pytest

from atom.cli.server import build_server
from atom.config import Settings

MAX_BYTES = 8192
MAX_HEADERS = 50


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"max_header_bytes": MAX_BYTES, "max_headers": MAX_HEADERS}


@pytest.fixture
async def address(settings: Settings) -> AsyncIterator[tuple[str, int]]:
    """The server `atom-os serve` runs (same build), on a pre-bound loopback socket in this loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = build_server(settings)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    for _ in range(3000):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, timeout=15)
        sock.close()


async def _exchange(address: tuple[str, int], head: bytes, *, chunk: int = 65536) -> tuple[int, dict[str, str], bytes]:
    """Send `head` (in chunks, as a client streaming it would), read the whole answer until the server closes."""
    reader, writer = await asyncio.open_connection(*address)
    sent = 0
    try:
        while sent < len(head):
            writer.write(head[sent : sent + chunk])
            await writer.drain()
            sent += chunk
    except ConnectionError:
        pass  # the server answered and closed while we were still sending: what a bound does
    raw = await reader.read()
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, body = rest.partition(b"\r\n\r\n")
    headers = dict(line.decode().split(": ", 1) for line in header_block.split(b"\r\n") if b": " in line)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


def _assert_431(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 431
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    error = json.loads(body)["error"]
    assert error["code"] == "HEADERS_TOO_LARGE"
    assert error["details"] == {"limit_bytes": MAX_BYTES, "limit_headers": MAX_HEADERS}


async def test_an_8_mb_header_is_refused_before_it_is_read(address: tuple[str, int]) -> None:
    head = b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (8 * 1024 * 1024) + b"\r\n\r\n"
    _assert_431(*await _exchange(address, head))


async def test_a_head_just_over_the_limit_in_one_piece_is_refused(address: tuple[str, int]) -> None:
    head = b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * MAX_BYTES + b"\r\n\r\n"
    _assert_431(*await _exchange(address, head))


async def test_20000_headers_are_refused(address: tuple[str, int]) -> None:
    lines = b"".join(b"X-%d: 1\r\n" % i for i in range(20_000))
    _assert_431(*await _exchange(address, b"GET /api/me HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n"))


async def test_one_header_too_many_is_refused_and_the_limit_itself_is_served(address: tuple[str, int]) -> None:
    def request(count: int) -> bytes:
        lines = b"".join(b"X-%d: 1\r\n" % i for i in range(count - 1))
        return b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + lines + b"\r\n"

    status, _, _ = await _exchange(address, request(MAX_HEADERS - 1))
    assert status == 200
    _assert_431(*await _exchange(address, request(MAX_HEADERS + 1)))


async def test_a_long_url_counts_too(address: tuple[str, int]) -> None:
    head = b"GET /api/me?q=" + b"a" * (MAX_BYTES * 2) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    _assert_431(*await _exchange(address, head, chunk=512))


async def test_ordinary_requests_and_keep_alive_still_work(address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    for _ in range(3):  # three requests on one connection: the per-request counters reset
        writer.write(b"GET /api/me HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * (MAX_BYTES // 2) + b"\r\n\r\n")
        await writer.drain()
        status_line = await reader.readline()
        assert status_line.startswith(b"HTTP/1.1 401")
        length = 0
        while (line := await reader.readline()) != b"\r\n":
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
    writer.close()
