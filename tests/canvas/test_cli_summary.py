"""`atom-os chat` summarises a canvas tool's result in one line with the dashboard link, and a form's answer."""

from __future__ import annotations

from atom.cli import chat as cli_chat
from atom.cli.common import console


def test_a_canvas_result_is_summarised() -> None:
    chart = {"canvas_id": "c1", "summary": "canvas 'Week': bar chart, 2 series of 4 points (version 1) at /canvases/c1"}
    form = {
        "canvas_id": "c2",
        "summary": "canvas: form with 1 fields (version 1) at /canvases/c2",
        "status": "submitted",
        "values": {"age": 30},
    }
    with console.capture() as captured:
        cli_chat._show_tool_event({"type": "tool_result", "status": "ok", "output": chart})
        cli_chat._show_tool_event({"type": "tool_result", "status": "ok", "output": form})
    lines = [line.strip() for line in captured.get().splitlines() if line.strip()]
    assert lines == [
        "ok canvas 'Week': bar chart, 2 series of 4 points (version 1) at /canvases/c1",
        "ok canvas: form with 1 fields (version 1) at /canvases/c2",
        'form submitted: {"age": 30}',
    ]
