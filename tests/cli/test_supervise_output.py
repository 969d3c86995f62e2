"""`atom-os supervise` prints what a person reads: step names, status, results and interventions."""

from __future__ import annotations

from rich.console import Console

from atom.cli.supervise import describe


def _plain(event: dict[str, object]) -> str:
    console = Console(width=200, no_color=True)
    with console.capture() as captured:
        for line in describe(event):
            console.print(line, highlight=False)
    return captured.get().strip()


def test_each_event_reads_as_a_sentence_not_json() -> None:
    assert _plain({"type": "started", "notify": False, "steps": 3}) == "run started: 3 step(s)"
    assert _plain({"type": "step_started", "index": 0, "action": "send_email", "params": {"to": "a@b.c"}}) == (
        '> step 1 send_email {"to": "a@b.c"}'
    )
    done = {"type": "step_finished", "index": 0, "action": "send_email", "params": {}, "status": "done",
            "output": {"sent": True}, "error": None, "reason_code": None}  # fmt: skip
    assert _plain(done) == 'step 1 send_email: done -> {"sent": true}'
    denied = {**done, "index": 1, "status": "denied", "output": None, "error": "STUDENT may not delete"}
    assert _plain(denied) == "step 2 send_email: denied (STUDENT may not delete)"
    assert _plain({"type": "paused", "before_step": 2}) == "paused before step 3 (r to resume)"
    assert _plain({"type": "corrected", "index": 2, "params": {"value": 3}}) == 'corrected step 3: {"value": 3}'
    assert _plain({"type": "command", "command": "pause", "params": {}}) == "intervention: pause"
    assert _plain({"type": "ack", "command": "pause", "status": "paused"}) == "pause accepted; session paused"
    assert _plain({"type": "finished", "status": "completed", "error": None}) == "run completed"
    assert _plain({"type": "finished", "status": "failed", "error": "boom"}) == "run failed: boom"


def test_snapshot_lists_the_steps_done_and_markup_in_data_is_not_interpreted() -> None:
    snapshot = {"type": "snapshot", "status": "running", "steps": [
        {"index": 0, "action": "[bold]x[/bold]", "status": "done", "output": {"n": "[red]y"}},
    ]}  # fmt: skip
    expected = 'session running, 1 step(s) done so far\n  step 1 [bold]x[/bold]: done -> {"n": "[red]y"}'
    assert _plain(snapshot) == expected


def test_long_outputs_are_shortened_and_unknown_events_still_show() -> None:
    long = {"type": "step_finished", "index": 0, "action": "fetch", "status": "done", "output": {"t": "x" * 1000}}
    assert len(_plain(long)) < 260 and _plain(long).endswith("…")
    assert "mystery" in _plain({"type": "mystery", "n": 1})
