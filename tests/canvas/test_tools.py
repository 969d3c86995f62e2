"""The canvas tools as an agent's run calls them, on both databases: the catalogue's complexities, a form
that waits for its submission (and times out), the three coordination modes with attribution, and
concurrent appends that lose nothing."""

from __future__ import annotations

import asyncio

import pytest

from atom.canvas import flows
from atom.canvas import reads as canvas_reads
from atom.canvas import service as canvas_service
from atom.canvas.coordination import Editor
from atom.config import Settings
from atom.db.session import Database
from atom.errors import Conflict, Forbidden
from atom.events.bus import get_bus
from atom.governance import catalogue as governance_catalogue
from atom.governance.maturity import MaturityLevel
from tests.canvas.conftest import acting_as, call
from tests.support.agents import make_agent

SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "minLength": 2}}, "required": ["city"]}


def test_the_tools_carry_rules_complexities() -> None:
    catalogue = governance_catalogue.current()
    expected = {
        "present_markdown": 1, "present_chart": 1, "present_canvas": 1, "read_canvas": 1, "present_form": 2,
        "update_canvas": 2, "canvas_submit": 3, "present_component": 3, "canvas_execute_javascript": 4,
    }  # fmt: skip
    for name, complexity in expected.items():
        spec = catalogue.get(name)
        assert spec is not None and spec.complexity == complexity and spec.implemented_by == "tool", name


async def test_present_form_waits_for_the_submission(settings: Settings, db: Database) -> None:
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    with acting_as(settings, db, agent.id):
        async with get_bus().subscribe(canvas_service.TOPIC) as events:
            waiting = asyncio.create_task(call("present_form", title="Where?", schema=SCHEMA))
            await asyncio.wait_for(anext(aiter(events)), 30)  # presented; the tool now waits on it
        async with db.session_scope() as s:
            rows, _ = await canvas_reads.list_canvases(session=s, limit=5, cursor=None)
        assert not waiting.done()
        person = Editor(user_id="someone")
        with pytest.raises(Exception) as refused:
            await flows.submit_form(
                db=db, settings=settings, canvas_id=rows[0].id, values={"city": "X"}, submitter=person
            )
        assert refused.value.details["fields"][0]["field"] == "values.city"  # type: ignore[attr-defined]
        assert not waiting.done()
        await flows.submit_form(
            db=db, settings=settings, canvas_id=rows[0].id, values={"city": "Oslo"}, submitter=person
        )
        result = await asyncio.wait_for(waiting, 30)
    assert result["status"] == "submitted" and result["values"] == {"city": "Oslo"}
    assert result["submitted_by"] == "user:someone" and result["canvas_id"] == rows[0].id


async def test_present_form_returns_timeout_and_the_form_stays_open(settings: Settings, db: Database) -> None:
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    with acting_as(settings, db, agent.id):
        result = await call("present_form", schema=SCHEMA, timeout_s=0.2)
        assert result["status"] == "timeout"
        read = await call("read_canvas", canvas_id=result["canvas_id"])
    assert read["status"] == "open" and read["kind"] == "form"


async def test_locked_mode_two_agents(settings: Settings, db: Database) -> None:
    first = await make_agent(db, settings, MaturityLevel.INTERN, name="writer-one")
    second = await make_agent(db, settings, MaturityLevel.INTERN, name="writer-two")
    with acting_as(settings, db, first.id):
        made = await call(
            "present_canvas", kind="terminal", content={"lines": []}, mode="locked",
            collaborators=[{"agent": "writer-two", "role": "contributor"}],
        )  # fmt: skip
        canvas_id = made["canvas_id"]
        with pytest.raises(Conflict) as locked:
            await call("update_canvas", canvas_id=canvas_id, op="append", content={"lines": ["no lock"]})
        assert locked.value.code == "CANVAS_LOCKED"
        await call("update_canvas", canvas_id=canvas_id, op="lock")
        await call("update_canvas", canvas_id=canvas_id, op="append", content={"lines": ["one"]})
    with acting_as(settings, db, second.id):
        with pytest.raises(Conflict) as held:
            await call("update_canvas", canvas_id=canvas_id, op="lock")
        assert held.value.details["lock_holder"] == f"agent:{first.id}"
        with pytest.raises(Conflict):
            await call("update_canvas", canvas_id=canvas_id, op="append", content={"lines": ["sneak"]})
    with acting_as(settings, db, first.id):
        await call("update_canvas", canvas_id=canvas_id, op="unlock")
    with acting_as(settings, db, second.id):
        await call("update_canvas", canvas_id=canvas_id, op="lock")
        done = await call("update_canvas", canvas_id=canvas_id, op="append", content={"lines": ["two"]})
        read = await call("read_canvas", canvas_id=canvas_id)
    assert read["content"]["lines"] == ["one", "two"] and done["version"] == 3
    async with db.session_scope() as s:
        rows, _ = await canvas_reads.audit_rows(session=s, canvas_id=canvas_id, limit=50, cursor=None)
    trail = [(r.action, r.agent_id, r.outcome) for r in reversed(rows)]
    assert trail == [
        ("present", first.id, "ok"), ("append", first.id, "refused"), ("lock", first.id, "ok"),
        ("update", first.id, "ok"),
        ("lock", second.id, "refused"), ("append", second.id, "refused"), ("unlock", first.id, "ok"),
        ("lock", second.id, "ok"), ("update", second.id, "ok"),
    ]  # fmt: skip


