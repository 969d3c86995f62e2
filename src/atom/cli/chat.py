"""`atom-os chat AGENT` (interactive, streamed) and `atom-os execute AGENT "task"` (one shot).

Both talk to the running server with an API key (`--key` or ATOM_API_KEY): `chat` over the
WebSocket `/ws/chat/AGENT`, `execute` with `POST /api/chat/execute`. `execute` exits 0 when the run
completed, 1 when it failed, timed out or was cancelled (or the request was refused, or an
`--automated` run of a STUDENT was routed to training: nothing ran), 2 when the server cannot be
reached, 3 when an `--automated` run of a SUPERVISED agent was handed to a supervision session (it
runs there, under a supervisor).
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any, NoReturn

import httpx
import typer
import websockets

from atom.cli.common import console, err_console, fail, load_settings

EXIT_FAILED = 1
EXIT_UNREACHABLE = 2
EXIT_SUPERVISED = 3


def _base(url: str | None) -> str:
    return (url or load_settings().base_url).rstrip("/")


def _show_tool_event(event: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "tool_call":
        console.print(f"\n[cyan]> {event.get('name')}[/] {json.dumps(event.get('arguments'))}", highlight=False)
    elif kind == "tool_result":
        status = event.get("status")
        colour = "green" if status == "ok" else "yellow" if status == "pending_approval" else "red"
        detail = event.get("output") if status == "ok" else event.get("error")
        if isinstance(detail, dict) and isinstance(detail.get("summary"), str):  # a canvas: shown on the dashboard
            console.print(f"  [{colour}]{status}[/] {detail['summary']}", highlight=False)
            if "values" in detail or detail.get("status") in ("timeout", "closed"):
                console.print(
                    f"  form {detail.get('status')}: {json.dumps(detail.get('values'))[:300]}", highlight=False
                )
            return
        text = json.dumps(detail, default=str)
        console.print(f"  [{colour}]{status}[/] {text[:300]}", highlight=False)
    elif kind == "proposal":
        console.print(f"  [yellow]proposal {event.get('proposal_id')} waits for approval[/]", highlight=False)
    elif kind == "error":
        err_console.print(f"[bold red]error:[/] {event.get('message')} ({event.get('code')})", highlight=False)


def chat(
    agent: str,
    key: str = typer.Option(..., "--key", envvar="ATOM_API_KEY", help="An operator's API key."),
    session: str | None = typer.Option(None, "--session", help="Continue this chat session."),
    url: str | None = typer.Option(None, help="Server URL (default: ATOM_HOST:ATOM_PORT)."),
) -> None:
    """Chat with an agent in the terminal; answers stream as they are written. Ctrl-D leaves."""
    base = _base(url).replace("http://", "ws://").replace("https://", "wss://")
    # The key travels in a header, never in the URL (URLs end up in access logs and proxies' logs).
    target = f"{base}/ws/chat/{agent}" + (f"?session_id={session}" if session else "")
    try:
        asyncio.run(_chat(target, key))
    except websockets.exceptions.InvalidStatus as exc:
        fail(f"the server refused the connection ({exc.response.status_code}): check the key, agent and session.")
    except websockets.exceptions.ConnectionClosedError as exc:
        fail(f"the server closed the chat: {exc.rcvd.reason if exc.rcvd else 'connection lost'}")
    except OSError as exc:
        fail(f"cannot reach {base} ({exc}); is `atom-os serve` running?", EXIT_UNREACHABLE)


async def _chat(target: str, key: str) -> None:
    loop = asyncio.get_running_loop()
    async with websockets.connect(target, additional_headers={"X-API-Key": key}) as ws:
        hello = json.loads(await ws.recv())
        if hello.get("type") != "session":
            fail(f"unexpected first message: {hello}")
        console.print(f"[dim]session {hello['session_id']} · Ctrl-D to leave[/]")
        while True:
            console.print("[bold]you>[/] ", end="")
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            if not line.strip():
                continue
            await ws.send(json.dumps({"type": "message", "content": line.strip()}))
            await _print_run(ws)


async def _print_run(ws: Any) -> None:
    async for raw in ws:
        event = json.loads(raw)
        kind = event.get("type")
        if kind == "token":
            console.print(event.get("text", ""), end="", markup=False, highlight=False, soft_wrap=True)
        elif kind == "message":
            console.print(event.get("text", ""), markup=False, highlight=False, soft_wrap=True)
        elif kind == "start":
            console.print("[bold]agent>[/] ", end="")
        elif kind == "done":
            usage = event.get("usage") or {}
            cost = usage.get("cost_usd")
            console.print(
                f"\n[dim]{event.get('status')} · {usage.get('input_tokens', 0)} in"
                f" / {usage.get('output_tokens', 0)} out"
                + (f" · ${cost:.6f}" if isinstance(cost, int | float) else "")
                + "[/]"
            )
            return
        elif kind == "error" and event.get("code") in ("LLM_NO_PROVIDER", "VALIDATION_ERROR", "RUN_IN_PROGRESS"):
            _show_tool_event(event)
            return
        else:
            _show_tool_event(event)


def execute(
    agent: str,
    task: str,
    key: str = typer.Option(..., "--key", envvar="ATOM_API_KEY", help="An operator's API key."),
    automated: bool = typer.Option(False, "--automated", help="Run as an automated trigger (governance routes it)."),
    model: str | None = typer.Option(None, help="Use this model."),
    url: str | None = typer.Option(None, help="Server URL (default: ATOM_HOST:ATOM_PORT)."),
    timeout: float = typer.Option(600.0, min=1, help="Seconds to wait for the answer."),
    as_json: bool = typer.Option(False, "--json", help="Print the execution record as JSON."),
    progress: bool = typer.Option(False, "--progress", help="Show the run's progress (step, what, next) as it runs."),
) -> None:
    """Run an agent once on a task; exit code 0 only if the run completed."""
    base = _base(url)
    body: dict[str, Any] = {"agent": agent, "task": task, "trigger": "automated" if automated else "manual"}
    if model:
        body["model"] = model
    if progress:
        _show_execution(_with_progress(base, key, body, timeout, as_json), as_json)
        return
    try:
        response = httpx.post(
            f"{base}/api/chat/execute", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=timeout
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {base} ({type(exc).__name__}); is `atom-os serve` running?", EXIT_UNREACHABLE)
    try:
        data = response.json()
    except ValueError:
        fail(f"the server answered HTTP {response.status_code} without JSON")
    if response.status_code == 202 and isinstance(data, dict) and "route" in data:
        _routed(data, as_json)
    if response.status_code != 200:
        error = data.get("error", {}) if isinstance(data, dict) else {}
        fail(f"{error.get('message', 'request failed')} ({error.get('code', response.status_code)})")
    _show_execution(data, as_json)


def _with_progress(base: str, key: str, body: dict[str, Any], timeout: float, as_json: bool) -> dict[str, Any]:
    from atom.cli import run_progress

    try:
        return run_progress.execute_with_progress(base, key, body, timeout)
    except run_progress.Routed as routed:
        _routed(routed.data, as_json)
    except run_progress.Refused as refused:
        fail(str(refused))
    except httpx.HTTPError as exc:
        fail(f"cannot reach {base} ({type(exc).__name__}); is `atom-os serve` running?", EXIT_UNREACHABLE)


def _show_execution(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(data))
    else:
        for call in data.get("tool_calls", []):
            console.print(f"[cyan]> {call.get('name')}[/] {call.get('status')}", highlight=False)
        if data.get("output"):
            console.print(data["output"], markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"[dim]{data['status']} · execution {data['id']} · "
            f"{data['input_tokens']} in / {data['output_tokens']} out[/]"
        )
    if data.get("status") != "completed":
        err_console.print(f"[bold red]error:[/] {data.get('error') or data.get('status')}", highlight=False)
        raise typer.Exit(EXIT_FAILED)


def _routed(data: dict[str, Any], as_json: bool) -> NoReturn:
    """The trigger interceptor routed the automated run elsewhere: say where, exit non-zero."""
    if as_json:
        console.print_json(json.dumps(data))
    supervised = data["route"] == "supervised"
    if supervised:
        console.print(data.get("message", ""), markup=False, highlight=False, soft_wrap=True)
        session = data.get("supervision_session_id")
        console.print(f"[dim]watch it: `atom-os supervise {session}`[/]", highlight=False)
        raise typer.Exit(EXIT_SUPERVISED)
    err_console.print(f"[bold red]error:[/] {data.get('message')} ({data.get('code')})", highlight=False)
    raise typer.Exit(EXIT_FAILED)
