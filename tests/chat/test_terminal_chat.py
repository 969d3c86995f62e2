"""`atom-os chat AGENT` as a person uses it: the installed command in a pseudo-terminal, talking to a
served Atom whose provider is the scripted OpenAI-wire server. Type a message, watch the answer
arrive token by token, leave with Ctrl-D."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from atom.config import Settings
from atom.db.session import Database
from atom.governance.maturity import MaturityLevel
from tests.chat.conftest import API_KEY, WatchedOpenAIServer, agent_named
from tests.conftest import UserWithKey
from tests.support.live_server import serving
from tests.support.llm_servers import Reply, text_reply

ATOM_OS = str(Path(sys.executable).parent / "atom-os")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
WAIT_S = 30.0  # generous: the command starts a Python interpreter


class HeldOpenAIServer(WatchedOpenAIServer):
    """Holds each stream before data chunk `hold_at` until `release` is set: what the terminal shows
    meanwhile can only have come from the chunks already sent."""

    def __init__(self, hold_at: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hold_at = hold_at
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def stream(self, out: Any, body: dict[str, Any], reply: Reply) -> None:
        await super().stream(_HeldWriter(out, self), body, reply)


class _HeldWriter:
    def __init__(self, out: Any, server: HeldOpenAIServer) -> None:
        self.out = out
        self.server = server

    async def event(self, data: bytes) -> None:
        if self.out.sent == self.server.hold_at:
            self.server.holding.set()
            await self.server.release.wait()
        await self.out.event(data)


class Terminal:
    """The master side of a pty: collects what the program writes, types for the person."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.raw = b""
        self.changed = asyncio.Event()
        self.closed = False
        asyncio.get_running_loop().add_reader(master, self._read)

    def _read(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except OSError:  # EIO: the program closed its side
            data = b""
        if not data:
            self.closed = True
            asyncio.get_running_loop().remove_reader(self.master)
        self.raw += data
        self.changed.set()

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw.decode(errors="replace")).replace("\r\n", "\n")

    async def expect(self, wanted: str, after: int = 0) -> int:
        """Wait until `wanted` is shown (at or after position `after`); the position just past it."""
        async with asyncio.timeout(WAIT_S):
            while (found := self.text.find(wanted, after)) < 0:
                assert not self.closed, f"the program ended before showing {wanted!r}:\n{self.text}"
                self.changed.clear()
                await self.changed.wait()
        return found + len(wanted)

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> None:
        if not self.closed:
            asyncio.get_running_loop().remove_reader(self.master)
        os.close(self.master)


@pytest.fixture
async def held_server() -> AsyncIterator[HeldOpenAIServer]:
    async with HeldOpenAIServer(hold_at=2, api_key=API_KEY) as server:  # chunk 0: role; 1: "Hel"; held: the rest
        yield server


@pytest.fixture
def llm_server(held_server: HeldOpenAIServer) -> WatchedOpenAIServer:
    """The app's provider is the held server (chat_app configures whatever `llm_server` is)."""
    return held_server


@pytest.fixture
async def live_address(chat_app: FastAPI) -> AsyncIterator[str]:
    async with serving(chat_app) as address:
        yield address


@contextlib.asynccontextmanager
async def atom_chat(
    live: str, key: str, agent: str, data_dir: Path
) -> AsyncIterator[tuple[Terminal, asyncio.subprocess.Process]]:
    """`atom-os chat AGENT` with a pty as its terminal (stdin, stdout and stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATOM_")}
    env.update(ATOM_API_KEY=key, ATOM_DATA_DIR=str(data_dir), COLUMNS="200", LINES="50", TERM="xterm")
    master, follower = pty.openpty()
    process = await asyncio.create_subprocess_exec(
        ATOM_OS,
        "chat",
        agent,
        "--url",
        f"http://{live}",
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    terminal = Terminal(master)
    try:
        yield terminal, process
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.wait(), WAIT_S)
        terminal.close()


async def test_chat_in_a_terminal_streams_the_answer_and_exits_cleanly(
    live_address: str, held_server: HeldOpenAIServer, db: Database, settings: Settings, admin: UserWithKey,
    tmp_path: Path,
) -> None:  # fmt: skip
    await agent_named(db, settings, MaturityLevel.INTERN, "talker")
    held_server.queue(text_reply("Hel", "lo", " wor", "ld", usage=(21, 4)))
    async with atom_chat(live_address, admin.key, "talker", tmp_path) as (terminal, process):
        at = await terminal.expect("Ctrl-D to leave")
        at = await terminal.expect("you>", at)
        terminal.type(b"Say hello\r")
        at = await terminal.expect("agent> ", at)
        await asyncio.wait_for(held_server.holding.wait(), WAIT_S)
        at = await terminal.expect("Hel", at)  # shown while the provider still holds the rest
        assert "Hello" not in terminal.text
        held_server.release.set()
        at = await terminal.expect("lo world", at)
        at = await terminal.expect("completed · 21 in / 4 out", at)
        await terminal.expect("you>", at)
        terminal.type(b"\x04")  # Ctrl-D on an empty line: leave
        code = await asyncio.wait_for(process.wait(), WAIT_S)
    assert code == 0, terminal.text
    assert "Traceback" not in terminal.text and "error" not in terminal.text.lower()
    sent = held_server.last_request.body
    assert sent["stream"] is True and sent["messages"][-1] == {"role": "user", "content": "Say hello"}