async def test_sequential_mode_takes_turns_and_roles_bind(settings: Settings, db: Database) -> None:
    a = await make_agent(db, settings, MaturityLevel.INTERN, name="seq-a")
    b = await make_agent(db, settings, MaturityLevel.INTERN, name="seq-b")
    reviewer = await make_agent(db, settings, MaturityLevel.INTERN, name="seq-r")
    outsider = await make_agent(db, settings, MaturityLevel.INTERN, name="seq-x")
    with acting_as(settings, db, a.id):
        made = await call(
            "present_markdown", text="", mode="sequential",
            collaborators=[{"agent": "seq-b"}, {"agent": "seq-r", "role": "reviewer"}],
        )  # fmt: skip
        canvas_id = made["canvas_id"]
        await call("update_canvas", canvas_id=canvas_id, op="append", content={"text": "A1 "})
        with pytest.raises(Conflict) as turn:
            await call("update_canvas", canvas_id=canvas_id, op="append", content={"text": "A2 "})
        assert turn.value.code == "CANVAS_NOT_YOUR_TURN"
    with acting_as(settings, db, b.id):
        await call("update_canvas", canvas_id=canvas_id, op="append", content={"text": "B1 "})
    with acting_as(settings, db, reviewer.id):
        with pytest.raises(Forbidden):
            await call("update_canvas", canvas_id=canvas_id, op="append", content={"text": "R "})
        await call("update_canvas", canvas_id=canvas_id, op="review", verdict="approve", note="reads well")
    with acting_as(settings, db, outsider.id), pytest.raises(Forbidden):
        await call("update_canvas", canvas_id=canvas_id, op="append", content={"text": "X "})
    with acting_as(settings, db, a.id):
        read = await call("read_canvas", canvas_id=canvas_id)
    assert read["content"]["text"] == "A1 B1 " and read["turn_agent_id"] == a.id
    assert read["reviews"][0]["verdict"] == "approve" and read["reviews"][0]["by"] == f"agent:{reviewer.id}"


async def test_parallel_edits_conflict_by_version_and_appends_lose_nothing(settings: Settings, db: Database) -> None:
    a = await make_agent(db, settings, MaturityLevel.INTERN, name="par-a")
    b = await make_agent(db, settings, MaturityLevel.INTERN, name="par-b")
    with acting_as(settings, db, a.id):
        made = await call("present_canvas", kind="status", content={"items": []}, collaborators=[{"agent": "par-b"}])
        canvas_id = made["canvas_id"]
        await call("update_canvas", canvas_id=canvas_id, op="merge", content={"progress": 10}, expected_version=1)
    with acting_as(settings, db, b.id), pytest.raises(Conflict) as stale:
        await call("update_canvas", canvas_id=canvas_id, op="merge", content={"progress": 99}, expected_version=1)
    assert stale.value.details["current_version"] == 2 and stale.value.details["current_content"]["progress"] == 10

    async def append(agent_id: str, n: int) -> None:
        with acting_as(settings, db, agent_id):
            await call("update_canvas", canvas_id=canvas_id, op="append", content={"items": [{"label": f"item {n}"}]})

    await asyncio.gather(*(append(a.id if n % 2 else b.id, n) for n in range(20)))
    with acting_as(settings, db, a.id):
        read = await call("read_canvas", canvas_id=canvas_id)
    labels = sorted(i["label"] for i in read["content"]["items"])
    assert labels == sorted(f"item {n}" for n in range(20)) and read["version"] == 22
    assert read["content"]["progress"] == 10


async def test_an_agent_answers_another_agents_form(settings: Settings, db: Database) -> None:
    asker = await make_agent(db, settings, MaturityLevel.SUPERVISED, name="form-asker")
    helper = await make_agent(db, settings, MaturityLevel.SUPERVISED, name="form-helper")
    stranger = await make_agent(db, settings, MaturityLevel.AUTONOMOUS, name="form-stranger")
    with acting_as(settings, db, asker.id):
        async with get_bus().subscribe(canvas_service.TOPIC) as events:
            waiting = asyncio.create_task(call("present_form", schema=SCHEMA, collaborators=[{"agent": "form-helper"}]))
            presented = await asyncio.wait_for(anext(aiter(events)), 30)
    canvas_id = presented["canvas_id"]
    with acting_as(settings, db, stranger.id):
        for name, params in (("read_canvas", {}), ("canvas_submit", {"values": {"city": "Rome"}})):
            with pytest.raises(Forbidden) as refused:
                await call(name, canvas_id=canvas_id, **params)
            assert refused.value.code == "CANVAS_ROLE"
    with acting_as(settings, db, helper.id):
        assert (await call("read_canvas", canvas_id=canvas_id))["kind"] == "form"
        await call("canvas_submit", canvas_id=canvas_id, values={"city": "Rome"})
    result = await asyncio.wait_for(waiting, 30)
    assert result["values"] == {"city": "Rome"} and result["submitted_by"] == f"agent:{helper.id}"


async def test_closing_a_waiting_form_ends_the_wait(settings: Settings, db: Database) -> None:
    agent = await make_agent(db, settings, MaturityLevel.SUPERVISED)
    with acting_as(settings, db, agent.id):
        async with get_bus().subscribe(canvas_service.TOPIC) as events:
            waiting = asyncio.create_task(call("present_form", schema=SCHEMA))
            presented = await asyncio.wait_for(anext(aiter(events)), 30)
    async with db.session_scope() as s:
        await canvas_service.close(session=s, canvas_id=presented["canvas_id"], editor=Editor(user_id="someone"))
    result = await asyncio.wait_for(waiting, 30)
    assert result["status"] == "closed" and "values" not in result
