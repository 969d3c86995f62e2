"""http_request (governed by method; private addresses refused unless allowed) and delegate_to_agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from atom.config import Settings
from atom.errors import InvalidInput
from atom.governance import catalogue
from atom.runtime import tools
from atom.runtime.context import ToolContext, current_tool_context
from tests.conftest import make_settings
from tests.support.integration_servers import HttpServer, serve


@pytest.fixture
async def http_server() -> AsyncIterator[tuple[HttpServer, str]]:
    server = HttpServer()
    async with serve(server.app) as url:
        yield server, url


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return make_settings(tmp_path, None, **overrides)


async def _call(settings: Settings, name: str, params: dict[str, object], depth: int = 0) -> dict[str, object]:
    tool = tools.current().get(name)
    assert tool is not None
    token = current_tool_context.set(ToolContext(settings=settings, agent_id="a", execution_id="e", depth=depth))
    try:
        return await tool.handler(tool.validate(params))
    finally:
        current_tool_context.reset(token)


def test_http_request_is_governed_by_method() -> None:
    tool = tools.current().get("http_request")
    assert tool is not None
    expected = {"GET": 1, "HEAD": 1, "POST": 3, "PUT": 3, "PATCH": 3, "DELETE": 4}
    for method, complexity in expected.items():
        action = tool.governance_action(tool.validate({"method": method, "url": "https://example.com/"}))
        assert action == f"http_{method.lower()}" and catalogue.current().classify(action) == (complexity, True)
    assert tool.governance_action(tool.validate({"method": "delete", "url": "https://example.com/x"})) == "http_delete"


async def test_http_request_refuses_loopback_and_private_addresses(
    http_server: tuple[HttpServer, str], tmp_path: Path
) -> None:
    server, url = http_server
    settings = _settings(tmp_path)
    for target in (
        f"{url}/echo",
        "http://localhost:9/x",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://169.254.169.254/",
    ):
        with pytest.raises(InvalidInput) as refused:
            await _call(settings, "http_request", {"url": target})
        assert refused.value.code == "HTTP_TARGET_BLOCKED"
        assert "ATOM_HTTP_TOOL_ALLOW_PRIVATE" in refused.value.message
    assert server.requests == []


async def test_http_request_reaches_loopback_when_allowed(http_server: tuple[HttpServer, str], tmp_path: Path) -> None:
    server, url = http_server
    settings = _settings(tmp_path, http_tool_allow_private=True)
    result = await _call(settings, "http_request", {"method": "POST", "url": f"{url}/echo", "json": {"n": 1}})
    assert result["status"] == 200
    assert server.requests[0]["method"] == "POST" and server.requests[0]["body"].replace(" ", "") == '{"n":1}'


def test_http_request_arguments_are_validated() -> None:
    tool = tools.current().get("http_request")
    assert tool is not None
    for bad in ({"url": "ftp://example.com/file"}, {"url": "https://example.com", "method": "TRACE"}, {}):
        with pytest.raises(InvalidInput) as refused:
            tool.validate(bad)
        assert refused.value.code == "INVALID_TOOL_PARAMS"


async def test_delegation_depth_limit_and_outside_a_run(tmp_path: Path) -> None:
    settings = _settings(tmp_path, delegation_max_depth=2)
    calls: list[tuple[str, str]] = []

    async def delegate(agent: str, task: str) -> dict[str, object]:
        calls.append((agent, task))
        return {"status": "completed"}

    tool = tools.current().get("delegate_to_agent")
    assert tool is not None
    params = tool.validate({"agent": "b", "task": "t"})
    for depth, allowed in ((0, True), (1, True), (2, False)):
        token = current_tool_context.set(
            ToolContext(settings=settings, agent_id="a", execution_id="e", depth=depth, delegate=delegate)
        )
        try:
            if allowed:
                assert (await tool.handler(params))["status"] == "completed"
            else:
                with pytest.raises(InvalidInput) as refused:
                    await tool.handler(params)
                assert refused.value.code == "DELEGATION_DEPTH_EXCEEDED"
        finally:
            current_tool_context.reset(token)
    assert len(calls) == 2
    with pytest.raises(InvalidInput) as outside:
        await tool.handler(params)
    assert outside.value.code == "DELEGATION_UNAVAILABLE"


async def test_http_request_reads_a_huge_body_only_up_to_its_bound(tmp_path: Path) -> None:
    """A 64 MB answer: the tool stops reading at its bound and leaves, so the server cannot send it all."""
    import asyncio
    import contextlib

    from atom.runtime.http_tool import MAX_RESPONSE_TEXT

    total = 64 * 1024 * 1024
    written = {"bytes": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n" % total)
        with contextlib.suppress(ConnectionError):
            while written["bytes"] < total:
                writer.write(b"x" * 65536)
                await writer.drain()  # blocks while the client does not read
                written["bytes"] += 65536
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        settings = _settings(tmp_path, http_tool_allow_private=True)
        result = await _call(settings, "http_request", {"url": f"http://127.0.0.1:{port}/big"})
        await asyncio.sleep(0.2)  # let the server notice the client has gone
    finally:
        server.close()
    assert result["status"] == 200 and result["truncated"] is True
    assert result["text"] == "x" * MAX_RESPONSE_TEXT
    assert written["bytes"] < total // 2  # the client left early (only socket buffers were filled)
