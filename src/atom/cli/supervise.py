"""`atom-os supervise SESSION`: watch a supervised run live from the terminal and steer it.

Connects to the running server's WebSocket with an API key (`--key` or ATOM_API_KEY). Type
`p` (pause), `r` (resume), `t` (terminate) or `c {"param": "value"}` (correct the next step)
and Enter; Ctrl-D or Ctrl-C leaves (the run goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

import typer
import websockets

from atom.cli.common import console, fail, load_settings

COMMANDS = {"p": "pause", "r": "resume", "t": "terminate"}


def supervise(
    session_id: str,
    key: str = typer.Option(..., "--key", envvar="ATOM_API_KEY", help="An operator's API key."),
    url: str | None = typer.Option(None, help="Server URL (default: ATOM_HOST:ATOM_PORT)."),
) -> None:
    """Stream a supervised run's steps and send pause / resume / correct / terminate."""
    settings = load_settings()
    base = (url or settings.base_url).replace("http://", "ws://").replace("https://", "wss://")
    try:
        asyncio.run(_session(f"{base}/ws/supervision/{session_id}?token={key}"))
    except websockets.exceptions.InvalidStatus as exc:
        fail(f"the server refused the connection ({exc.response.status_code}): check the key and the session id.")
    except OSError as exc:
        fail(f"cannot reach {base} ({exc}); is `atom-os serve` running?")


def _show(event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "snapshot":
        console.print(f"session {event.get('status')}, {len(event.get('steps', []))} steps done")
    elif kind == "step_started":
        console.print(f"> step {event['index'] + 1}: {event['action']} {json.dumps(event.get('params', {}))}")
    elif kind == "step_finished":
        colour = "green" if event.get("status") == "done" else "red"
        console.print(f"  [{colour}]{event.get('status')}[/] {json.dumps(event.get('output') or event.get('error'))}")
    elif kind == "finished":
        console.print(f"[bold]run {event.get('status')}[/] {event.get('error') or ''}")
    else:
        console.print(f"[dim]{json.dumps(event)}[/]")


async def _session(url: str) -> None:
    async with websockets.connect(url) as ws:
        console.print("[dim]p pause · r resume · t terminate · c {json} correct next step · Ctrl-D leave[/]")
        reader = asyncio.create_task(_read_commands(ws))
        try:
            async for raw in ws:
                event = json.loads(raw)
                _show(event)
                if event.get("type") == "finished":
                    break
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


async def _read_commands(ws: Any) -> None:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        text = line.strip()
        if text in COMMANDS:
            await ws.send(json.dumps({"command": COMMANDS[text]}))
        elif text.startswith("c "):
            try:
                params = json.loads(text[2:])
            except json.JSONDecodeError:
                console.print('[red]c needs JSON params, e.g. c {"value": 3}[/]')
                continue
            await ws.send(json.dumps({"command": "correct", "params": params}))
        elif text:
            console.print("[red]unknown command[/]")
