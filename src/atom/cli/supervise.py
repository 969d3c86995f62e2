"""`atom-os supervise SESSION`: watch a supervised run live from the terminal and steer it.

Connects to the running server's WebSocket with an API key (`--key` or ATOM_API_KEY), sent in
the `X-API-Key` header (never in the URL, which servers and proxies log). Each event prints as
a line a person reads (`step 2 send_email: done -> {...}`, `paused before step 3`, `corrected
step 3: {...}`); `--json` prints the raw events, one JSON object a line, for scripts. Type `p`
(pause), `r` (resume), `t` (terminate) or `c {"param": "value"}` (correct the next step) and
Enter; Ctrl-D or Ctrl-C leaves (the run goes on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

import typer
import websockets
from rich.markup import escape

from atom.cli.common import console, fail, load_settings

COMMANDS = {"p": "pause", "r": "resume", "t": "terminate"}
MAX_SHOWN = 200  # characters of a step's params or output shown on its line
_STATUS_COLOUR = {"done": "green", "completed": "green", "denied": "yellow", "failed": "red", "terminated": "red"}


def supervise(
    session_id: str,
    key: str = typer.Option(..., "--key", envvar="ATOM_API_KEY", help="An operator's API key."),
    url: str | None = typer.Option(None, help="Server URL (default: ATOM_HOST:ATOM_PORT)."),
    as_json: bool = typer.Option(False, "--json", help="Print the raw events as JSON lines."),
) -> None:
    """Stream a supervised run's steps and send pause / resume / correct / terminate."""
    settings = load_settings()
    base = (url or settings.base_url).replace("http://", "ws://").replace("https://", "wss://")
    try:
        asyncio.run(_session(f"{base}/ws/supervision/{session_id}", key, as_json))
    except websockets.exceptions.InvalidStatus as exc:
        fail(f"the server refused the connection ({exc.response.status_code}): check the key and the session id.")
    except websockets.exceptions.ConnectionClosedError as exc:
        reason = exc.rcvd.reason if exc.rcvd and exc.rcvd.reason else "connection lost"
        fail(f"the server closed the session ({reason}): check the key, its role and the session id.")
    except OSError as exc:
        fail(f"cannot reach {base} ({exc}); is `atom-os serve` running?")


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _status(status: Any) -> str:
    colour = _STATUS_COLOUR.get(str(status), "cyan")
    return f"[{colour}]{escape(str(status))}[/]"


def _step_line(step: dict[str, Any]) -> str:
    """`step 2 send_email: done -> {...}` (the output when done, the error otherwise)."""
    number = int(step.get("index", 0)) + 1
    line = f"step {number} {escape(str(step.get('action', '?')))}: {_status(step.get('status'))}"
    if step.get("status") == "done":
        if step.get("output") is not None:
            line += f" -> {escape(_short(step['output']))}"
    else:
        reason = step.get("error") or step.get("reason_code")
        if reason:
            line += f" ({escape(str(reason))})"
    return line


def describe(event: dict[str, Any]) -> list[str]:
    """The lines (rich markup) a person reads for one supervision event."""
    kind = event.get("type")
    if kind == "snapshot":
        steps = event.get("steps") or []
        lines = [f"session {_status(event.get('status'))}, {len(steps)} step(s) done so far"]
        return lines + [f"  {_step_line(step)}" for step in steps]
    if kind == "started":
        note = " (no supervisor was connected: running and notifying)" if event.get("notify") else ""
        return [f"run started: {event.get('steps', '?')} step(s){note}"]
    if kind == "step_started":
        number = int(event.get("index", 0)) + 1
        params = event.get("params") or {}
        shown = f" {escape(_short(params))}" if params else ""
        return [f"> step {number} {escape(str(event.get('action', '?')))}{shown}"]
    if kind == "step_finished":
        return [f"  {_step_line(event)}"]
    if kind == "paused":
        return [f"[yellow]paused[/] before step {int(event.get('before_step', 0)) + 1} (r to resume)"]
    if kind == "corrected":
        number = int(event.get("index", 0)) + 1
        return [f"[yellow]corrected[/] step {number}: {escape(_short(event.get('params') or {}))}"]
    if kind == "command":
        params = event.get("params")
        return [
            f"[yellow]intervention[/]: {escape(str(event.get('command')))}"
            + (f" {escape(_short(params))}" if params else "")
        ]
    if kind == "ack":
        return [f"[dim]{escape(str(event.get('command')))} accepted; session {escape(str(event.get('status')))}[/]"]
    if kind == "error":
        return [f"[red]refused[/]: {escape(str(event.get('message')))} ({escape(str(event.get('code')))})"]
    if kind == "finished":
        error = event.get("error")
        return [f"[bold]run {_status(event.get('status'))}[/]" + (f": {escape(str(error))}" if error else "")]
    return [f"[dim]{escape(_short(event))}[/]"]


async def _session(url: str, key: str, as_json: bool) -> None:
    async with websockets.connect(url, additional_headers={"X-API-Key": key}) as ws:
        if not as_json:
            console.print("[dim]p pause · r resume · t terminate · c {json} correct next step · Ctrl-D leave[/]")
        reader = asyncio.create_task(_read_commands(ws))
        try:
            async for raw in ws:
                event = json.loads(raw)
                if as_json:
                    console.print(json.dumps(event, default=str), markup=False, highlight=False, soft_wrap=True)
                else:
                    for line in describe(event):
                        console.print(line, highlight=False, soft_wrap=True)
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
