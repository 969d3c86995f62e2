"""`atom-os execute AGENT "task" --progress`: the run's progress as a bar while it runs.

The run is streamed (`POST /api/chat/execute` with `stream: true`, docs/chat.md); after each event
but tokens, the run's progress is read from `GET /api/guidance/agent-runs/{id}` (step n of at most
m, what is happening, what comes next: docs/guidance.md) and the bar redrawn. At the end the
execution record is returned, as the plain `execute` prints it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from atom.cli.common import console

SETTLE_S = 5.0


class Routed(Exception):
    """The automated run was routed elsewhere (training, supervision, refused); `data` says where."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data.get("message", "routed"))
        self.data = data


class Refused(Exception):
    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{error.get('message', 'request failed')} ({error.get('code', status)})")


def events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """The JSON `data:` payloads of a server-sent event stream."""
    for line in lines:
        if line.startswith("data:"):
            try:
                payload = json.loads(line[5:].strip())
            except ValueError:
                continue
            if isinstance(payload, dict):
                yield payload


def _line(guide: dict[str, Any]) -> str:
    text = guide["what"] + (f" · {guide['next']}" if guide["status"] == "running" and guide["next"] else "")
    return escape(text if len(text) <= 140 else text[:139] + "…")


class _Bar:
    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.progress = Progress(
            SpinnerColumn(finished_text="•"),
            TextColumn("[bold]{task.fields[count]}"),
            BarColumn(bar_width=20),
            TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self.task: TaskID | None = None
        self.execution_id: str | None = None

    def refresh(self) -> dict[str, Any] | None:
        if self.execution_id is None:
            return None
        response = self.client.get(f"/api/guidance/agent-runs/{self.execution_id}")
        if response.status_code != 200:  # its first step is not written yet
            return None
        guide: dict[str, Any] = response.json()
        count = f"{guide['step']}/{'≤' if guide['bounded'] else ''}{guide['total']}"
        if self.task is None:
            self.task = self.progress.add_task("run", total=100, count=count, state="")
        self.progress.update(self.task, completed=guide["percent"], count=count, state=_line(guide))
        return guide

    def settle(self) -> None:
        """The run's last snapshot is written just after its `done` event: wait for it (a few seconds)."""
        deadline = time.monotonic() + SETTLE_S
        while True:
            guide = self.refresh()
            if (guide is not None and guide["status"] != "running") or time.monotonic() > deadline:
                return
            time.sleep(0.05)


def execute_with_progress(base: str, key: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run with a live progress bar; the execution record at the end. Raises Routed or Refused."""
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:
        bar = _Bar(client)
        with (
            bar.progress,
            client.stream(
                "POST", "/api/chat/execute", json={**body, "stream": True}, headers={"Accept": "text/event-stream"}
            ) as response,
        ):
            if response.status_code != 200:
                response.read()
                try:
                    raise Refused(response.status_code, response.json())
                except ValueError:
                    raise Refused(response.status_code, {}) from None
            for event in events(response.iter_lines()):
                kind = event.get("type")
                if kind == "routed":
                    raise Routed({k: v for k, v in event.items() if k != "type"})
                if kind == "start":
                    bar.execution_id = str(event["execution_id"])
                if kind != "token":
                    bar.refresh()
                if kind == "done":
                    break
            bar.settle()
        if bar.execution_id is None:
            raise Refused(502, {"error": {"message": "the stream ended before the run started"}})
        record = client.get(f"/api/chat/executions/{bar.execution_id}")
        if record.status_code != 200:
            raise Refused(record.status_code, record.json())
        data: dict[str, Any] = record.json()
        return data
